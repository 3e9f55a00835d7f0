"""The online release gate: a canary judged against production from live traffic (platform-owned, pure).

A release sends a share of the traffic to the ``canary`` version (or, in shadow mode, lets it score a
sample of requests in the background). The online inference log holds one row per request and
cohort: the inputs, the prediction, the version, ``cohort`` (``production``, ``canary`` or
``shadow``), ``request_id``, ``latency_ms`` and ``status`` (``ok`` or ``error``). Over the baking window
(from the release's start, ``ModelSpec.release.window`` long) this module judges:

- **error rate**: the canary's share of requests the server failed (5xx), at most ``max_error_rate``.
  A request the contract or the limits refused (``http_status`` 4xx) is the client's fault, not the
  model's: it is counted apart (``client_errors``, shown beside the rate) and left out of both sides of
  the rate. An error row without ``http_status`` counts as the server's;
- **p99 latency**: the canary's 99th percentile over production's, at most ``max_p99_ratio``;
- **prediction shift**: the Jensen-Shannon distance (base 2, so in [0, 1]) between the two cohorts'
  predicted-class distributions, at most ``max_prediction_shift``. Routing is by a hashed key, so both
  cohorts see the same kind of traffic and a shift is the model's doing;
- **live metric**, once ``min_feedback_rows`` labelled rows have arrived: both versions on the *same*
  labelled rows (each row's served prediction and the other version's re-score of the logged inputs),
  compared with the performance monitor's paired bootstrap (``rules.performance.compare_on_same_rows``).
  The canary fails when production is better by at least ``metric_tolerance`` with the interval's lower
  end above zero.

The verdict is ``rollback`` as soon as a judged rule fails (production is never changed by a failing
canary, and it does not wait for the window to end); ``promote`` once the window has elapsed with every
judged rule holding; ``wait`` otherwise. A window that elapsed with fewer than ``min_requests`` requests
in a cohort is a ``rollback``: a canary that no traffic reached has earned nothing, and production
stays. Labels often arrive days later; a window that elapsed without enough of them promotes on the
online rules alone, and the judgment says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ml_platform.rules.evidence import GateResult, Rule
from ml_platform.rules.performance import (
    MODEL_VERSION,
    OUTCOME,
    PREDICTION,
    SCORED_AT,
    Comparison,
    compare_on_same_rows,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ml_platform.rules.spec import Release

COHORT, REQUEST_ID, LATENCY_MS, STATUS = "cohort", "request_id", "latency_ms", "status"
HTTP_STATUS = "http_status"  # error rows only: the status the request was answered with
PRODUCTION_COHORT, CANARY_COHORT, SHADOW_COHORT = "production", "canary", "shadow"
OK, ERROR = "ok", "error"
ONLINE_COLUMNS = (COHORT, REQUEST_ID, LATENCY_MS, STATUS)
CANARY_PREDICTION, PRODUCTION_PREDICTION = "canary_prediction", "production_prediction"
GATE = "online_release_gate"
ERROR_RULE = "canary error rate"
P99_RULE = "p99 latency canary / production"
SHIFT_RULE = "prediction shift (Jensen-Shannon distance)"

Verdict = Literal["promote", "rollback", "wait"]
Mode = Literal["canary", "shadow"]


@dataclass(frozen=True)
class CohortSummary:
    """What one cohort's requests looked like in the window."""

    cohort: str
    version: str
    requests: int
    errors: int  # failed by the server (5xx): what the error rate counts
    error_rate: float | None  # errors / (requests - client_errors)
    p50_ms: float | None
    p99_ms: float | None
    prediction_shares: dict[str, float]
    client_errors: int = 0  # refused as the client's fault (4xx): shown, never counted against the model

    @property
    def served(self) -> int:
        """The requests the model was asked to answer: every one but those refused as the client's fault."""
        return self.requests - self.client_errors


@dataclass(frozen=True)
class ReleaseJudgment:
    """The gate's verdict, the rules it judged (passing ones too), and what it could not judge yet."""

    verdict: Verdict
    reason: str
    gate: GateResult
    pending: tuple[str, ...]
    production: CohortSummary
    canary: CohortSummary
    started_at: str
    ends_at: str
    judged_at: str
    comparison: Comparison | None = None

    def table(self) -> str:
        """The verdict as Markdown: the rule table, the rules not judged yet, the two cohorts."""
        lines = [f"**{self.verdict}**: {self.reason}\n", self.gate.table()]
        lines += [f"- {rule.rule}: {rule.note}" for rule in self.gate.rules if rule.note]
        lines += [f"- not judged: {item}" for item in self.pending]
        lines.append(
            "\n| cohort | version | requests | server errors (5xx) | client errors (4xx) | p50 ms | p99 ms "
            "| predicted shares |"
        )
        lines.append("|---|---|---|---|---|---|---|---|")
        for c in (self.production, self.canary):
            shares = ", ".join(f"{k}: {v:.3f}" for k, v in c.prediction_shares.items())
            lines.append(
                f"| {c.cohort} | v{c.version} | {c.requests:,} | {c.errors:,} | {c.client_errors:,} | "
                f"{_ms(c.p50_ms)} | {_ms(c.p99_ms)} | {shares} |"
            )
        return "\n".join(lines) + f"\n\nwindow {self.started_at} to {self.ends_at}, judged at {self.judged_at}\n"

    def scores(self) -> dict[str, Any]:
        """The numbers behind the verdict, for the ledger."""
        scores: dict[str, Any] = {
            "rules": {
                r.rule: {"observed": r.observed, "required": r.required, "passed": r.passed} for r in self.gate.rules
            },
            "production": asdict(self.production),
            "canary": asdict(self.canary),
        }
        if self.comparison is not None:
            scores["live_metric"] = asdict(self.comparison)
        return scores


def utc(moment: datetime | str) -> pd.Timestamp:
    """A moment as a UTC timestamp; a naive one is taken to be UTC already."""
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def window_rows(
    log: pd.DataFrame, *, production: str, canary: str, mode: Mode, started_at: datetime, window: timedelta
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The production cohort's and the canary's rows scored within the baking window.

    Rows of other versions (a production that moved meanwhile, an earlier release) are not counted.
    """
    empty = log.iloc[0:0] if len(log.columns) else pd.DataFrame(columns=[COHORT, MODEL_VERSION, SCORED_AT])
    if log.empty:
        return empty, empty
    missing = [c for c in (COHORT, MODEL_VERSION, SCORED_AT, STATUS, LATENCY_MS) if c not in log.columns]
    if missing:
        raise ValueError(
            f"online release gate: the inference log lacks column(s) {missing}; expected the online log's "
            f"columns {[*ONLINE_COLUMNS, MODEL_VERSION, SCORED_AT]} (is this a batch log?)"
        )
    start = utc(started_at)
    stamps = pd.to_datetime(log[SCORED_AT], utc=True)
    inside = log[((stamps >= start) & (stamps <= start + pd.Timedelta(window))).to_numpy()]
    versions = inside[MODEL_VERSION].astype(str)
    canary_cohort = SHADOW_COHORT if mode == "shadow" else CANARY_COHORT
    return (
        inside[((inside[COHORT] == PRODUCTION_COHORT) & (versions == str(production))).to_numpy()],
        inside[((inside[COHORT] == canary_cohort) & (versions == str(canary))).to_numpy()],
    )


def summarize(rows: pd.DataFrame, cohort: str, version: str, classes: Sequence[Any]) -> CohortSummary:
    """Requests, server and client errors, latency percentiles (of answered requests), predicted-class shares."""
    requests = len(rows)
    failed = (rows[STATUS] != OK).to_numpy() if requests else np.zeros(0, bool)
    client = failed & _client_refused(rows)
    answered = rows[~failed] if requests else rows
    latency = pd.to_numeric(answered[LATENCY_MS], errors="coerce").dropna().to_numpy() if len(answered) else []
    counts = answered[PREDICTION].astype(str).value_counts() if len(answered) else pd.Series(dtype=int)
    total = int(counts.sum())
    shares = {str(c): (float(counts.get(str(c), 0)) / total if total else 0.0) for c in classes}
    errors, client_errors = int(failed.sum() - client.sum()), int(client.sum())
    served = requests - client_errors
    return CohortSummary(
        cohort,
        str(version),
        requests,
        errors,
        errors / served if served else None,
        float(np.percentile(latency, 50)) if len(latency) else None,
        float(np.percentile(latency, 99)) if len(latency) else None,
        shares,
        client_errors,
    )


def _client_refused(rows: pd.DataFrame) -> np.ndarray:
    """Rows answered with a 4xx: refused by the contract or the limits; a row without a status is not."""
    if HTTP_STATUS not in rows.columns:
        return np.zeros(len(rows), bool)
    status = pd.to_numeric(rows[HTTP_STATUS], errors="coerce")
    return ((status >= 400) & (status < 500)).to_numpy()


def prediction_shift(production: CohortSummary, canary: CohortSummary) -> float:
    """The Jensen-Shannon distance (base 2, in [0, 1]) between the cohorts' predicted-class distributions."""
    from scipy.spatial.distance import jensenshannon

    classes = list(production.prediction_shares)
    p = np.array([production.prediction_shares[c] for c in classes])
    q = np.array([canary.prediction_shares.get(c, 0.0) for c in classes])
    if p.sum() == 0 or q.sum() == 0:
        raise ValueError("prediction shift: a cohort has no answered request to compare")
    return float(jensenshannon(p, q, base=2))


def compare_live(
    labelled: pd.DataFrame, *, metric: str, classes: Sequence[Any], tolerance: float, canary: str, production: str
) -> Comparison:
    """Both versions on the same labelled rows, with the performance monitor's paired bootstrap.

    ``labelled`` holds ``OUTCOME``, ``CANARY_PREDICTION`` and ``PRODUCTION_PREDICTION``. In the returned
    comparison, "champion" is the canary and "previous" is production: ``better`` means production did
    measurably better, by at least ``tolerance``.
    """
    return compare_on_same_rows(
        labelled[OUTCOME].to_numpy(),
        labelled[CANARY_PREDICTION].to_numpy(),
        labelled[PRODUCTION_PREDICTION].to_numpy(),
        metric=metric,
        classes=classes,
        margin=tolerance,
        champion=canary,
        previous=production,
        names=("canary", "production"),
    )


def _online_rules(production: CohortSummary, canary: CohortSummary, release: Release) -> tuple[list[Rule], list[str]]:
    """The error-rate, p99 and shift rules that the traffic so far allows judging, and what waits for more."""
    rules, pending = [], []
    need = release.min_requests
    if canary.served >= need:
        passed = canary.error_rate <= release.max_error_rate
        note = f"{canary.errors:,} server errors (5xx) of {canary.served:,} requests"
        if canary.client_errors:
            note += f"; {canary.client_errors:,} more refused as the client's fault (4xx), not counted"
        rules.append(Rule(ERROR_RULE, canary.error_rate, f"<= {release.max_error_rate:g}", passed, note))
    else:
        besides = f" (and {canary.client_errors:,} refused as the client's fault)" if canary.client_errors else ""
        pending.append(f"canary error rate: {canary.served:,} canary requests{besides}, {need:,} needed")
    if canary.requests >= need and production.requests >= need and canary.p99_ms is not None:
        base = production.p99_ms or 0.0
        ratio = canary.p99_ms / base if base > 0 else (1.0 if canary.p99_ms <= 0 else float("inf"))
        note = f"{_ms(canary.p99_ms)} ms vs {_ms(production.p99_ms)} ms"
        required = f"<= {release.max_p99_ratio:g}"
        rules.append(Rule(P99_RULE, ratio, required, ratio <= release.max_p99_ratio, note))
        shift = prediction_shift(production, canary)
        rules.append(
            Rule(
                "prediction shift (Jensen-Shannon distance)",
                shift,
                f"<= {release.max_prediction_shift:g}",
                shift <= release.max_prediction_shift,
            )
        )
    else:
        pending.append(
            f"p99 latency and prediction shift: {canary.requests:,} canary and {production.requests:,} production "
            f"requests, {need:,} of each needed"
        )
    return rules, pending


def _live_rule(
    labelled: pd.DataFrame | None, release: Release, metric: str, classes, canary: str, production: str
) -> tuple[Rule | None, Comparison | None, str | None]:
    rows = 0 if labelled is None else len(labelled)
    if rows < release.min_feedback_rows:
        return None, None, f"live {metric}: {rows:,} labelled rows in the window, {release.min_feedback_rows:,} needed"
    comparison = compare_live(
        labelled,
        metric=metric,
        classes=classes,
        tolerance=release.metric_tolerance,
        canary=canary,
        production=production,
    )
    note = (
        f"canary {comparison.champion:.4f} vs production {comparison.previous:.4f} on the same {rows:,} labelled rows, "
        f"95% paired bootstrap [{comparison.low:+.4f}, {comparison.high:+.4f}]"
    )
    required = f"< {release.metric_tolerance:g}, or its interval reaching 0"
    rule = Rule(
        f"live {metric} drop (production - canary)", comparison.difference, required, not comparison.better, note
    )
    return rule, comparison, None


def judge_release(
    production_rows: pd.DataFrame,
    canary_rows: pd.DataFrame,
    *,
    release: Release,
    classes: Sequence[Any],
    metric: str,
    production: str,
    canary: str,
    started_at: datetime,
    now: datetime,
    labelled: pd.DataFrame | None = None,
) -> ReleaseJudgment:
    """The online gate's verdict on a canary (see the module docstring for the rules).

    Args:
        production_rows, canary_rows: the cohorts' rows in the window (``window_rows``).
        production, canary: the two versions.
        labelled: the window's labelled rows with both versions' predictions (``compare_live``), if any.
    """
    p, c = (
        summarize(production_rows, PRODUCTION_COHORT, production, classes),
        summarize(canary_rows, CANARY_COHORT, canary, classes),
    )
    rules, pending = _online_rules(p, c, release)
    live, comparison, waiting = _live_rule(labelled, release, metric, classes, canary, production)
    rules += [live] if live else []
    pending += [waiting] if waiting else []
    ends = utc(started_at) + pd.Timedelta(release.window)
    elapsed = utc(now) >= ends
    gate = GateResult(GATE, f"canary v{canary} against production v{production}", tuple(rules))
    traffic_short = p.requests < release.min_requests or c.requests < release.min_requests
    if gate.violations:
        verdict: Verdict = "rollback"
        reason = "canary rolled back: " + "; ".join(
            f"{r.rule} observed {_text(r.observed)}, required {r.required}" for r in gate.violations
        )
    elif elapsed and traffic_short:
        verdict, reason = (
            "rollback",
            (
                f"canary rolled back: the baking window of {release.window} ended with {c.requests:,} canary and "
                f"{p.requests:,} production requests ({release.min_requests:,} of each needed); a canary no traffic "
                "reached has earned nothing, and production stays"
            ),
        )
    elif elapsed:
        verdict = "promote"
        reason = f"every judged rule held over the baking window of {release.window} ({len(rules)} rules)"
        reason += f"; not judged: {'; '.join(pending)}" if pending else ""
    else:
        verdict = "wait"
        held = f"{len(rules)} rule(s) hold so far" if rules else "no rule judged yet"
        reason = f"baking until {ends.isoformat()}: {held}" + (
            f"; waiting for: {'; '.join(pending)}" if pending else ""
        )
    return ReleaseJudgment(
        verdict,
        reason,
        gate,
        tuple(pending),
        p,
        c,
        utc(started_at).isoformat(),
        ends.isoformat(),
        utc(now).isoformat(),
        comparison,
    )


def _text(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def release_figure(judgment: ReleaseJudgment, title: str) -> Figure:
    """The two cohorts side by side: predicted-class shares, latency percentiles, error rates."""
    from ml_platform.rules.figures import BELOW_FLOOR_COLOR, CANDIDATE_COLOR, CHAMPION_COLOR, _figure

    figure = _figure(10.5, 3.4)
    cohorts = (judgment.production, judgment.canary)
    colors = (CHAMPION_COLOR, CANDIDATE_COLOR)
    labels = [f"{c.cohort} v{c.version} ({c.requests:,} req.)" for c in cohorts]
    shares = figure.add_subplot(1, 3, 1)
    classes = list(judgment.production.prediction_shares)
    positions = np.arange(len(classes))
    for offset, cohort, color, label in zip((-0.2, 0.2), cohorts, colors, labels, strict=True):
        shares.bar(
            positions + offset, [cohort.prediction_shares.get(k, 0.0) for k in classes], 0.4, color=color, label=label
        )
    shares.set_xticks(positions, classes, rotation=20 if len(classes) > 3 else 0)
    shares.legend(fontsize=7, frameon=False)
    latency = figure.add_subplot(1, 3, 2)
    for offset, cohort, color in zip((-0.2, 0.2), cohorts, colors, strict=True):
        latency.bar(np.arange(2) + offset, [cohort.p50_ms or 0.0, cohort.p99_ms or 0.0], 0.4, color=color)
    latency.set_xticks(np.arange(2), ["p50", "p99"])
    latency.set_ylabel("ms")
    errors = figure.add_subplot(1, 3, 3)
    rates = [c.error_rate or 0.0 for c in cohorts]
    errors.bar([0, 1], rates, 0.6, color=colors)
    errors.set_xticks([0, 1], [c.cohort for c in cohorts])
    failed = {rule.rule for rule in judgment.gate.violations}
    for axes, text, rule in (
        (shares, "predicted class shares", SHIFT_RULE),
        (latency, "latency of answered requests", P99_RULE),
        (errors, "error rate", ERROR_RULE),
    ):
        axes.set_title(text, fontsize=9, color=BELOW_FLOOR_COLOR if rule in failed else "black")
    for axes in (shares, latency, errors):
        axes.tick_params(labelsize=7)
    verdict_color = {"rollback": BELOW_FLOOR_COLOR}.get(judgment.verdict, "black")
    figure.suptitle(f"{title}: {judgment.verdict}", fontsize=10, color=verdict_color)
    figure.tight_layout()
    return figure
