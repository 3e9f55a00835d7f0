"""Every name the platform gives to a model's things, in one place (platform-owned).

A model's Dagster asset keys, check, job, group, sensor and partition names, the prefixes of the tags the
platform writes (Dagster run tags use ``ml_platform/``, MLflow tags ``ml_platform.``: each system's own
convention) and the registry aliases. Sensors, stage commands, the CLI and tests build names here and
nowhere else, so that a rename is one edit and a reader finds every name from one file.

Importing this module imports nothing heavy: Dagster is imported only when an asset key is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

RUN_TAG = "ml_platform/"  # Dagster run tags: ml_platform/model, ml_platform/trigger, ...
REGISTRY_TAG = "ml_platform."  # MLflow run and model-version tags: ml_platform.snapshot_id, ...

TRIGGER_TAG = f"{RUN_TAG}trigger"
DECISION_TAG = f"{RUN_TAG}decision_id"
MODEL_TAG = f"{RUN_TAG}model"

# Registry aliases, one meaning each.
CHAMPION = "champion"  # the newest candidate that passed every gate
PREVIOUS_CHAMPION = "previous-champion"  # kept for rollback
CHALLENGER = "challenger"  # manual promotion: passed every gate, waits for `ml-platform approve`
STAGING = "staging"
PRODUCTION = "production"  # what users are served, online and in batch (ModelSpec.release.deployed_alias)
CANARY = "canary"  # the version being released: set by `ml-platform release start`, removed by its verdict
PREVIOUS_PRODUCTION = "previous-production"  # the production a release replaced, kept for rollback

# Registry tags on the canary version, written by `ml-platform release start` (the server reads them).
CANARY_PERCENT_TAG = f"{REGISTRY_TAG}canary_percent"
RELEASE_MODE_TAG = f"{REGISTRY_TAG}release_mode"
RELEASE_STARTED_AT_TAG = f"{REGISTRY_TAG}release_started_at"
RELEASE_ID_TAG = f"{REGISTRY_TAG}release_id"
RELEASE_OUTCOME_TAG = f"{REGISTRY_TAG}release_outcome"  # written by the verdict, removed by the next start

SNAPSHOT = "dataset_snapshot"
FEATURES = "validated_features"
CANDIDATE = "candidate_model"
REGISTRY = "registry_entry"
DECISIONS = "decisions"
BATCH_PREDICTIONS = "batch_predictions"
DEPLOYMENT = "deployment"
LIFECYCLE_ASSETS = (SNAPSHOT, FEATURES, CANDIDATE, REGISTRY)
DATA_ASSETS = (SNAPSHOT, FEATURES)

FEATURE_GATE = "feature_contract_holds"


@dataclass(frozen=True)
class ModelKeys:
    """The names of one model's Dagster objects: the asset group and key prefix are the model name.

    ``model`` is the spec's name (it may contain ``-``); Dagster group, job, op, sensor and partition
    names may not, so they use ``dagster_name``.
    """

    model: str

    @property
    def dagster_name(self) -> str:
        return self.model.replace("-", "_")

    def asset(self, name: str) -> dg.AssetKey:
        import dagster as dg

        return dg.AssetKey([self.model, name])

    @property
    def snapshot(self) -> dg.AssetKey:
        return self.asset(SNAPSHOT)

    @property
    def features(self) -> dg.AssetKey:
        return self.asset(FEATURES)

    @property
    def candidate(self) -> dg.AssetKey:
        return self.asset(CANDIDATE)

    @property
    def registry(self) -> dg.AssetKey:
        return self.asset(REGISTRY)

    @property
    def decisions(self) -> dg.AssetKey:
        return self.asset(DECISIONS)

    @property
    def batch_predictions(self) -> dg.AssetKey:
        return self.asset(BATCH_PREDICTIONS)

    @property
    def deployment(self) -> dg.AssetKey:
        return self.asset(DEPLOYMENT)

    @property
    def group(self) -> str:
        """The lifecycle assets' group: the model's name."""
        return self.dagster_name

    @property
    def serving_group(self) -> str:
        return f"{self.dagster_name}_serving"

    @property
    def lifecycle_job(self) -> str:
        return f"{self.dagster_name}_lifecycle"

    @property
    def data_gates_job(self) -> str:
        """The CI stage ``check-data``'s job: the snapshot and its gates, nothing downstream."""
        return f"{self.dagster_name}_data_gates"

    @property
    def experiment(self) -> str:
        """The MLflow experiment holding the model's training runs."""
        return f"ml_platform/{self.model}"

    @property
    def snapshot_gates(self) -> str:
        return f"{self.dagster_name}_snapshot_gates"

    @property
    def model_gates(self) -> str:
        return f"{self.dagster_name}_model_gates"

    @property
    def scoring_partitions(self) -> str:
        return f"{self.dagster_name}_scoring_batches"

    @property
    def retraining_check(self) -> str:
        return f"{self.dagster_name}_retraining_check"

    def sensor(self, kind: str) -> str:
        return f"{self.dagster_name}_{kind}_sensor"


def location_sensor(kind: str) -> str:
    """The sensor that serves the ``kind`` trigger of every model of a code location (``defs/location_sensors``)."""
    return f"{kind}_sensor"
