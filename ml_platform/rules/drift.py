"""Drift between a reference frame and a new batch, feature by feature (platform-owned, pure).

The reference is the champion's training snapshot; the batch is what landed since. For each monitored
feature:

- **numeric**: the population stability index (PSI) on the reference's decile bins, and the
  Kolmogorov-Smirnov statistic with its asymptotic p-value;
- **categorical** (text, booleans, categories): PSI over the categories, and the Jensen-Shannon
  distance (base 2, so between 0 and 1).

A feature drifts when its PSI reaches its threshold (0.2 unless the spec says otherwise). PSI is an
effect size: with a million rows every KS p-value is "significant", so the p-value is reported as
evidence and never decides. A batch smaller than the minimum gives no decision, and says so; the batch
drifts when at least the drift share of the monitored features (never fewer than one) drifted.

Everything is vectorized over NumPy arrays: the reference is sorted once per numeric feature (and can
be prepared once with ``Reference.from_frame`` for many batches); each batch's numeric column is
sorted once and read with ``searchsorted`` at the reference's cut points. KS is exact
(``scipy.stats.ks_2samp``) up to ``EXACT_KS_MAX_ROWS`` rows in total; above, both CDFs are read at the
union of both samples' ``KS_GRID``-quantile grids, which is within one grid cell's mass (about
1/``KS_GRID`` for continuous data) of the exact statistic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import distance

PSI_BINS = 10
KS_GRID = 1000
EXACT_KS_MAX_ROWS = 200_000
EPSILON = 1e-4  # the share given to an empty bin, so PSI stays finite when a bin empties or appears
DEFAULT_PSI_THRESHOLD = 0.2


@dataclass(frozen=True)
class FeatureReference:
    """What the drift measures need from one reference column, computed once."""

    feature: str
    kind: str  # "numeric" or "categorical"
    rows: int
    null_share: float
    edges: np.ndarray = field(repr=False)  # numeric: interior PSI cut points; categorical: the categories
    shares: np.ndarray = field(repr=False)  # the reference's share per PSI bin or category
    grid: np.ndarray | None = field(default=None, repr=False)  # numeric: KS grid points
    values: np.ndarray | None = field(default=None, repr=False)  # numeric: sorted non-null values


@dataclass(frozen=True)
class Reference:
    """A prepared reference: one ``FeatureReference`` per monitored feature."""

    features: dict[str, FeatureReference]
    rows: int

    @classmethod
    def from_frame(
        cls, frame: pd.DataFrame, features: Sequence[str], categorical: Sequence[str] = (), name: str = "reference"
    ) -> Reference:
        """Prepare ``features`` of ``frame``; ``categorical`` forces numeric-typed columns to be categories."""
        _require_usable(frame, features, name)
        return cls({f: _prepare(f, frame[f], f in categorical) for f in features}, len(frame))


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift measures and verdict."""

    feature: str
    kind: str
    psi: float
    threshold: float
    drifted: bool
    statistic: str  # "ks" or "jensen_shannon"
    statistic_value: float
    p_value: float | None
    reference_null_share: float
    batch_null_share: float


@dataclass(frozen=True)
class DriftReport:
    """The verdict over every monitored feature, with the rules that produced it.

    ``drifted`` is ``None`` when no decision was made (a batch below the minimum size); ``reason``
    then says why.
    """

    reference_rows: int
    batch_rows: int
    min_batch_rows: int
    drift_share: float
    features: tuple[FeatureDrift, ...]
    drifted: bool | None
    reason: str

    @property
    def decided(self) -> bool:
        return self.drifted is not None

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.feature for f in self.features if f.drifted)

    @property
    def required_drifted(self) -> int:
        return required_drifted(len(self.features), self.drift_share)

    def scores(self) -> dict[str, float]:
        """PSI per feature, rounded: short enough for run tags."""
        return {f.feature: round(f.psi, 4) for f in self.features}

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["features"] = [asdict(f) for f in self.features]
        data["drifted_features"] = list(self.drifted_features)
        data["required_drifted"] = self.required_drifted
        return data

    def table(self) -> str:
        """The report as a Markdown table, the form Dagster's UI renders."""
        head = "| feature | kind | PSI | threshold | drifted | statistic | p-value |\n|---|---|---|---|---|---|---|\n"
        body = "".join(
            f"| {f.feature} | {f.kind} | {f.psi:.4f} | {f.threshold:g} | {'**yes**' if f.drifted else 'no'} | "
            f"{f.statistic} {f.statistic_value:.4f} | {'' if f.p_value is None else f'{f.p_value:.3g}'} |\n"
            for f in self.features
        )
        return head + body + f"\n{self.reason}\n"


def required_drifted(monitored: int, drift_share: float) -> int:
    """How many of ``monitored`` features must drift for the batch to count as drifted (at least one)."""
    return max(1, math.ceil(drift_share * monitored - 1e-9))


def population_stability_index(reference_shares: np.ndarray, batch_shares: np.ndarray) -> float:
    """PSI = sum((batch - reference) * ln(batch / reference)) over bins; empty bins count as ``EPSILON``."""
    reference = np.clip(np.asarray(reference_shares, dtype=float), EPSILON, None)
    batch = np.clip(np.asarray(batch_shares, dtype=float), EPSILON, None)
    return float(np.sum((batch - reference) * np.log(batch / reference)))


def measure_drift(
    reference: pd.DataFrame | Reference,
    batch: pd.DataFrame,
    features: Sequence[str] | None = None,
    *,
    thresholds: Mapping[str, float] | None = None,
    default_threshold: float = DEFAULT_PSI_THRESHOLD,
    min_batch_rows: int = 1,
    drift_share: float = 0.25,
    categorical: Sequence[str] = (),
) -> DriftReport:
    """Measure every monitored feature's drift from ``reference`` to ``batch`` and decide.

    Args:
        reference: the reference frame, or a ``Reference`` prepared from it (for many batches).
        batch: the new rows.
        features: the monitored features; with a prepared reference, default: its features.
        thresholds: per-feature PSI thresholds; the others use ``default_threshold``.
        min_batch_rows: below this many batch rows, no decision (``drifted`` is ``None``).
        drift_share: the fraction of monitored features that must drift.
        categorical: numeric-typed columns to treat as categories.

    Raises:
        ValueError: an empty batch or reference, a monitored column missing from either, a column
            with no values at all, or a threshold that is not positive.
    """
    if isinstance(reference, Reference):
        features = list(features or reference.features)
        missing = [f for f in features if f not in reference.features]
        if missing:
            raise ValueError(
                f"drift: the prepared reference has no feature(s) {_capped(missing)} "
                f"(it has {_capped(list(reference.features))}). Prepare it with every monitored feature."
            )
        prepared = reference
    else:
        if not features:
            raise ValueError("drift: no monitored features given (expected at least one column name)")
        prepared = Reference.from_frame(reference, features, categorical)
    thresholds = dict(thresholds or {})
    for feature, threshold in {**thresholds, "(default)": default_threshold}.items():
        if not threshold > 0:
            raise ValueError(f"drift: the PSI threshold of {feature} is {threshold}; expected a number > 0")
    _require_usable(batch, features, "batch")

    rows = len(batch)
    measured = tuple(_measure(prepared.features[f], batch[f], thresholds.get(f, default_threshold)) for f in features)
    needed = required_drifted(len(measured), drift_share)
    drifted = [m.feature for m in measured if m.drifted]
    if rows < min_batch_rows:
        return DriftReport(
            prepared.rows,
            rows,
            min_batch_rows,
            drift_share,
            measured,
            None,
            f"no decision: the batch has {rows:,} rows, fewer than the minimum of {min_batch_rows:,}; "
            "its measures are shown but too noisy to act on. More rows will be judged together.",
        )
    verdict = len(drifted) >= needed
    reason = (
        f"{len(drifted)} of {len(measured)} monitored features drifted (PSI >= threshold): "
        f"{_capped(drifted) if drifted else 'none'}; {needed} needed for a retraining decision"
    )
    return DriftReport(prepared.rows, rows, min_batch_rows, drift_share, measured, verdict, reason)


def _prepare(feature: str, column: pd.Series, force_categorical: bool) -> FeatureReference:
    if _is_categorical(column) or force_categorical:
        categories, counts = _category_counts(column)
        return FeatureReference(
            feature, "categorical", len(column), _null_share(column), categories, counts / counts.sum()
        )
    values, null_share = _non_null(column)
    ordered = np.sort(values.astype(float))
    n = len(ordered)
    # Interior cut points at the reference's deciles; ties (a discrete feature) merge bins.
    cuts = np.unique(ordered[np.minimum((np.arange(1, PSI_BINS) * n) // PSI_BINS, n - 1)])
    counts = np.diff(np.concatenate(([0], np.searchsorted(ordered, cuts, side="left"), [n])))
    grid = np.unique(ordered[np.minimum((np.arange(1, KS_GRID + 1) * n) // KS_GRID, n - 1)])
    return FeatureReference(feature, "numeric", len(column), null_share, cuts, counts / n, grid, ordered)


def _measure(reference: FeatureReference, column: pd.Series, threshold: float) -> FeatureDrift:
    if reference.kind == "categorical":
        labels, counts = _category_counts(column)
        categories = np.union1d(reference.edges, labels)
        reference_shares = np.zeros(len(categories))
        reference_shares[np.searchsorted(categories, reference.edges)] = reference.shares
        batch_shares = np.zeros(len(categories))
        batch_shares[np.searchsorted(categories, labels)] = counts / counts.sum()
        null_share = _null_share(column)
        psi = population_stability_index(reference_shares, batch_shares)
        js = float(distance.jensenshannon(reference_shares, batch_shares, base=2))
        return FeatureDrift(
            reference.feature,
            "categorical",
            psi,
            threshold,
            psi >= threshold,
            "jensen_shannon",
            js,
            None,
            reference.null_share,
            null_share,
        )
    values, null_share = _non_null(column)
    numbers = np.sort(values.astype(float))
    n, m = len(reference.values), len(numbers)
    below = np.concatenate(([0], np.searchsorted(numbers, reference.edges, side="left"), [m]))
    psi = population_stability_index(reference.shares, np.diff(below) / m)
    if n + m <= EXACT_KS_MAX_ROWS:
        test = stats.ks_2samp(reference.values, numbers, method="asymp")
        statistic, p_value = float(test.statistic), float(test.pvalue)
    else:
        # Both CDFs evaluated exactly at the union of both samples' quantile grids: within one grid
        # cell's mass of the supremum over every point.
        points = np.union1d(reference.grid, numbers[np.minimum((np.arange(1, KS_GRID + 1) * m) // KS_GRID, m - 1)])
        reference_cdf = np.searchsorted(reference.values, points, side="right") / n
        batch_cdf = np.searchsorted(numbers, points, side="right") / m
        statistic = float(np.max(np.abs(batch_cdf - reference_cdf)))
        p_value = float(stats.kstwobign.sf(math.sqrt(n * m / (n + m)) * statistic))
    return FeatureDrift(
        reference.feature,
        "numeric",
        psi,
        threshold,
        psi >= threshold,
        "ks",
        statistic,
        p_value,
        reference.null_share,
        null_share,
    )


def _is_categorical(column: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)


def _category_counts(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Categories as sorted text, with their counts; nulls left out."""
    counts = column.value_counts(dropna=True, sort=False)
    labels = counts.index.astype(str).to_numpy()
    totals = pd.Series(counts.to_numpy(), index=labels).groupby(level=0).sum()  # 1 and "1" are one category
    return totals.index.to_numpy(dtype=str), totals.to_numpy(dtype=float)


def _null_share(column: pd.Series) -> float:
    return float(column.isna().mean()) if len(column) else 0.0


def _non_null(column: pd.Series) -> tuple[np.ndarray, float]:
    mask = column.isna().to_numpy()
    values = column.to_numpy()[~mask] if mask.any() else column.to_numpy()
    return values, float(mask.mean()) if len(mask) else 0.0


def _require_usable(frame: pd.DataFrame, features: Sequence[str], name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"drift: the {name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise ValueError(
            f"drift: the {name} lacks monitored column(s) {_capped(missing)} "
            f"(it has {_capped(list(map(str, frame.columns)))}). Is this the right file, or should the spec's "
            "monitoring.features change?"
        )
    if frame.empty:
        raise ValueError(f"drift: the {name} has no rows (expected at least one row to compare)")
    empty = [f for f in features if frame[f].isna().all()]
    if empty:
        raise ValueError(
            f"drift: the {name}'s column(s) {_capped(empty)} hold only nulls ({len(frame):,} rows): "
            "there is no distribution to compare. Is the export missing that field?"
        )


def _capped(names: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(n) for n in list(names)[:limit])
    return f"[{shown}{', …' if len(names) > limit else ''}]"
