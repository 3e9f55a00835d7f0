"""The asset factory: one ``ModelSpec`` in, that model's gated lifecycle graph and its job out.

    <model>/dataset_snapshot ─► <model>/validated_features ─► <model>/candidate_model ─► <model>/registry_entry
      data gates (blocking)        feature contract (blocking)    model gates (blocking)

Each asset and its checks come from their own builder in ``ml_platform.defs.assets``; how a step
turns evidence into check results and refusals is in ``ml_platform.defs.gating``.
"""

import dagster as dg

from ml_platform.defs.assets.candidate import build_candidate
from ml_platform.defs.assets.features import build_features
from ml_platform.defs.assets.registry import build_registry
from ml_platform.defs.assets.snapshot import build_snapshot
from ml_platform.defs.compute import k8s_run_tags
from ml_platform.keys import MODEL_TAG, ModelKeys
from ml_platform.rules.spec import ModelSpec


def model_definitions(spec: ModelSpec) -> dg.Definitions:
    """Every lifecycle asset, gate and the lifecycle job of one model, generated from its spec."""
    keys = ModelKeys(spec.name)
    lifecycle = dg.define_asset_job(
        keys.lifecycle_job,
        selection=dg.AssetSelection.groups(keys.group),
        description=f"Landing files to champion for {spec.name!r}, every gate on the way.",
        tags={MODEL_TAG: spec.name, **k8s_run_tags(spec)},
    )
    return dg.Definitions.merge(
        build_snapshot(spec, keys),
        build_features(spec, keys),
        build_candidate(spec, keys),
        build_registry(spec, keys),
        dg.Definitions(jobs=[lifecycle]),
    )
