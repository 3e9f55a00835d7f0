"""The Job that dagster-k8s submits for a model's training run, captured from its own client.

Each test launches a real run of a model's ``<model>_lifecycle`` job through the cluster instance's
``K8sRunLauncher`` (deploy/dagster/dagster.yaml). The launcher builds the Job with
``dagster_k8s.job.construct_dagster_k8s_job`` and POSTs it through the kubernetes client to a fake
API server on 127.0.0.1, which records it: what is asserted here is exactly what a cluster would get.
"""

from __future__ import annotations

import contextlib
import time

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.reconstruct import ReconstructableRepository
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
from ml_platform_tests.deploy.k8s import validate, write_kubeconfig
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
    """Record the launcher's waits between retries instead of sleeping them (10 s each)."""
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
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
