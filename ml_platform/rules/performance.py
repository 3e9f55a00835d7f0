"""The champion's live performance: predictions joined with the outcomes that arrive later (platform-owned, pure).

Every scoring batch is predicted by the champion and kept, with the model version that made each
prediction, in the inference log. Outcomes (the label of a past prediction, by key) arrive days later
in the feedback folder. This module turns the two into a judgment:

- **the join**: each labelled key meets the prediction the log holds for it. A feedback file is a
  contract too (the key and the label columns, known labels, one label per key, keys the log knows),
  and a broken one is refused whole, naming what was observed against what was expected.
- **the windows**: predictions are grouped by the *event time* of what was predicted (the spec's
  freshness column, else the time of scoring), in fixed windows aligned to the epoch (whole days
  start at midnight UTC). A window is the unit a reader compares with the calendar ("conversion on
  Tuesday"), and outcomes that trickle in over several files add up in the window they belong to.
- **the drop**: in each window touched by new outcomes, the champion's live comparison metric is
  set against the metric it was promoted with (its test split at registration). A window with fewer
  labelled predictions than the minimum is reported but not judged -- too noisy to act on. A drop
  beyond the tolerance in any judged window is a drop.
- **the rollback evidence**: the previous champion is re-scored on the same logged inputs, and a
  paired bootstrap over the same labelled rows says whether it did measurably better.

Metrics come from confusion counts (``lifecycle.metrics``, the same definitions as the model gates),
vectorized over bootstrap resamples.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd

from ml_platform.errors import ContractViolation
from ml_platform.rules.evidence import capped
from ml_platform.rules.metrics import METRICS, confusion_counts, metric_from_confusion

PREDICTION = "prediction"
CONFIDENCE = "confidence"
MODEL_VERSION = "model_version"
BATCH_FILE = "batch_file"
BATCH_SHA256 = "batch_sha256"
SCORED_AT = "scored_at"
OUTCOME = "outcome"  # the label from feedback, once joined
LOG_COLUMNS = (PREDICTION, CONFIDENCE, MODEL_VERSION, BATCH_FILE, BATCH_SHA256, SCORED_AT)
BOOTSTRAP_RESAMPLES = 2000

Verdict = Literal["drop", "no-drop", "not-enough-feedback"]


def inference_log_frame(
    batch: pd.DataFrame,
    columns: Sequence[str],
    predictions: Sequence[Any],
    confidence: Sequence[float] | None,
    *,
    version: str,
    batch_file: str,
    batch_sha256: str,
    scored_at: pd.Timestamp,
) -> pd.DataFrame:
    """The inference log's rows for one scored batch: the inputs as predicted, with who predicted them.

    The inputs are kept (not only the key) so that another version can be scored later on exactly
    what the champion saw.
    """
    if len(predictions) != len(batch):
        raise ValueError(f"inference log: {len(predictions):,} predictions for a batch of {len(batch):,} rows")
    log = batch[list(columns)].reset_index(drop=True).copy()
    log[PREDICTION] = np.asarray(predictions)
    log[CONFIDENCE] = np.asarray(confidence, dtype=float) if confidence is not None else np.nan
    log[MODEL_VERSION] = str(version)
    log[BATCH_FILE] = batch_file
    log[BATCH_SHA256] = batch_sha256
    stamp = pd.Timestamp(scored_at)
    log[SCORED_AT] = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return log


def read_feedback(
    frame: pd.DataFrame, *, key: str, label: str, label_values: Sequence[Any], source: str, asset: str
) -> pd.DataFrame:
    """A feedback file as ``key`` and ``OUTCOME`` columns, or a ``ContractViolation`` saying what is wrong.

    The contract: the key and the label columns (other columns are ignored), every label one of the
    spec's classes, no key labelled twice with different outcomes (the same outcome twice is kept once).

    Args:
        source: the file's name, for the message.
        asset: the asset whose predictions the outcomes are for, for the message.
    """
    where = f"{asset}: feedback {source!r}"
    expected = f"expected the key column {key!r} and the label column {label!r}"
    missing = [column for column in (key, label) if column not in frame.columns]
    if missing:
        raise ContractViolation(
            f"{where} lacks column(s) {capped(missing)}: observed columns {capped(list(map(str, frame.columns)), 8)}; "
            f"{expected}. Is this an outcome export for this model?"
        )
    if frame.empty:
        raise ContractViolation(f"{where} has a header but no rows; {expected} with at least one row")
    nulls = int(frame[key].isna().sum() + frame[label].isna().sum())
    if nulls:
        raise ContractViolation(f"{where} has {nulls:,} null key(s) or label(s); {expected}, every value present")
    canonical = {str(value): value for value in label_values}
    as_text = frame[label].astype(str)
    unknown = sorted(set(as_text) - set(canonical))
    if unknown:
        raise ContractViolation(
            f"{where}: column {label!r} holds unknown label(s) {capped(unknown)}; expected only the spec's "
            f"label_values {capped(list(canonical))}"
        )
    outcomes = pd.DataFrame({key: frame[key].astype(str), OUTCOME: as_text.map(canonical)}).drop_duplicates()
    conflicting = outcomes[outcomes[key].duplicated(keep=False)][key].unique().tolist()
    if conflicting:
        raise ContractViolation(
            f"{where}: {len(conflicting):,} key(s) labelled twice with different outcomes, e.g. "
            f"{capped(conflicting, 3)}; expected one outcome per key"
        )
    return outcomes.reset_index(drop=True)


def join_outcomes(log: pd.DataFrame, outcomes: pd.DataFrame, *, key: str, source: str, asset: str) -> pd.DataFrame:
    """The logged predictions that have an outcome, one row per (key, model version): the latest scoring.

    Raises:
        ContractViolation: when feedback names keys the inference log has never predicted (outcomes for
            another model, or for batches never scored): they cannot be judged, and silently dropping
            them would hide the mistake.
    """
    known = set(log[key].astype(str)) if not log.empty else set()
    unknown = sorted(set(outcomes[key]) - known)
    if unknown:
        raise ContractViolation(
            f"{asset}: feedback {source!r} has {len(unknown):,} of {len(outcomes):,} key(s) that no logged "
            f"prediction has, e.g. {capped(unknown, 3)}; expected only keys of predictions in the inference log "
            f"({len(known):,} keys logged). Were these batches scored, and is this feedback for this model?"
        )
    latest = log.assign(**{key: log[key].astype(str)}).sort_values(SCORED_AT, kind="stable")
    latest = latest.drop_duplicates([key, MODEL_VERSION], keep="last")
    return latest.merge(outcomes, on=key, how="inner", validate="many_to_one")


def window_starts(times: pd.Series, width: timedelta) -> pd.Series:
    """The start of each time's window: fixed widths aligned to the epoch (days start at midnight UTC)."""
    stamps = pd.to_datetime(times, utc=True)
    return stamps.dt.floor(pd.Timedelta(width))


def live_metric(truth: Sequence[Any], predicted: Sequence[Any], metric: str, classes: Sequence[Any]) -> float:
    """One metric of predictions against outcomes; ``nan`` without rows."""
    if len(truth) == 0:
        return float("nan")
    return float(metric_from_confusion(confusion_counts(np.asarray(truth), np.asarray(predicted), classes), metric))


@dataclass(frozen=True)
class WindowScore:
    """The champion's live metric in one window, and whether it was judged and dropped."""

    start: str
    end: str
    rows: int
    live: float | None
    drop: float | None
    judged: bool
    dropped: bool


@dataclass(frozen=True)
class PerformanceReport:
    """The judgment over the windows new outcomes touched, with the rules that produced it."""

    metric: str
    version: str
    reference: float
    tolerance: float
    min_rows: int
    window: str
    windows: tuple[WindowScore, ...]
    verdict: Verdict
    reason: str
    other_versions_rows: int = 0

    @property
    def dropped_windows(self) -> tuple[WindowScore, ...]:
        return tuple(w for w in self.windows if w.dropped)

    @property
    def worst_drop(self) -> float | None:
        drops = [w.drop for w in self.windows if w.judged and w.drop is not None]
        return max(drops) if drops else None

    def scores(self) -> dict[str, Any]:
        """The numbers behind the verdict, short enough for run tags and the ledger."""
        return {
            "metric": self.metric,
            "reference": round(self.reference, 4),
            "tolerance": self.tolerance,
            "min_feedback_rows": self.min_rows,
            "worst_drop": None if self.worst_drop is None else round(self.worst_drop, 4),
            "windows": {
                w.start: {"rows": w.rows, "live": None if w.live is None else round(w.live, 4)} for w in self.windows
            },
        }

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["windows"] = [asdict(w) for w in self.windows]
        return data

    def table(self) -> str:
        """The windows as a Markdown table, the form Dagster's UI renders."""
        head = (
            f"| window (UTC) | labelled rows | live {self.metric} | promoted with | drop | judged | dropped |\n"
            "|---|---|---|---|---|---|---|\n"
        )
        body = "".join(
            f"| {w.start} | {w.rows:,} | {'' if w.live is None else f'{w.live:.4f}'} | {self.reference:.4f} | "
            f"{'' if w.drop is None else f'{w.drop:+.4f}'} | {'yes' if w.judged else f'no (< {self.min_rows:,})'} | "
            f"{'**yes**' if w.dropped else 'no'} |\n"
            for w in self.windows
        )
        return head + body + f"\n{self.reason}\n"


def judge_windows(
    joined: pd.DataFrame,
    *,
    version: str,
    metric: str,
    classes: Sequence[Any],
    reference: float,
    tolerance: float,
    min_rows: int,
    width: timedelta,
    time_column: str,
    touched: Collection[pd.Timestamp] | None = None,
    alias: str = "champion",
) -> PerformanceReport:
    """Judge the champion's live metric in each window (the ``touched`` ones, default all).

    Only the champion's own predictions count toward its live metric; labelled predictions of other
    versions (a batch scored before a promotion) are counted and reported, never mixed in.

    Args:
        joined: predictions with outcomes (``join_outcomes``).
        version: the champion's version.
        reference: the metric the champion was promoted with.
        tolerance: the largest acceptable drop below ``reference``.
        min_rows: below this many labelled champion predictions a window is not judged.
        time_column: the event-time column windows are cut on.
        alias: the alias the judged version is deployed under (``ModelSpec.release.deployed_alias``), as the
            reason names it.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {list(METRICS)}")
    if time_column not in joined.columns:
        raise ValueError(f"live performance: the joined predictions have no time column {time_column!r}")
    mine = joined[joined[MODEL_VERSION].astype(str) == str(version)]
    others = len(joined) - len(mine)
    starts = window_starts(mine[time_column], width)
    chosen = sorted(set(starts) if touched is None else {pd.Timestamp(t) for t in touched})
    windows = tuple(
        _window_score(mine[(starts == start).to_numpy()], start, width, metric, classes, reference, tolerance, min_rows)
        for start in chosen
    )
    verdict, reason = _verdict(windows, f"{alias} v{version}", metric, reference, tolerance, min_rows, width, others)
    return PerformanceReport(
        metric=metric,
        version=str(version),
        reference=float(reference),
        tolerance=float(tolerance),
        min_rows=min_rows,
        window=str(pd.Timedelta(width)),
        windows=windows,
        other_versions_rows=others,
        verdict=verdict,
        reason=reason,
    )


def _window_score(
    rows: pd.DataFrame,
    start: pd.Timestamp,
    width: timedelta,
    metric: str,
    classes: Sequence[Any],
    reference: float,
    tolerance: float,
    min_rows: int,
) -> WindowScore:
    """One window's live metric and verdict: judged from ``min_rows`` labelled rows, dropped beyond ``tolerance``."""
    live = live_metric(rows[OUTCOME].to_numpy(), rows[PREDICTION].to_numpy(), metric, classes) if len(rows) else None
    judged = len(rows) >= min_rows
    drop = None if live is None else reference - live
    end = (start + pd.Timedelta(width)).isoformat()
    return WindowScore(
        start.isoformat(), end, len(rows), live, drop, judged, judged and drop is not None and drop > tolerance
    )


def _verdict(
    windows: Sequence[WindowScore],
    judged_version: str,
    metric: str,
    reference: float,
    tolerance: float,
    min_rows: int,
    width: timedelta,
    others: int,
) -> tuple[str, str]:
    """``drop``, ``no-drop`` or ``not-enough-feedback`` over the windows, and the sentence that says why."""
    judged = [w for w in windows if w.judged]
    dropped = [w for w in judged if w.dropped]
    aside = f"; {others:,} labelled prediction(s) of other versions not counted" if others else ""
    if dropped:
        worst = max(dropped, key=lambda w: w.drop)
        return "drop", (
            f"live {metric} of {judged_version} dropped beyond its tolerance in {len(dropped)} of {len(judged)} "
            f"judged window(s): worst {worst.live:.4f} in the window from {worst.start} "
            f"({worst.rows:,} labelled rows), "
            f"{worst.drop:.4f} below the {reference:.4f} it was promoted with (tolerance {tolerance:g}){aside}"
        )
    if judged:
        worst = max(judged, key=lambda w: w.drop)
        return "no-drop", (
            f"no drop: live {metric} of {judged_version} within tolerance {tolerance:g} of {reference:.4f} in "
            f"{len(judged)} judged window(s) (lowest {worst.live:.4f}, {worst.rows:,} labelled rows){aside}"
        )
    most = max((w.rows for w in windows), default=0)
    return "not-enough-feedback", (
        f"not enough feedback: no window has {min_rows:,} labelled predictions of {judged_version} "
        f"(at most {most:,} in {len(windows)} window(s) of {pd.Timedelta(width)}); its live {metric} is shown but "
        f"too noisy to act on. Later outcomes for the same windows are judged together with these{aside}"
    )


@dataclass(frozen=True)
class Comparison:
    """Two versions on the same labelled rows: the point difference and its paired-bootstrap interval."""

    rows: int
    metric: str
    champion: float
    previous: float
    difference: float  # previous - champion
    low: float
    high: float
    margin: float
    better: bool
    reason: str
    champion_version: str = ""
    previous_version: str = ""


def compare_on_same_rows(
    truth: Sequence[Any],
    champion_predicted: Sequence[Any],
    previous_predicted: Sequence[Any],
    *,
    metric: str,
    classes: Sequence[Any],
    margin: float,
    champion: str,
    previous: str,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    names: tuple[str, str] = ("champion", "previous champion"),
) -> Comparison:
    """Did the previous champion do measurably better than the champion on the same outcomes?

    "Measurably" means both: the difference is at least ``margin``, and the lower end of the 95%
    percentile interval of a paired bootstrap (the same resampled rows for both versions) is above 0.
    Rows are exchangeable within each (truth, champion's prediction, previous prediction) cell, so each
    resample is a multinomial draw over those cells: exact, and independent of the number of rows.
    ``names`` are what the reason calls the two versions (the deployed alias and its previous holder, or
    a release's canary and production).
    """
    truth, ours, theirs = (np.asarray(v) for v in (truth, champion_predicted, previous_predicted))
    if not (len(truth) == len(ours) == len(theirs)) or len(truth) == 0:
        raise ValueError(
            f"compare: expected the same, non-zero number of outcomes and predictions "
            f"(got {len(truth)}, {len(ours)}, {len(theirs)})"
        )
    k = len(classes)
    index = {str(c): i for i, c in enumerate(classes)}
    codes = [np.array([index[str(v)] for v in values]) for values in (truth, ours, theirs)]
    cells = np.bincount((codes[0] * k + codes[1]) * k + codes[2], minlength=k**3).astype(float)
    draws = np.random.default_rng(seed).multinomial(len(truth), cells / cells.sum(), size=resamples)
    cube = np.concatenate([cells[None, :], draws]).reshape(-1, k, k, k)  # [resample, truth, champion, previous]
    mine = metric_from_confusion(cube.sum(axis=3), metric)
    prior = metric_from_confusion(cube.sum(axis=2), metric)
    differences = prior - mine
    low, high = (float(q) for q in np.nanpercentile(differences[1:], [2.5, 97.5]))
    difference = float(differences[0])
    better = difference >= margin and low > 0
    verdict = "measurably better" if better else "not measurably better"
    reason = (
        f"{names[1]} v{previous} {verdict} than {names[0]} v{champion} on the same {len(truth):,} labelled rows: "
        f"{metric} {prior[0]:.4f} vs {mine[0]:.4f}, difference {difference:+.4f} (95% paired bootstrap "
        f"[{low:+.4f}, {high:+.4f}]; required at least {margin:g} with the interval above 0)"
    )
    return Comparison(
        len(truth), metric, float(mine[0]), float(prior[0]), difference, low, high, margin, better, reason,
        str(champion), str(previous),
    )  # fmt: skip
