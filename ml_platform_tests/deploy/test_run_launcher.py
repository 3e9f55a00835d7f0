"""The Job that dagster-k8s submits for a model's training run, captured from its own client.

Each test launches a real run of a model's ``<model>_lifecycle`` job through the cluster instance's
``K8sRunLauncher`` (deploy/dagster/dagster.yaml). The launcher builds the Job with
``dagster_k8s.job.construct_dagster_k8s_job`` and POSTs it through the kubernetes client to a fake
API server on 127.0.0.1, which records it: what is asserted here is exactly what a cluster would get.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.reconstruct import ReconstructableRepository
from dagster._core.remote_origin import GrpcServerCodeLocationOrigin
from dagster._core.test_utils import create_run_for_test
from dagster._grpc.client import DagsterGrpcClient
from dagster_k8s import K8sRunLauncher
from dagster_k8s.client import DagsterK8sUnrecoverableAPIError

from ml_platform.defs.factory import model_definitions
from ml_platform.defs.resources import default_resources
from ml_platform.rules.spec import Compute, Toleration
from ml_platform.settings import PROJECT_ROOT, PlatformPaths
from ml_platform_tests.deploy.conftest import (
    NAMESPACE,
    POSTGRES_URL,
    cluster_instance_config,
    postgres_environment,
)
from ml_platform_tests.deploy.k8s import DEPLOY, validate, write_kubeconfig
from ml_platform_tests.harness import unique_spec
from ml_platform_tests.models import CONVERSION, IRIS

IMAGE = "registry.example.com/ml-platform:3f2c1ab"


def launch_lifecycle_run(instance: dg.DagsterInstance, spec, tmp_path) -> dg.DagsterRun:
    """Create and launch a run of the model's lifecycle job as the daemon does after dequeuing it.

    The run's code origin names the code location's image, as the chart's user-code deployment
    reports it (DAGSTER_CURRENT_IMAGE); the run's tags are the job's, as for any launched run.
    """
    defs = dg.Definitions.merge(
        model_definitions(spec), dg.Definitions(resources=default_resources(PlatformPaths(tmp_path / "home")))
    )
    job = defs.resolve_job_def(f"{spec.dagster_name}_lifecycle")
    origin = (
        ReconstructableRepository.for_module(
            "ml_platform.definitions", "defs", working_directory=str(PROJECT_ROOT), container_image=IMAGE
        )
        .get_reconstructable_job(job.name)
        .get_python_origin()
    )
    run = instance.create_run_for_job(job_def=job, job_code_origin=origin, tags=job.run_tags)
    with contextlib.suppress(Exception):  # the outcome is read back from the instance, as the UI shows it
        instance.launch_run(run.run_id, workspace=None)
    return instance.get_run_by_id(run.run_id)


def run_log(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """Every message of the run's event log, as the UI lists them."""
    lines = []
    for record in instance.all_logs(run.run_id):
        lines.append(record.user_message or "")
        if record.dagster_event is not None:
            lines.append(record.dagster_event.message or "")
    return "\n".join(lines)


def container(job: dict) -> dict:
    return job["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture
def no_wait(monkeypatch):
    """Record the launcher's waits between retries instead of sleeping them (10 s each).

    Only the test's own thread, where the launcher runs: ``time.sleep`` is patched process-wide, and a
    sleep in any other thread (a library's background thread left by an earlier test) must neither be
    counted as the launcher's nor skipped.
    """
    waits: list[float] = []
    sleep, launcher_thread = time.sleep, threading.get_ident()

    def record(seconds: float) -> None:
        if threading.get_ident() == launcher_thread:
            waits.append(seconds)
        else:
            sleep(seconds)

    monkeypatch.setattr(time, "sleep", record)
    return waits


def test_the_cluster_instance_config_loads_a_k8s_run_launcher(cluster_instance):
    launcher = cluster_instance.run_launcher
    assert isinstance(launcher, K8sRunLauncher)
    assert launcher.job_namespace == NAMESPACE
    assert launcher.service_account_name == "ml-platform-dagster"
    assert launcher.postgres_password_secret == "ml-platform-dagster-postgresql"
    assert launcher.env_config_maps == ["ml-platform-env"]
    coordinator = cluster_instance.run_coordinator
    assert type(coordinator).__name__ == "QueuedRunCoordinator"
    assert coordinator.get_run_queue_config().max_concurrent_runs == 4
    assert coordinator.get_run_queue_config().tag_concurrency_limits == [
        {"key": "ml_platform/model", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]


@pytest.mark.skipif(
    not POSTGRES_URL,
    reason="LOUD SKIP: ML_PLATFORM_TEST_POSTGRES_URL is not set, so the cluster's Postgres storage was NOT "
    "loaded; .ci/run starts a PostgreSQL server and sets it (source .ci/setup-postgres.sh to run this here)",
)
def test_the_cluster_instance_config_loads_unchanged_on_postgres(tmp_path, api_server, monkeypatch):
    for name, value in postgres_environment(POSTGRES_URL).items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api_server.url, NAMESPACE)
    (home / "dagster.yaml").write_text(yaml.safe_dump(cluster_instance_config(kubeconfig)))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert isinstance(instance.run_launcher, K8sRunLauncher)
        run = launch_lifecycle_run(instance, unique_spec(IRIS), tmp_path)
        assert run.status == dg.DagsterRunStatus.STARTING
    assert len(api_server.received) == 1


def test_a_spec_asking_for_2_cpus_and_4gi_gets_a_valid_job_with_exactly_those(cluster_instance, api_server, tmp_path):
    spec = unique_spec(CONVERSION, compute=Compute(cpu="2", memory="4Gi"))
    run = launch_lifecycle_run(cluster_instance, spec, tmp_path)

    assert run.status == dg.DagsterRunStatus.STARTING
    assert api_server.paths == [f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"]
    job = api_server.received[0]
    validate(job)
    main = container(job)
    assert main["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    assert main["image"] == IMAGE
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ml-platform-run"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert main["securityContext"]["allowPrivilegeEscalation"] is False
    # secrets and config by reference only: the Dagster database password is a secretKeyRef
    password = next(env for env in main["env"] if env["name"] == "DAGSTER_PG_PASSWORD")
    assert password == {
        "name": "DAGSTER_PG_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "ml-platform-dagster-postgresql", "key": "postgresql-password"}},
    }
    assert {"configMapRef": {"name": "ml-platform-env"}} in main["envFrom"]
    assert main["args"][:3] == ["dagster", "api", "execute_run"]
    assert {"name": "platform-home", "mountPath": "/var/lib/ml-platform"} in main["volumeMounts"]
    labels = job["metadata"]["labels"]
    assert labels["dagster/job"] == f"{spec.dagster_name}_lifecycle"
    assert labels["dagster/run-id"] == run.run_id
    assert labels["app.kubernetes.io/part-of"] == "ml-platform"
    assert job["spec"]["backoffLimit"] == 0
    # the launcher records the image the run uses
    assert run.tags["dagster/image"] == IMAGE


def test_a_gpu_spec_gets_nvidia_gpus_its_node_pool_and_tolerations(cluster_instance, api_server, tmp_path):
    compute = Compute(
        cpu="4",
        memory="16Gi",
        gpu=1,
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
        tolerations=(Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),),
    )
    launch_lifecycle_run(cluster_instance, unique_spec(CONVERSION, compute=compute), tmp_path)

    job = api_server.received[0]
    validate(job)
    resources = container(job)["resources"]
    assert resources["requests"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    assert resources["limits"] == {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_a_spec_without_compute_gets_the_launchers_default_run_resources(cluster_instance, api_server, tmp_path):
    launch_lifecycle_run(cluster_instance, unique_spec(IRIS), tmp_path)
    job = api_server.received[0]
    validate(job)
    assert container(job)["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "1", "memory": "2Gi"},
    }
    assert "nvidia.com/gpu" not in str(job)


def test_a_transient_api_failure_is_retried_and_the_run_starts(cluster_instance, api_server, tmp_path, no_wait):
    api_server.responses = [503, 503]
    run = launch_lifecycle_run(
        cluster_instance, unique_spec(CONVERSION, compute=Compute(cpu="2", memory="4Gi")), tmp_path
    )

    assert run.status == dg.DagsterRunStatus.STARTING
    assert len(api_server.received) == 3  # two 503s, then 201
    assert api_server.received[0] == api_server.received[2]  # the same Job, resubmitted
    assert no_wait == [10.0, 10.0]  # dagster-k8s waited between the attempts
    assert "Kubernetes run worker job created" in run_log(cluster_instance, run)


def test_a_persistent_api_failure_fails_the_run_after_the_retries(cluster_instance, api_server, tmp_path, no_wait):
    api_server.responses = [503, 503, 503, 503]
    run = launch_lifecycle_run(cluster_instance, unique_spec(IRIS), tmp_path)

    assert run.status == dg.DagsterRunStatus.FAILURE
    assert len(api_server.received) == 4
    assert "Retry limit of 3 exceeded" in run_log(cluster_instance, run)


def test_a_job_the_api_refuses_fails_the_run_at_once_with_the_apis_reason(
    cluster_instance, api_server, tmp_path, no_wait
):
    api_server.responses = [422]
    run = launch_lifecycle_run(cluster_instance, unique_spec(IRIS), tmp_path)

    assert run.status == dg.DagsterRunStatus.FAILURE
    assert len(api_server.received) == 1  # a refusal for bad config is not retried
    assert no_wait == []
    logs = cluster_instance.all_logs(run.run_id)
    failure = next(
        r
        for r in logs
        if r.dagster_event
        and r.dagster_event.event_type_value == "ENGINE_EVENT"
        and r.dagster_event.engine_event_data
        and r.dagster_event.engine_event_data.error
    )
    error = failure.dagster_event.engine_event_data.error
    assert error.cls_name == DagsterK8sUnrecoverableAPIError.__name__
    text = error.to_string()
    assert "422" in text and "is invalid" in text and "must be less than or equal to cpu limit" in text


TEAM_DEPLOYMENTS = yaml.safe_load((DEPLOY / "helm" / "dagster-values.yaml").read_text())["dagster-user-deployments"][
    "deployments"
]


def chart_image(deployment: dict) -> str:
    """The image the chart gives a user-code deployment (and its DAGSTER_CURRENT_IMAGE): repository:tag."""
    return f"{deployment['image']['repository']}:{deployment['image']['tag']}"


@contextlib.contextmanager
def team_code_server(deployment: dict, grpc_args: list[str], home) -> Iterator[int]:
    """The team's code server as the chart starts it: `dagster api grpc -h … -p …` with its arguments and
    DAGSTER_CURRENT_IMAGE set to the deployment's image. Yields its port once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = os.environ | {"DAGSTER_CURRENT_IMAGE": chart_image(deployment), "ML_PLATFORM_HOME": str(home)}
    env.pop("DAGSTER_HOME", None)
    command = [sys.executable, "-m", "dagster", "api", "grpc", "-h", "127.0.0.1", "-p", str(port), *grpc_args]
    server = subprocess.Popen(command, env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        client = DagsterGrpcClient(host="127.0.0.1", port=port)
        deadline = time.monotonic() + 120
        while client.health_check_query() != "SERVING":
            assert server.poll() is None, f"the code server exited: {server.stderr.read().decode()[-2000:]}"
            assert time.monotonic() < deadline, "the code server did not answer within 120 s"
            time.sleep(0.5)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


def launch_from_code_server(instance: dg.DagsterInstance, location_name: str, port: int, job_name: str):
    """Create and launch a run of ``job_name`` as the daemon does: from the code location's own answer."""
    origin = GrpcServerCodeLocationOrigin(host="127.0.0.1", port=port, location_name=location_name)
    with origin.create_location(instance) as location:
        (repository,) = location.get_repositories().values()
        job = repository.get_full_job(job_name)
        run = create_run_for_test(
            instance,
            job_name=job_name,
            tags=job.run_tags,
            remote_job_origin=job.get_remote_origin(),
            job_code_origin=job.get_python_origin(),
        )
    with contextlib.suppress(Exception):
        instance.launch_run(run.run_id, workspace=None)
    return instance.get_run_by_id(run.run_id)


@pytest.mark.parametrize("deployment", TEAM_DEPLOYMENTS, ids=[d["name"] for d in TEAM_DEPLOYMENTS])
def test_a_teams_runs_launch_with_its_own_image(deployment, cluster_instance, api_server, tmp_path):
    """The chart's DAGSTER_CURRENT_IMAGE reaches the code server, which reports it with each job; the
    launcher builds the run's Job with that image, and labels it with the team's code location."""
    spec = unique_spec(IRIS)
    location = tmp_path / "location.py"  # the team's code location, serving a model of this test's own
    location.write_text(
        "from ml_platform.definitions import build_definitions\n"
        "from ml_platform.rules.spec import ModelSpec\n"
        f"defs = build_definitions(specs=[ModelSpec.model_validate_json({spec.model_dump_json()!r})])\n"
    )
    with team_code_server(deployment, ["--python-file", str(location)], tmp_path / "home") as port:
        run = launch_from_code_server(cluster_instance, deployment["name"], port, f"{spec.dagster_name}_lifecycle")

    assert run.status == dg.DagsterRunStatus.STARTING
    job = api_server.received[0]
    validate(job)
    assert container(job)["image"] == chart_image(deployment)
    assert job["metadata"]["labels"]["dagster/code-location"] == deployment["name"]
    assert run.tags["dagster/image"] == chart_image(deployment)
    others = {chart_image(d) for d in TEAM_DEPLOYMENTS} - {chart_image(deployment)}
    assert others and not others & {container(job)["image"]}, "each team has its own image"
