"""A model's online serving on Kubernetes, rendered from its spec (platform-owned, pure).

``ml-platform serving-manifests <model> --write`` writes ``deploy/k8s/serving-<model>.yaml``: a
Deployment running ``ml-platform serve <model>``, its Service, a HorizontalPodAutoscaler and a
PodDisruptionBudget. Rendering them from the spec keeps the pods' resources equal to the spec's
``compute`` (a test holds the committed files equal to the rendering, as it does for the CI workflows).

- Readiness on ``/ready`` (a verified model is loaded), liveness on ``/health`` (the process answers),
  and a startup probe on ``/health`` so that a slow first load is not killed by the liveness probe.
- Non-root (the image's uid 10001), read-only root file system, no privilege escalation, no
  capabilities; ``/tmp`` is an ``emptyDir``. The inference log is the one writable path of the shared
  home (``subPath: inference``): the release sensor and the monitors read it from there.
- The MLflow tracking and registry URI come from the Secret ``ml-platform-serving-mlflow`` (key
  ``tracking-uri``), which may carry credentials; the rest of the environment from ``ml-platform-env``.
- Requests equal limits (Guaranteed QoS, as for training runs); a model without ``compute`` gets
  ``DEFAULT_COMPUTE``. Two replicas at least, and a PodDisruptionBudget keeping one during a node drain.
"""

from __future__ import annotations

from typing import Any

from ml_platform.rules.spec import Compute, ModelSpec

IMAGE = "REGISTRY/ml-platform:TAG"
PORT = 8080
HOME = "/var/lib/ml-platform"
SECRET = "ml-platform-serving-mlflow"
SECRET_KEY = "tracking-uri"
DEFAULT_COMPUTE = Compute(cpu="500m", memory="1Gi")
MIN_REPLICAS, MAX_REPLICAS, TARGET_CPU_PERCENT = 2, 6, 70
HEADER = """\
# Online serving of the model {model!r}: rendered from its spec by `ml-platform serving-manifests {model} --write`
# (do not edit by hand: a test keeps this file equal to the rendering). Resources are the spec's compute.
# The tracking URI comes from the Secret {secret} (key {key}); see deploy/README.md.
"""


def name_of(spec: ModelSpec) -> str:
    return f"ml-platform-serve-{spec.name}"


def labels(spec: ModelSpec) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "ml-platform-serve",
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/part-of": "ml-platform",
    }


def _metadata(spec: ModelSpec) -> dict[str, Any]:
    return {"name": name_of(spec), "namespace": "ml-platform", "labels": labels(spec)}


def _container(spec: ModelSpec) -> dict[str, Any]:
    compute = spec.compute or DEFAULT_COMPUTE
    quantities = {"cpu": compute.cpu, "memory": compute.memory}

    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "failureThreshold": failures}

    return {
        "name": "serve",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["ml-platform"],
        "args": ["serve", spec.name, "--host", "0.0.0.0", "--port", str(PORT)],
        "envFrom": [{"configMapRef": {"name": "ml-platform-env"}}],
        "env": [
            *(
                {"name": name, "valueFrom": {"secretKeyRef": {"name": SECRET, "key": SECRET_KEY}}}
                for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
            ),
            {"name": "HOME", "value": "/tmp"},
        ],
        "ports": [{"name": "http", "containerPort": PORT}],
        "startupProbe": probe("/health", 5, 60),
        "readinessProbe": probe("/ready", 5, 3),
        "livenessProbe": probe("/health", 10, 3),
        "resources": {"requests": dict(quantities), "limits": dict(quantities)},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "home", "mountPath": f"{HOME}/inference", "subPath": "inference"},
        ],
    }


def _pod(spec: ModelSpec) -> dict[str, Any]:
    compute = spec.compute or DEFAULT_COMPUTE
    pod: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 30,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(spec)],
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "home", "persistentVolumeClaim": {"claimName": "ml-platform-home"}},
        ],
    }
    if compute.node_selector:
        pod["nodeSelector"] = dict(compute.node_selector)
    if compute.tolerations:
        pod["tolerations"] = [t.model_dump(exclude_none=True) for t in compute.tolerations]
    return pod


def serving_manifests(spec: ModelSpec) -> list[dict[str, Any]]:
    """The Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget of a model's server."""
    selector = {"matchLabels": labels(spec)}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec),
        "spec": {
            "replicas": MIN_REPLICAS,
            "selector": selector,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": labels(spec)}, "spec": _pod(spec)},
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec),
        "spec": {"selector": labels(spec), "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    autoscaler = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(spec),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name_of(spec)},
            "minReplicas": MIN_REPLICAS,
            "maxReplicas": MAX_REPLICAS,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": TARGET_CPU_PERCENT},
                    },
                }
            ],
        },
    }
    budget = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _metadata(spec),
        "spec": {"minAvailable": 1, "selector": selector},
    }
    return [deployment, service, autoscaler, budget]


def render(spec: ModelSpec) -> str:
    """The manifests as one YAML file with its header."""
    import yaml

    documents = "---\n".join(yaml.safe_dump(doc, sort_keys=False) for doc in serving_manifests(spec))
    return HEADER.format(model=spec.name, secret=SECRET, key=SECRET_KEY) + documents
