"""deploy/: every manifest validates against the Kubernetes API schemas, and says what it should.

No cluster and no helm binary are reachable here. The chart values cannot be rendered by the chart
itself; instead the Kubernetes-typed parts of the values (resources, security contexts, volumes) are
placed where the chart puts them and validated, and the values are checked against the instance
config the chart renders from them (deploy/dagster/dagster.yaml), which the launcher tests load.
"""

from __future__ import annotations

import os
import re
import sys
from urllib.parse import urlsplit

import pytest
import yaml

from ml_platform.settings import PROJECT_ROOT
from ml_platform_tests.deploy.k8s import DEPLOY, load_documents, manifests, validate

VALUES = yaml.safe_load((DEPLOY / "helm" / "dagster-values.yaml").read_text())
INSTANCE = yaml.safe_load((DEPLOY / "dagster" / "dagster.yaml").read_text())
LAUNCHER_VALUES = VALUES["runLauncher"]["config"]["k8sRunLauncher"]
USER_CODE = VALUES["dagster-user-deployments"]["deployments"]
RELEASE_NAMESPACE = "ml-platform"
SECRET_NAMES = {"ml-platform-dagster-postgresql", "ml-platform-mlflow-db", "ml-platform-serving-mlflow"}


@pytest.mark.parametrize(("name", "obj"), manifests(), ids=[name for name, _ in manifests()])
def test_every_manifest_validates_against_the_kubernetes_api(name, obj):
    validate(obj)


def test_validation_catches_a_broken_manifest():
    """The validator is strict: a misspelt field or a wrong type does not pass silently."""
    _, deployment = next((n, o) for n, o in manifests() if o["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(Exception, match="resource"):
        validate(broken)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "one"
    with pytest.raises(Exception, match="one"):
        validate(broken)


def chart_pods() -> dict[str, dict]:
    """The pod specs the chart builds from our values, reduced to the fields our values set."""

    def pod(component: dict, *, volumes=(), mounts=(), service_account="ml-platform-dagster") -> dict:
        return {
            "serviceAccountName": service_account,
            "securityContext": component["podSecurityContext"],
            "containers": [
                {
                    "name": "main",
                    "image": "REGISTRY/ml-platform:TAG",
                    "resources": component["resources"],
                    "securityContext": component["securityContext"],
                    "volumeMounts": list(mounts),
                }
            ],
            "volumes": list(volumes),
        }

    run_config = LAUNCHER_VALUES["runK8sConfig"]
    return {
        "dagster-webserver": pod(VALUES["dagsterWebserver"]),
        "dagster-daemon": pod(VALUES["dagsterDaemon"]),
        **{
            f"user-code {team['name']}": pod(team, volumes=team["volumes"], mounts=team["volumeMounts"])
            for team in USER_CODE
        },
        "run pod (launcher defaults)": pod(
            {
                "podSecurityContext": run_config["podSpecConfig"]["securityContext"],
                "securityContext": run_config["containerConfig"]["securityContext"],
                "resources": LAUNCHER_VALUES["resources"],
            },
            volumes=LAUNCHER_VALUES["volumes"],
            mounts=LAUNCHER_VALUES["volumeMounts"],
            service_account=run_config["podSpecConfig"]["serviceAccountName"],
        ),
    }


@pytest.mark.parametrize("component", list(chart_pods()))
def test_the_chart_values_kubernetes_fields_validate_where_the_chart_puts_them(component):
    spec = chart_pods()[component]
    validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "values-check"}, "spec": spec})


def workloads() -> list[tuple[str, dict]]:
    """Every pod the deployment runs: our Deployments and the chart's components."""
    ours = [(name, obj["spec"]["template"]["spec"]) for name, obj in manifests() if obj["kind"] == "Deployment"]
    return ours + list(chart_pods().items())


@pytest.mark.parametrize(("name", "pod"), workloads(), ids=[name for name, _ in workloads()])
def test_every_workload_has_requests_and_limits_and_runs_unprivileged(name, pod):
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user (deploy/Dockerfile)
    for container in pod["containers"]:
        resources = container["resources"]
        assert set(resources) == {"requests", "limits"}, f"{name}: {resources}"
        assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_the_values_render_to_the_cluster_instance_config():
    """What the chart's instance template makes of the values equals deploy/dagster/dagster.yaml."""
    launcher = INSTANCE["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    assert VALUES["runLauncher"]["type"] == "K8sRunLauncher"
    config = launcher["config"]
    run_k8s = LAUNCHER_VALUES["runK8sConfig"]
    rendered = {
        "load_incluster_config": LAUNCHER_VALUES["loadInclusterConfig"],
        "job_namespace": LAUNCHER_VALUES["jobNamespace"] or RELEASE_NAMESPACE,
        "image_pull_policy": LAUNCHER_VALUES["imagePullPolicy"],
        "service_account_name": VALUES["global"]["serviceAccountName"],
        "dagster_home": VALUES["global"]["dagsterHome"],
        "instance_config_map": "dagster-instance",  # "<release fullname>-instance", release "dagster"
        "postgres_password_secret": VALUES["global"]["postgresqlSecretName"],
        "env_config_maps": [ref["name"] for ref in LAUNCHER_VALUES["envConfigMaps"]],
        "volume_mounts": LAUNCHER_VALUES["volumeMounts"],
        "volumes": LAUNCHER_VALUES["volumes"],
        "labels": LAUNCHER_VALUES["labels"],
        "resources": LAUNCHER_VALUES["resources"],
        "fail_pod_on_run_failure": LAUNCHER_VALUES["failPodOnRunFailure"],
        "run_k8s_config": {
            "container_config": run_k8s["containerConfig"],
            "pod_spec_config": run_k8s["podSpecConfig"],
            "job_spec_config": run_k8s["jobSpecConfig"],
        },
    }
    assert config == rendered

    queue = VALUES["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    coordinator = INSTANCE["run_coordinator"]
    assert coordinator["class"] == VALUES["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"
    assert coordinator["config"]["max_concurrent_runs"] == queue["maxConcurrentRuns"]
    assert coordinator["config"]["tag_concurrency_limits"] == queue["tagConcurrencyLimits"]
    assert INSTANCE["storage"]["postgres"]["postgres_db"]["scheme"] == VALUES["postgresql"]["postgresqlScheme"]


def test_the_cluster_and_the_embedded_default_share_the_per_model_run_limit():
    embedded = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())["run_queue"]["tag_concurrency_limits"]
    cluster = INSTANCE["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert (
        cluster == embedded == [{"key": "ml_platform/model", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}]
    )


@pytest.mark.parametrize("team", USER_CODE, ids=[team["name"] for team in USER_CODE])
def test_no_user_code_server_sizes_the_run_pods(team):
    """Left on, includeConfigInLaunchedRuns copies the code server's resources over the launcher's."""
    assert team["includeConfigInLaunchedRuns"] == {"enabled": False}
    assert team["envConfigMaps"] == LAUNCHER_VALUES["envConfigMaps"]


def test_each_team_code_location_is_its_own_deployment_with_its_own_image():
    """One user-code deployment per code location of workspace.yaml, serving that location's module,
    each from an image of its own (the chart names the code location after the deployment)."""
    workspace = yaml.safe_load((PROJECT_ROOT / "workspace.yaml").read_text())["load_from"]
    locations = {entry["python_module"]["location_name"]: entry["python_module"]["module_name"] for entry in workspace}
    served = {team["name"]: team["dagsterApiGrpcArgs"] for team in USER_CODE}
    assert served == {name: ["--module-name", module] for name, module in locations.items()}
    images = [team["image"]["repository"] for team in USER_CODE]
    assert len(set(images)) == len(images), f"two teams share an image: {images}"
    assert all(team["image"]["tag"] != "latest" for team in USER_CODE)


def test_rbac_grants_the_launcher_jobs_and_pods_in_its_namespace_and_nothing_more():
    objects = {(obj["kind"], obj["metadata"]["name"]): obj for _, obj in manifests()}
    assert not [key for key in objects if key[0] in ("ClusterRole", "ClusterRoleBinding")]
    role = objects[("Role", "ml-platform-run-launcher")]
    assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert granted == {
        *(("batch", "jobs", verb) for verb in ("create", "get", "list", "watch", "delete")),
        *(("", "pods", verb) for verb in ("get", "list", "watch")),
        ("", "pods/log", "get"),
    }
    bindings = [obj for (kind, _), obj in objects.items() if kind == "RoleBinding"]
    assert [(b["roleRef"]["name"], [s["name"] for s in b["subjects"]]) for b in bindings] == [
        ("ml-platform-run-launcher", ["ml-platform-dagster"])
    ]
    assert VALUES["rbacEnabled"] is False and VALUES["serviceAccount"]["create"] is False
    assert ("ServiceAccount", "ml-platform-run") in objects  # run pods: an account with no Role


def referenced_secrets() -> set[str]:
    """Every Secret name deploy/ refers to."""
    names = {VALUES["global"]["postgresqlSecretName"]}
    for _, obj in manifests():
        text = yaml.safe_dump(obj)
        names |= set(re.findall(r"secretKeyRef:\n\s+key: \S+\n\s+name: (\S+)", text))
        names |= set(re.findall(r"secretRef:\n\s+name: (\S+)", text))
    return names


def test_secrets_are_referenced_by_name_and_documented_never_defined():
    assert not [name for name, obj in manifests() if obj["kind"] == "Secret"]
    assert referenced_secrets() == SECRET_NAMES
    readme = (DEPLOY / "README.md").read_text()
    for name in SECRET_NAMES:
        assert f"kubectl -n ml-platform create secret generic {name}" in readme


def test_the_dockerfile_builds_from_the_lock_as_a_non_root_user():
    """No Docker engine runs here, so the image is not built: this checks the file's structure."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    instructions = [
        line.strip()
        for line in re.sub(r"\\\n", " ", dockerfile).splitlines()
        if line.strip() and not line.startswith("#")
    ]
    stages = [i for i, line in enumerate(instructions) if line.startswith("FROM ")]
    final = instructions[stages[-1] :]
    users = [line.split()[1] for line in final if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("0", "root"), "the runtime stage must end as a non-root user"
    assert "COPY pyproject.toml uv.lock README.md ./" in instructions
    syncs = [line for line in instructions if "uv sync" in line]
    assert syncs and all("uv sync --frozen --no-dev" in line for line in syncs), "install exactly uv.lock"
    # a team image installs the team's workspace member (and what it needs), the platform image the root
    assert all('${TEAM:+--package "$TEAM"}' in line for line in syncs)
    assert "COPY teams/${TEAM} ./teams/${TEAM}" in instructions
    assert not any(line.startswith("ADD ") for line in instructions)
    assert all(":latest" not in line for line in instructions if line.startswith(("FROM", "COPY --from")))
    uv_version = re.search(r"^UV_VERSION=(\S+)", (PROJECT_ROOT / "tools" / "uv").read_text(), re.M).group(1)
    assert f"ghcr.io/astral-sh/uv:{uv_version} " in dockerfile, "the image's uv is the one tools/uv pins"
    python = re.search(r"ARG PYTHON_VERSION=(\S+)", dockerfile).group(1)
    assert python == f"{sys.version_info.major}.{sys.version_info.minor}", "the Python the tests run on"
    cmd = next(line for line in final if line.startswith("CMD "))
    assert yaml.safe_load(cmd.removeprefix("CMD ")) == [
        "sh",
        "-c",
        'exec dagster api grpc --module-name "$ML_PLATFORM_CODE_MODULE" --host 0.0.0.0 --port 3030',
    ]
    assert any("ML_PLATFORM_CODE_MODULE=${TEAM:-ml_platform}.definitions" in line for line in final)
    for line in instructions:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                for team in [team["name"] for team in USER_CODE] if "${TEAM}" in source else [""]:
                    path = PROJECT_ROOT / source.replace("${TEAM}", team)
                    assert path.exists(), f"COPY source {source} (TEAM={team}) is not in the repository"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().split()
    for needed in ("!uv.lock", "!pyproject.toml", "!ml_platform/**", "!teams/**"):
        assert needed in ignore


CREDENTIAL_PATTERNS = {
    # a shell variable ($NAME) in a documented command is a placeholder, not a value
    "password in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^@\s/$][^@\s/]*@"),
    "literal password value": re.compile(r"(?im)^[ \t]*[\w-]*password[ \t]*[:=][ \t]*['\"]?[^\s'\"{#$]+"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "Secret with data": re.compile(r"(?ms)^kind:\s*Secret\b.*^(data|stringData):"),
    "token-like string": re.compile(r"(?<![\w/.-])[A-Za-z0-9+/_-]{40,}={0,2}(?![\w/.-])"),
}


def credential_findings(root) -> list[str]:
    """Every line under ``root`` that looks like a credential, plus any live secret value found there."""
    test_database_password = urlsplit(os.environ.get("ML_PLATFORM_TEST_POSTGRES_URL", "")).password or ""
    live = [value for value in (test_database_password,) if len(value) >= 8]
    findings = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        text = path.read_text(errors="replace")
        findings += [f"{path.name}: {label}" for label, pattern in CREDENTIAL_PATTERNS.items() if pattern.search(text)]
        findings += [f"{path.name}: a live secret value" for value in live if value in text]
    return findings


def test_no_secret_value_appears_in_any_file_under_deploy():
    assert credential_findings(DEPLOY) == []


@pytest.mark.parametrize(
    "planted",
    [
        "MLFLOW_BACKEND_STORE_URI: postgresql://mlflow:hunter2hunter2@db:5432/mlflow\n",
        "postgresqlPassword: s3cr3t-value\n",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n",
        "aws_access_key_id: AKIAABCDEFGHIJKLMNOP\n",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\ndata:\n  password: aHVudGVyMg==\n",
        "token: ghp_0123456789abcdefghijABCDEFGHIJ0123456789\n",
    ],
)
def test_the_secret_scan_finds_a_planted_credential(tmp_path, planted):
    (tmp_path / "values.yaml").write_text("global:\n  dagsterHome: /opt/dagster\n" + planted)
    assert credential_findings(tmp_path), f"the scan missed: {planted!r}"


def test_load_documents_reads_multi_document_files():
    assert [doc["kind"] for doc in load_documents(DEPLOY / "k8s" / "mlflow.yaml")] == ["Deployment", "Service"]
