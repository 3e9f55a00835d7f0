"""deploy/k8s/serving-<model>.yaml: rendered from each spec, valid, and what the release contract asks of a server."""

from __future__ import annotations

import pytest

from ml_platform.rules.serving_manifests import DEFAULT_COMPUTE, SECRET, labels, name_of, render, serving_manifests
from ml_platform.rules.spec import Compute, Toleration
from ml_platform_tests.deploy.k8s import DEPLOY, load_documents, validate
from ml_platform_tests.models import CONVERSION, SPECS


def by_kind(spec) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in serving_manifests(spec)}


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_each_model_s_serving_manifests_are_committed_as_rendered_from_its_spec(spec):
    path = DEPLOY / "k8s" / f"serving-{spec.name}.yaml"
    assert path.is_file(), (
        f"no serving manifests for {spec.name!r}: run `ml-platform serving-manifests {spec.name} --write`"
    )
    assert path.read_text() == render(spec), (
        f"{path.name} differs: run `ml-platform serving-manifests {spec.name} --write`"
    )
    assert [doc["kind"] for doc in load_documents(path)] == [
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    ]


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_the_server_pod_probes_runs_read_only_and_takes_its_resources_from_the_spec(spec):
    pod = by_kind(spec)["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    compute = spec.compute or DEFAULT_COMPUTE
    expected = {"cpu": compute.cpu, "memory": compute.memory}
    assert container["resources"] == {"requests": expected, "limits": expected}
    assert container["args"][:2] == ["serve", spec.name]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert mounts["/var/lib/ml-platform/inference"]["subPath"] == "inference"  # the one writable path of the home
    uris = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert uris == {"MLFLOW_TRACKING_URI": SECRET, "MLFLOW_REGISTRY_URI": SECRET}


def test_the_service_autoscaler_and_disruption_budget_point_at_the_server_pods():
    found = by_kind(CONVERSION)
    pods = found["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert found["Service"]["spec"]["selector"] == pods == labels(CONVERSION)
    assert found["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == pods
    assert found["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    target = found["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", name_of(CONVERSION))
    assert found["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2


def test_a_gpu_pool_s_node_selector_and_tolerations_reach_the_server_pod_and_validate():
    compute = Compute(
        cpu="2",
        memory="4Gi",
        node_selector={"pool": "inference"},
        tolerations=(Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),),
    )
    spec = CONVERSION.model_copy(update={"compute": compute})
    deployment = by_kind(spec)["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "inference"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    for doc in serving_manifests(spec):
        validate(doc)
    broken = dict(deployment, spec={**deployment["spec"], "replicas": "two"})
    with pytest.raises(Exception, match="two"):
        validate(broken)
