"""A model's compute request as the run tags that dagster-k8s reads (platform-owned).

On Kubernetes, ``K8sRunLauncher`` starts one Job per *run* and reads its pod's resources, node selector
and tolerations from the run's ``dagster-k8s/config`` tag. Per-asset ``op_tags`` with the same key are
read only by ``k8s_job_executor``, which starts a pod per step (dagster#22865, #20429); the platform
runs a model's steps in one process, so the training step runs inside the run worker's pod and the
tag belongs on the run. The model's ``<model>_lifecycle`` job carries it, so every run of that job
(schedule, sensor, CLI, Launchpad) inherits it.

On the embedded default the tag is inert: no launcher reads it.
"""

from __future__ import annotations

import json

from ml_platform.rules.spec import Compute, ModelSpec

K8S_CONFIG_TAG = "dagster-k8s/config"
GPU_RESOURCE = "nvidia.com/gpu"


def k8s_run_config(compute: Compute) -> dict:
    """The ``dagster-k8s/config`` value for a compute request, in dagster-k8s's own field names.

    Requests and limits are equal (Guaranteed QoS); a GPU is requested through its extended resource
    ``nvidia.com/gpu``, which Kubernetes requires in limits and defaults the request to.
    """
    quantities = {"cpu": compute.cpu, "memory": compute.memory}
    if compute.gpu:
        quantities[GPU_RESOURCE] = str(compute.gpu)
    config: dict = {"container_config": {"resources": {"requests": dict(quantities), "limits": dict(quantities)}}}
    pod_spec: dict = {}
    if compute.node_selector:
        pod_spec["node_selector"] = dict(compute.node_selector)
    if compute.tolerations:
        pod_spec["tolerations"] = [toleration.model_dump(exclude_none=True) for toleration in compute.tolerations]
    if pod_spec:
        config["pod_spec_config"] = pod_spec
    return config


def k8s_run_tags(spec: ModelSpec) -> dict[str, str]:
    """The run tags that size the model's lifecycle run on Kubernetes; none when the spec asks for nothing."""
    if spec.compute is None:
        return {}
    return {K8S_CONFIG_TAG: json.dumps(k8s_run_config(spec.compute), sort_keys=True)}
