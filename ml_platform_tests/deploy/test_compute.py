"""A model's compute request: validated in the spec, carried as the lifecycle job's run tag."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from ml_platform.definitions import defs
from ml_platform.defs.compute import K8S_CONFIG_TAG, k8s_run_config, k8s_run_tags
from ml_platform.rules.spec import Compute, Toleration
from ml_platform_tests.models import CONVERSION, IRIS


def test_requests_equal_limits_and_a_gpu_is_an_nvidia_extended_resource():
    config = k8s_run_config(Compute(cpu="2", memory="4Gi", gpu=2))
    assert config == {
        "container_config": {
            "resources": {
                "requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "2"},
                "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "2"},
            }
        }
    }


def test_node_selector_and_tolerations_go_to_the_pod_spec():
    compute = Compute(
        cpu="500m",
        memory="512Mi",
        node_selector={"pool": "training"},
        tolerations=(Toleration(key="dedicated", value="training", effect="NoSchedule"),),
    )
    assert k8s_run_config(compute)["pod_spec_config"] == {
        "node_selector": {"pool": "training"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "training", "effect": "NoSchedule"}],
    }


def test_the_lifecycle_job_carries_the_tag_on_the_run_not_on_the_assets():
    job = defs.resolve_job_def("conversion_lifecycle")
    assert json.loads(job.tags[K8S_CONFIG_TAG]) == k8s_run_config(CONVERSION.compute)
    assert job.tags["ml_platform/model"] == "conversion"


def test_a_spec_without_compute_adds_no_tag():
    assert IRIS.compute is None
    assert k8s_run_tags(IRIS) == {}
    assert K8S_CONFIG_TAG not in defs.resolve_job_def("iris_lifecycle").tags


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cpu": "2 cores", "memory": "4Gi"}, r"compute.cpu '2 cores' is not a positive Kubernetes CPU quantity"),
        ({"cpu": "0", "memory": "4Gi"}, r"compute.cpu '0' is not a positive"),
        ({"cpu": "2", "memory": "4 GB"}, r"compute.memory '4 GB' is not a positive Kubernetes memory quantity.*'4Gi'"),
        ({"cpu": "2", "memory": "4Gi", "gpu": 0}, r"gpu\s+Input should be greater than or equal to 1"),
        (
            {"cpu": "2", "memory": "4Gi", "tolerations": [{"operator": "Exists", "key": "k", "value": "v"}]},
            r"operator 'Exists' takes no value",
        ),
    ],
)
def test_a_bad_compute_request_is_refused_when_the_spec_loads(fields, message):
    with pytest.raises(ValidationError, match=message):
        CONVERSION.model_validate(CONVERSION.model_dump() | {"compute": fields})
