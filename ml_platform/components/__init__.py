"""The Dagster Component a team instantiates for each of its models (platform-owned).

A team declares a model in its own project, in YAML (``defs.yaml``: ``type: ml_platform.MLModel`` with
the ``ModelSpec`` fields as ``attributes``) or in Python (``ml_platform.model_definitions(spec)``);
both routes build the same assets, checks, sensors, jobs and evidence.
"""

from ml_platform.components.model import MLModel, model_definitions, platform_resources

__all__ = ["MLModel", "model_definitions", "platform_resources"]
