"""Whether to retrain: the rules every trigger applies (platform-owned, pure).

The drift and new-data sensors, the hybrid schedule and the ``decide`` stage command each look at
something different -- a batch's drift, a row count, the champion's age, the landing files' snapshot --
but judge it by the rules here, so that one fact gets one verdict and one sentence wherever it is
seen. A trigger says what it observed in an ``Observed``; a fact it left out was not looked at, and
the rule on that fact does not apply. ``decide_retraining`` returns

- ``retrain`` when any applicable rule fires (forced, no champion yet, a new snapshot, the champion's
  age, the new volume, drift), with every reason that fired;
- ``no-decision`` when the evidence could not be read, or when nothing fired and nothing observed
  could decide (a drift measured on too few rows, and nothing else looked at);
- ``no-op`` otherwise, with why each applicable rule did not fire.

Reading files, the registry and the ledger is the callers' part (``ml_platform.defs.triggers``, the
``decide`` stage command); so is recording the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal

from ml_platform.rules.spec import ModelSpec

if TYPE_CHECKING:
    import pandas as pd

    from ml_platform.rules.drift import DriftReport, Reference

Action = Literal["retrain", "no-op", "no-decision"]
FORCED = "forced (force_retrain)"
NO_CHAMPION = "there is no champion yet"


@dataclass(frozen=True)
class ChampionFacts:
    """What the rules need to know of the champion: its version, training snapshot and promotion time."""

    version: str
    snapshot_id: str | None = None
    promoted_at: str | None = None  # ISO 8601, as the registry records it


@dataclass(frozen=True)
class Observed:
    """What one trigger looked at. ``None`` means "not looked at": that fact's rule does not apply.

    Attributes:
        champion: the champion, or ``None`` when there is none yet.
        forced: a person asked for a candidate whatever the data says.
        snapshot_id: the content id of the landing files as they are now (a new snapshot?).
        new_rows: rows landed since the champion's training snapshot.
        drift: the drift of what landed, against the champion's training snapshot.
        now: the time the champion's age is measured at.
        problem: why the evidence could not be read; a judgment on unread evidence is no decision.
    """

    champion: ChampionFacts | None
    forced: bool = False
    snapshot_id: str | None = None
    new_rows: int | None = None
    drift: DriftReport | None = None
    now: datetime | None = None
    problem: str | None = None


@dataclass(frozen=True)
class RetrainingDecision:
    """A trigger's verdict and its reasons: for ``retrain`` each rule that fired, otherwise why none did."""

    action: Action
    reasons: tuple[str, ...]

    @property
    def retrain(self) -> bool:
        return self.action == "retrain"

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class _Finding:
    fired: bool | None  # None: the fact was looked at but cannot decide
    text: str


def decide_retraining(spec: ModelSpec, observed: Observed) -> RetrainingDecision:
    """Apply every rule whose fact was observed, in a fixed order, and decide."""
    if observed.problem:
        return RetrainingDecision("no-decision", (observed.problem,))
    findings = [
        finding
        for rule in (_forced, _no_champion, _new_snapshot, _champion_age, _drift, _new_volume)
        if (finding := rule(spec, observed)) is not None
    ]
    fired = tuple(f.text for f in findings if f.fired)
    if fired:
        return RetrainingDecision("retrain", fired)
    if findings and all(f.fired is None for f in findings):
        return RetrainingDecision("no-decision", tuple(f.text for f in findings))
    return RetrainingDecision("no-op", tuple(f.text for f in findings) or ("no retraining rule applies",))


def _forced(spec: ModelSpec, observed: Observed) -> _Finding | None:
    return _Finding(True, FORCED) if observed.forced else None


def _no_champion(spec: ModelSpec, observed: Observed) -> _Finding | None:
    return _Finding(True, NO_CHAMPION) if observed.champion is None else None


def _new_snapshot(spec: ModelSpec, observed: Observed) -> _Finding | None:
    champion, snapshot_id = observed.champion, observed.snapshot_id
    if champion is None or snapshot_id is None:
        return None
    if champion.snapshot_id != snapshot_id:
        return _Finding(
            True, f"new data: snapshot {snapshot_id[:12]} differs from the champion's {str(champion.snapshot_id)[:12]}"
        )
    return _Finding(False, f"the champion was trained on this very snapshot ({snapshot_id[:12]})")


def _champion_age(spec: ModelSpec, observed: Observed) -> _Finding | None:
    champion, limit = observed.champion, spec.monitoring.max_champion_age
    if champion is None or champion.promoted_at is None or observed.now is None or limit is None:
        return None
    age = champion_age(champion, observed.now)
    if age >= limit:
        return _Finding(True, f"the champion is {age.days} days old (max_champion_age {limit.days} days)")
    return _Finding(False, f"champion v{champion.version} is within its age ({age.days} of {limit.days} days)")


def _drift(spec: ModelSpec, observed: Observed) -> _Finding | None:
    report = observed.drift
    return None if report is None else _Finding(report.drifted, report.reason)


def _new_volume(spec: ModelSpec, observed: Observed) -> _Finding | None:
    needed, rows = spec.monitoring.new_data_rows, observed.new_rows
    if needed is None or rows is None or observed.champion is None:
        return None
    since = f"champion v{observed.champion.version}'s snapshot"
    return _Finding(rows >= needed, f"{rows:,} new rows since {since}, {needed:,} needed")


def champion_age(champion: ChampionFacts, now: datetime) -> timedelta:
    """How long ago the champion was promoted; a naive ``now`` is taken as UTC."""
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    return now - datetime.fromisoformat(champion.promoted_at)


def cool_down_until(spec: ModelSpec, last_retrain_at: str | None, now: datetime) -> datetime | None:
    """Until when the spec's cool-down after the last ``retrain`` decision holds requests back, or ``None``.

    One cool-down for every trigger, so that a drift request and a scheduled one do not follow each
    other (no flapping).
    """
    cooldown = spec.monitoring.cooldown
    if last_retrain_at is None or cooldown.total_seconds() <= 0:
        return None
    until = datetime.fromisoformat(last_retrain_at) + cooldown
    return until if now < until else None


def measure_monitored_drift(spec: ModelSpec, reference: pd.DataFrame | Reference, batch: pd.DataFrame) -> DriftReport:
    """The drift of ``batch`` from ``reference`` on the spec's monitored features, with its monitoring rules.

    Raises:
        ValueError: as ``measure_drift`` (an empty batch, a monitored column missing or all null).
    """
    from ml_platform.rules.drift import measure_drift

    monitoring = spec.monitoring
    return measure_drift(
        reference,
        batch,
        list(spec.monitored_features),
        thresholds=monitoring.feature_thresholds,
        default_threshold=monitoring.psi_threshold,
        min_batch_rows=monitoring.min_batch_rows,
        drift_share=monitoring.drift_share,
    )
