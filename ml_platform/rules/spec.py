"""The model declaration: what a team writes to put a model on the platform (platform-owned type).

A ``ModelSpec`` is data, not code: it names the team's contract and pipeline by import reference
("package.module:attribute") so that loading the Dagster definitions never imports pandera models,
scikit-learn or the team's feature code. Every threshold a gate applies lives here; the gates hold no
literals of their own.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MODEL_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
REF_PATTERN = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")

Metric = Literal["accuracy", "f1_weighted", "f1_macro", "balanced_accuracy"]


def validate_model_name(name: str) -> str:
    """Refuse any name that could leave its folder or break an MLflow or Dagster key."""
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"model name {name!r} is not allowed: use 1-63 lowercase letters, digits, '_' or '-', "
            "starting with a letter or digit (no '/', '..', spaces or capitals), e.g. 'conversion'"
        )
    return name


def resolve_ref(ref: str) -> Any:
    """Import the attribute that a "package.module:attribute" reference names."""
    module_name, _, attribute = ref.partition(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attribute)
    except AttributeError as error:
        raise ImportError(f"{ref!r}: module {module_name!r} has no attribute {attribute!r}") from error


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Segments(_Frozen):
    """Which segments every snapshot must contain, each with its smallest acceptable share of rows."""

    column: str
    min_share: dict[str, float] = Field(min_length=1)

    @field_validator("min_share")
    @classmethod
    def _shares_are_fractions(cls, shares: dict[str, float]) -> dict[str, float]:
        for segment, share in shares.items():
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"segment {segment!r}: min_share {share} is not a fraction in [0, 1]")
        total = math.fsum(shares.values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"min_share values add up to {total:.4f}, more than 1")
        return shares


class Freshness(_Frozen):
    """How old the newest event in a snapshot may be before the data counts as stale."""

    column: str
    max_age: timedelta


class Split(_Frozen):
    """The train/test split: deterministic given the snapshot and these values."""

    test_fraction: float = Field(default=0.25, gt=0.0, lt=1.0)
    seed: int = 42
    stratified: bool = True


class PromotionPolicy(_Frozen):
    """The model gates. A candidate becomes champion only if every one of them passed.

    Attributes:
        min_metrics: absolute floors on the test split, e.g. ``{"accuracy": 0.9}``.
        comparison_metric: the metric used against the trivial baseline and the champion.
        baseline_margin: how far the candidate must be above a ``DummyClassifier`` on the same split.
        champion_tolerance: how far below the champion (re-scored on the candidate's test split) the
            candidate may be and still pass; 0 means "no worse".
        min_segment_f1: floor on the weighted F1 inside every segment of the test split.
    """

    min_metrics: dict[Metric, float] = Field(min_length=1)
    comparison_metric: Metric = "f1_weighted"
    baseline_margin: float = Field(default=0.02, ge=0.0)
    champion_tolerance: float = Field(default=0.0, ge=0.0)
    min_segment_f1: float | None = Field(default=None, ge=0.0, le=1.0)


class Monitoring(_Frozen):
    """When retraining is justified: the drift, volume and age rules the triggers apply.

    Drift is measured between the champion's training snapshot (the reference) and the batches that
    landed since, feature by feature, with the population stability index (PSI) on the reference's
    quantile bins; a feature drifts when its PSI reaches its threshold.

    Attributes:
        features: the monitored features (default: every feature of the spec).
        psi_threshold: the PSI from which a feature counts as drifted (0.2 is the customary "significant").
        feature_thresholds: per-feature PSI thresholds that replace ``psi_threshold`` for those features.
        min_batch_rows: below this many new rows no decision is made, and the ledger says so.
        drift_share: the fraction of monitored features that must drift (always at least one feature).
        new_data_rows: new rows since the champion's snapshot that justify a candidate without drift;
            ``None`` turns the new-data trigger off.
        cooldown: after a trigger requested a run, no further request for this long (no flapping).
        max_champion_age: the hybrid schedule asks for a candidate once the champion is older than
            this; ``None``: age alone never does.
        drift_sensor, new_data_sensor: whether those sensors exist (they start running by default).
        schedule: cron expression of the hybrid "is retraining justified now?" check; ``None``: off.
        drift_on_scoring: the drift sensor also judges the batches landing in the scoring folder
            (``<home>/scoring/<model>/``): the traffic the champion serves, not only what it will train on.
        performance_tolerance: how far the champion's live comparison metric (its predictions joined
            with labelled outcomes from ``<home>/feedback/<model>/``) may fall below the metric it was
            promoted with before an alert is raised and a candidate requested; ``None`` turns the
            performance trigger off.
        min_feedback_rows: a window with fewer labelled champion predictions than this is not judged
            (too noisy to act on), and the ledger says so.
        performance_window: the width of the event-time windows the live metric is computed in
            (aligned to midnight UTC for whole days).
        rollback_on_drop: on a drop, move ``champion`` back to ``previous-champion`` when that version,
            re-scored on the same logged inputs, did measurably better on the same outcomes.
        rollback_margin: how much better (in the comparison metric) the previous champion must be, with
            the lower end of a paired bootstrap's 95% interval of the difference above zero.
    """

    features: tuple[str, ...] | None = None
    psi_threshold: float = Field(default=0.2, gt=0.0)
    feature_thresholds: dict[str, float] = Field(default_factory=dict)
    min_batch_rows: int = Field(default=500, ge=1)
    drift_share: float = Field(default=0.25, gt=0.0, le=1.0)
    new_data_rows: int | None = Field(default=None, ge=1)
    cooldown: timedelta = timedelta(hours=1)
    max_champion_age: timedelta | None = timedelta(days=30)
    drift_sensor: bool = True
    new_data_sensor: bool = True
    schedule: str | None = "0 6 * * *"
    drift_on_scoring: bool = False
    performance_tolerance: float | None = Field(default=None, ge=0.0, lt=1.0)
    min_feedback_rows: int = Field(default=500, ge=1)
    performance_window: timedelta = timedelta(days=1)
    rollback_on_drop: bool = False
    rollback_margin: float = Field(default=0.02, ge=0.0, lt=1.0)

    @field_validator("performance_window")
    @classmethod
    def _window_is_positive(cls, window: timedelta) -> timedelta:
        if window.total_seconds() <= 0:
            raise ValueError(f"performance_window is {window}: a window must be longer than zero")
        return window

    @model_validator(mode="after")
    def _rollback_needs_the_trigger(self) -> Monitoring:
        if self.rollback_on_drop and self.performance_tolerance is None:
            raise ValueError(
                "rollback_on_drop is set but performance_tolerance is None: without the performance trigger "
                "no drop is ever measured, so nothing would roll back"
            )
        return self

    @field_validator("feature_thresholds")
    @classmethod
    def _thresholds_are_positive(cls, thresholds: dict[str, float]) -> dict[str, float]:
        for feature, threshold in thresholds.items():
            if threshold <= 0:
                raise ValueError(f"feature_thresholds[{feature!r}] is {threshold}: a PSI threshold must be > 0")
        return thresholds


class Release(_Frozen):
    """How a model is served and released: the alias serving follows, the canary, and the online gate.

    The online release gate judges a canary against production over the baking ``window`` from the
    online inference log (``ml_platform.rules.release``); its thresholds live here.

    Attributes:
        deployed_alias: what online serving and ``<model>/batch_predictions`` follow. ``production``
            (the default): users get only what a release promoted. ``champion``: every candidate that
            passes the gates is served at once (no canary; for models without online traffic).
        canary_percent: the share of traffic (0-100] ``release start`` sends to the canary by default.
        routing_header: the request header whose hash keeps one caller in one cohort.
        routing_column: a spec column hashed instead of the header (e.g. a customer id).
        shadow_sample: the share of requests a shadow release scores in the background.
        poll_seconds: how often the server reads the registry's aliases and release tags.
        batch_max_rows, batch_wait_ms: the server's micro-batching of concurrent requests.
        window: the baking window: the gate promotes only once it has elapsed, and rolls back when it
            elapsed with too little traffic to judge.
        min_requests: requests per cohort before any online rule is judged.
        max_error_rate: the canary's largest acceptable share of failed requests.
        max_p99_ratio: the canary's p99 latency over production's, at most.
        max_prediction_shift: the Jensen-Shannon distance (base 2, in [0, 1]) between the cohorts'
            predicted-class distributions, at most.
        metric_tolerance: how far the canary's live metric may fall below production's on the same
            labelled rows (paired bootstrap, as the performance monitor) before it is rolled back.
        min_feedback_rows: labelled rows needed before the live metric is judged.
        accept_manual_alias_moves: whether batch scoring and the online server follow the deployed
            alias when someone moved it outside the platform (by hand in the registry). A hand move of
            ``champion`` is recorded either way (``unrecorded-move``); by default it is refused until a
            person confirms it (``ml-platform approve``) or moves it back (``ml-platform rollback``).
            A hand move of ``production`` is recorded too where a platform home reconciles (batch
            scoring, ``history``), and refused until it is moved back where the last release put it
            (``stores.recovery.manual_move``).
    """

    deployed_alias: Literal["production", "champion"] = "production"
    canary_percent: float = Field(default=10.0, gt=0.0, le=100.0)
    routing_header: str = Field(default="X-Routing-Key", min_length=1)
    routing_column: str | None = None
    shadow_sample: float = Field(default=1.0, gt=0.0, le=1.0)
    poll_seconds: float = Field(default=2.0, gt=0.0)
    batch_max_rows: int = Field(default=64, ge=1)
    batch_wait_ms: float = Field(default=2.0, ge=0.0)
    window: timedelta = timedelta(minutes=10)
    min_requests: int = Field(default=200, ge=1)
    max_error_rate: float = Field(default=0.01, ge=0.0, le=1.0)
    max_p99_ratio: float = Field(default=1.5, gt=0.0)
    max_prediction_shift: float = Field(default=0.1, gt=0.0, le=1.0)
    metric_tolerance: float = Field(default=0.02, ge=0.0, lt=1.0)
    min_feedback_rows: int = Field(default=200, ge=1)
    accept_manual_alias_moves: bool = False

    @field_validator("window")
    @classmethod
    def _window_is_positive(cls, window: timedelta) -> timedelta:
        if window.total_seconds() <= 0:
            raise ValueError(f"release.window is {window}: a baking window must be longer than zero")
        return window


class DemoData(_Frozen):
    """The team's seeded demo-data generator: what ``ml-platform demo-data`` and ``ml-platform demo`` call.

    The generator is ``(rows, seed, **options) -> DataFrame`` and returns landing rows that satisfy the
    model's contract. The option sets turn the same generator into the other demo files; a model without
    one cannot write that kind of file, and the CLI says so.

    Attributes:
        generator: reference ("package.module:function") to the generator.
        rows: rows of a default demo landing file.
        drift: keyword options that make a shifted batch (``demo-data --drift``), e.g. ``{"campaign": true}``.
        scoring: keyword options that make a scoring day (``--scoring``/``--feedback``), e.g. ``{"days": 1.0}``.
        scoring_rows: rows of a default scoring batch.
        degraded: keyword options added to ``scoring`` for changed outcomes (``--feedback --degraded``).
    """

    generator: str
    rows: int = Field(default=1_000, ge=1)
    drift: dict[str, Any] | None = None
    scoring: dict[str, Any] | None = None
    scoring_rows: int = Field(default=5_000, ge=1)
    degraded: dict[str, Any] | None = None

    @field_validator("generator")
    @classmethod
    def _is_reference(cls, ref: str) -> str:
        if not REF_PATTERN.fullmatch(ref):
            raise ValueError(f"{ref!r} is not an import reference of the form 'package.module:attribute'")
        return ref


class LandingLimits(_Frozen):
    """How large one landing file may be, checked before it is read whole.

    A landing folder is written by whoever exports the data, and a few kilobytes of gzip or Parquet can
    decompress to gigabytes: each limit is checked from what costs nothing to learn (the size on disk,
    Parquet's footer) or from a count that streams through the file and stops as soon as it is passed.

    Attributes:
        max_file_bytes: the size of one file on disk.
        max_decompressed_bytes: what one compressed CSV decompresses to, or a Parquet file's
            uncompressed data (its metadata's total), whatever its codec.
        max_rows: rows in one file (a CSV's lines after the header; a Parquet file's metadata).
        max_columns: columns in one file (a CSV's header; a Parquet file's metadata).
    """

    max_file_bytes: int = Field(default=2 << 30, ge=1)
    max_decompressed_bytes: int = Field(default=8 << 30, ge=1)
    max_rows: int = Field(default=50_000_000, ge=1)
    max_columns: int = Field(default=1_000, ge=1)


CPU_QUANTITY = re.compile(r"^(?:[0-9]+(?:\.[0-9]+)?|[0-9]+m)$")
MEMORY_QUANTITY = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")


class Toleration(_Frozen):
    """A Kubernetes toleration, so the training pod may land on tainted (e.g. GPU) nodes."""

    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None

    @model_validator(mode="after")
    def _exists_has_no_value(self) -> Toleration:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError(f"toleration {self.key!r}: operator 'Exists' takes no value (found {self.value!r})")
        if self.operator == "Equal" and self.key is None:
            raise ValueError("a toleration with operator 'Equal' needs a key")
        return self


class Compute(_Frozen):
    """What a model's training run asks of a Kubernetes cluster; the embedded default ignores it.

    The whole lifecycle run (snapshot, features, training, registry) runs in one pod on the cluster,
    so these are that pod's requests. Limits equal requests (Guaranteed QoS: a training pod is not
    the first evicted under memory pressure, and a memory leak fails the run instead of the node).

    Attributes:
        cpu: a Kubernetes CPU quantity, e.g. ``"2"`` or ``"500m"``.
        memory: a Kubernetes memory quantity, e.g. ``"4Gi"`` or ``"512Mi"``.
        gpu: how many ``nvidia.com/gpu`` the pod needs; ``None`` for none.
        node_selector: node labels the pod must land on, e.g. ``{"cloud.google.com/gke-accelerator": "nvidia-l4"}``.
        tolerations: taints the pod tolerates (GPU node pools are usually tainted).
    """

    cpu: str
    memory: str
    gpu: int | None = Field(default=None, ge=1)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()

    @field_validator("cpu")
    @classmethod
    def _cpu_is_a_quantity(cls, cpu: str) -> str:
        if not CPU_QUANTITY.fullmatch(cpu) or float(cpu.removesuffix("m")) <= 0:
            raise ValueError(f"compute.cpu {cpu!r} is not a positive Kubernetes CPU quantity: write e.g. '2' or '500m'")
        return cpu

    @field_validator("memory")
    @classmethod
    def _memory_is_a_quantity(cls, memory: str) -> str:
        if not MEMORY_QUANTITY.fullmatch(memory) or float(memory.rstrip("KMGTPEik")) <= 0:
            raise ValueError(
                f"compute.memory {memory!r} is not a positive Kubernetes memory quantity: write e.g. '4Gi' or '512Mi'"
            )
        return memory


class ModelSpec(_Frozen):
    """A model on the platform, declared by the team that owns it.

    Attributes:
        name: the model's name; also its Dagster group and key prefix and its MLflow registered model.
        landing_dir: where landing files arrive; relative paths are under the platform home. Defaults
            to ``<home>/landing/<name>``.
        contract: reference to the pandera ``DataFrameModel`` that every raw snapshot must satisfy.
        feature_contract: reference to the pandera ``DataFrameModel`` for the feature frame (the raw
            contract's columns plus ``split``); defaults to the raw contract.
        key_column: a column whose values must be unique (a session or sample id), if there is one.
        label: the label column; ``label_values`` are the only classes accepted.
        features: the columns the pipeline receives, in order.
        segments: segment coverage rule; ``None`` when the data has no segments.
        freshness: newest-event age rule; ``None`` when the data has no event time.
        min_rows: the smallest snapshot worth training on.
        pipeline: reference to a function ``(params) -> sklearn Pipeline`` returning an *unfitted*
            pipeline, feature steps and estimator together, so serving applies what training did.
        params: the estimator's parameters, logged to MLflow and part of the candidate's fingerprint.
        skops_trusted_types: types MLflow's skops serializer must be told to trust for this pipeline.
        compute: the CPU, memory and GPU its training run needs on Kubernetes; ``None``: the cluster's
            default run resources (``deploy/``). Ignored by the embedded default.
        promotion: ``auto``: a candidate that passes every gate becomes champion; ``manual``: it becomes
            ``challenger`` and waits for ``ml-platform approve``.
        monitoring: the retraining triggers' rules (drift, new data, age).
        release: what serving follows, and the canary and its online gate.
        limits: how large one landing file may be before it is read (bytes, rows, columns).
        csv_delimiter: the field delimiter of the team's CSV exports; a CSV whose header uses another
            one is refused, naming both.
        unexpected_columns: what a snapshot does with landing columns the raw contract does not
            declare: ``refuse`` (the schema gate fails, naming them) or ``drop`` (only the contract's
            columns are kept, and the dropped names are recorded in the snapshot's metadata and the
            decision ledger).
        demo_data: the team's seeded demo-data generator; ``None``: ``ml-platform demo`` skips the model.
    """

    name: str
    description: str = ""
    landing_dir: str | None = None
    contract: str
    feature_contract: str | None = None
    key_column: str | None = None
    label: str
    label_values: tuple[Any, ...] = Field(min_length=2)
    features: tuple[str, ...] = Field(min_length=1)
    segments: Segments | None = None
    freshness: Freshness | None = None
    min_rows: int = Field(default=100, ge=1)
    pipeline: str
    params: dict[str, Any] = Field(default_factory=dict)
    split: Split = Split()
    policy: PromotionPolicy
    skops_trusted_types: tuple[str, ...] = ()
    compute: Compute | None = None
    promotion: Literal["auto", "manual"] = "auto"
    monitoring: Monitoring = Monitoring()
    release: Release = Release()
    limits: LandingLimits = LandingLimits()
    csv_delimiter: Literal[",", ";", "\t", "|"] = ","
    unexpected_columns: Literal["refuse", "drop"] = "refuse"
    demo_data: DemoData | None = None

    @field_validator("name")
    @classmethod
    def _name_is_safe(cls, name: str) -> str:
        return validate_model_name(name)

    @field_validator("contract", "feature_contract", "pipeline")
    @classmethod
    def _is_reference(cls, ref: str | None) -> str | None:
        if ref is not None and not REF_PATTERN.fullmatch(ref):
            raise ValueError(f"{ref!r} is not an import reference of the form 'package.module:attribute'")
        return ref

    @model_validator(mode="after")
    def _columns_are_consistent(self) -> ModelSpec:
        if self.label in self.features:
            raise ValueError(f"label {self.label!r} is also listed as a feature: the model would see its answer")
        if self.policy.min_segment_f1 is not None and self.segments is None:
            raise ValueError("policy.min_segment_f1 is set but the spec declares no segments")
        unknown = sorted(set(self.monitoring.features or ()) - set(self.features))
        unknown += sorted(set(self.monitoring.feature_thresholds) - set(self.monitored_features))
        if unknown:
            raise ValueError(
                f"monitoring names {unknown} which are not monitored features of the spec "
                f"(monitored: {list(self.monitored_features)})"
            )
        routing = self.release.routing_column
        if routing is not None and (routing == self.label or routing not in self.required_columns):
            raise ValueError(
                f"release.routing_column {routing!r} is not a column the spec declares for scoring "
                f"(expected one of {[c for c in self.required_columns if c != self.label]})"
            )
        return self

    @model_validator(mode="after")
    def _performance_trigger_has_a_key(self) -> ModelSpec:
        if self.monitoring.performance_tolerance is not None and self.key_column is None:
            raise ValueError(
                f"model {self.name!r}: monitoring.performance_tolerance is set but the spec has no key_column: "
                "outcomes cannot be matched with predictions without a key (set key_column, or drop "
                "performance_tolerance)"
            )
        return self

    @property
    def dagster_name(self) -> str:
        """The name as Dagster group, job and op names allow it (no '-')."""
        return self.name.replace("-", "_")

    @property
    def monitored_features(self) -> tuple[str, ...]:
        """The features whose drift the triggers measure."""
        return self.monitoring.features or self.features

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns the platform itself relies on; none of them may hold nulls."""
        columns = [self.key_column, self.label, *self.features]
        columns += [self.segments.column if self.segments else None]
        columns += [self.freshness.column if self.freshness else None]
        return tuple(dict.fromkeys(c for c in columns if c is not None))

    def landing_path(self, home: Path) -> Path:
        if self.landing_dir is None:
            return home / "landing" / self.name
        path = Path(self.landing_dir).expanduser()
        return path if path.is_absolute() else home / path

    def params_digest(self) -> str:
        """A stable hash of what training is told to do: pipeline, parameters, split, features."""
        payload = {
            "pipeline": self.pipeline,
            "params": self.params,
            "split": self.split.model_dump(),
            "features": list(self.features),
            "label": self.label,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


MODEL_GATES = ("meets_absolute_minimums", "beats_trivial_baseline", "no_worse_than_champion", "meets_segment_minimums")


def model_gate_names(spec: ModelSpec) -> list[str]:
    """The model gates a spec declares, in order: what the definitions need at load time.

    Kept here, beside the spec, because ``policy`` imports the training code (numpy, pandas), which
    loading the Dagster definitions must not pay for; ``policy.model_gate_names`` gives the same list.
    """
    names = list(MODEL_GATES[:3])
    return names + ["meets_segment_minimums"] if spec.policy.min_segment_f1 is not None else names
