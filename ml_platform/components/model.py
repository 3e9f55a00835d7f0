"""``ml_platform.MLModel``: one model's gated lifecycle as a Dagster Component.

The component's attributes are exactly a ``ModelSpec``: Dagster validates a team's ``defs.yaml``
against it (and reports the file, line, field and allowed values of a bad one), and
``dg list defs`` / ``dg check defs`` read its schema. The Python route hands a ``ModelSpec`` to
``model_definitions``; both end in ``MLModel.build_defs``.
"""

from __future__ import annotations

from functools import cache

import dagster as dg

from ml_platform.rules.spec import ModelSpec
from ml_platform.settings import PlatformPaths


class MLModel(dg.Component):
    """A model on the platform: its data gates, training, model gates, registry, triggers and scoring.

    Attributes (``defs.yaml``): every ``ModelSpec`` field; the contract, feature contract, pipeline
    and demo-data generator by import reference ("package.module:attribute"), thresholds by value.
    """

    def __init__(self, spec: ModelSpec):
        self.spec = spec

    @classmethod
    def get_model_cls(cls) -> type[ModelSpec]:
        return ModelSpec

    @classmethod
    def load(cls, attributes: ModelSpec | None, context: dg.ComponentLoadContext) -> MLModel:
        if attributes is None:
            raise ValueError(f"{context.path}: ml_platform.MLModel needs attributes (the model's ModelSpec fields)")
        return cls(attributes)

    @classmethod
    def from_spec(cls, spec: ModelSpec) -> MLModel:
        return cls(spec)

    def build_defs(self, context: dg.ComponentLoadContext | None = None) -> dg.Definitions:
        return model_definitions(self.spec)


def model_definitions(spec: ModelSpec, paths: PlatformPaths | None = None) -> dg.Definitions:
    """Everything one model needs in a code location: its graph, gates, triggers, scoring, release and resources.

    The resources (on ``paths``, default: the environment's home) and the executor are the same objects for
    every model of a process (``platform_resources``), so a code location that declares several models
    merges their definitions without a conflict.
    """
    from ml_platform.defs.decisions import decisions_definitions
    from ml_platform.defs.factory import model_definitions as lifecycle_definitions
    from ml_platform.defs.release import release_definitions
    from ml_platform.defs.scoring import scoring_definitions
    from ml_platform.defs.triggers import trigger_definitions

    return dg.Definitions.merge(
        lifecycle_definitions(spec),
        decisions_definitions(spec),
        trigger_definitions(spec),
        scoring_definitions(spec),
        release_definitions(spec),
        dg.Definitions(resources=platform_resources(paths), executor=dg.in_process_executor),
    )


def platform_resources(paths: PlatformPaths | None = None) -> dict[str, dg.ConfigurableResource]:
    """The platform home and MLflow store resources for ``paths`` (default: the environment's), one set per home.

    In-process execution is the platform-wide default: the multiprocess executor starts a Python process
    per step and re-imports pandas, scikit-learn and MLflow in each, and one process means one MLflow
    SQLite migration, never two racing.
    """
    return _resources_for(paths or PlatformPaths.from_environment())


@cache
def _resources_for(paths: PlatformPaths) -> dict[str, dg.ConfigurableResource]:
    from ml_platform.defs.resources import default_resources

    return default_resources(paths)
