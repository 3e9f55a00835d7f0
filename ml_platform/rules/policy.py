"""Model gates: whether a candidate may become champion (platform-owned rules, spec-owned thresholds).

Training success is not release approval. Each function here judges a ``CandidateReport`` — the
candidate, a trivial baseline and the current champion, all scored on the same test split — against
the spec's ``PromotionPolicy`` and returns every rule it applied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ml_platform.rules.evidence import GateResult, Rule
from ml_platform.rules.spec import MODEL_GATES, ModelSpec, model_gate_names

if TYPE_CHECKING:
    from ml_platform.rules.training import CandidateReport

__all__ = ["MODEL_GATES", "model_gate_names", "model_gates"]


def meets_absolute_minimums(report: CandidateReport, spec: ModelSpec, subject: str) -> GateResult:
    rules = []
    for metric, floor in spec.policy.min_metrics.items():
        observed = report.candidate.metric(metric)
        rules.append(Rule(metric, observed, f">= {floor}", observed >= floor, value=observed, threshold=floor))
    return GateResult("meets_absolute_minimums", subject, tuple(rules))


def beats_trivial_baseline(report: CandidateReport, spec: ModelSpec, subject: str) -> GateResult:
    """A model at chance level must never pass, however low the absolute floors are set."""
    metric, margin = spec.policy.comparison_metric, spec.policy.baseline_margin
    observed, baseline = report.candidate.metric(metric), report.baseline.metric(metric)
    rule = Rule(
        f"{metric} over DummyClassifier({report.baseline_strategy})",
        observed,
        f"> {baseline:.4f} + {margin}",
        observed > baseline + margin,
        f"baseline {baseline:.4f}",
        value=observed,
        threshold=baseline + margin,
        measure=f"{metric} over baseline",
    )
    return GateResult("beats_trivial_baseline", subject, (rule,))


def no_worse_than_champion(report: CandidateReport, spec: ModelSpec, subject: str) -> GateResult:
    """Compare with the champion re-scored on the candidate's own test split; the first model passes."""
    metric, tolerance = spec.policy.comparison_metric, spec.policy.champion_tolerance
    observed = report.candidate.metric(metric)
    if report.champion_error:
        rule = Rule(
            f"{metric} vs champion v{report.champion_version}",
            observed,
            "a champion scored on this split",
            False,
            f"the champion could not be re-scored: {report.champion_error}",
            value=observed,
            measure=f"{metric} vs champion",
        )
        return GateResult("no_worse_than_champion", subject, (rule,))
    if report.champion is None:
        rule = Rule(
            f"{metric} vs champion",
            observed,
            "no champion yet",
            True,
            "first model: nothing to compare with",
            value=observed,
        )
        return GateResult("no_worse_than_champion", subject, (rule,), note="no champion yet: the first model passes")
    champion = report.champion.metric(metric)
    compared = report.candidate_on_champion_rows or report.candidate
    observed = compared.metric(metric)
    if report.champion_rows_excluded:
        note = (
            f"both re-scored on this test split less the {report.champion_rows_excluded:,} rows the champion "
            f"trained on ({compared.test_rows:,} rows): champion {champion:.4f}"
        )
    else:
        note = f"champion re-scored on this test split: {champion:.4f}"
    rule = Rule(
        f"{metric} vs champion v{report.champion_version}",
        observed,
        f">= {champion:.4f} - {tolerance}",
        observed >= champion - tolerance,
        note,
        value=observed,
        threshold=champion - tolerance,
        measure=f"{metric} vs champion",
    )
    return GateResult("no_worse_than_champion", subject, (rule,), details={"champion_version": report.champion_version})


def meets_segment_minimums(report: CandidateReport, spec: ModelSpec, subject: str) -> GateResult:
    """Weighted F1 inside every expected segment; a segment missing from the test split fails too."""
    floor = spec.policy.min_segment_f1
    rules = []
    for segment in spec.segments.min_share:
        rows = report.candidate.rows_per_segment.get(segment, 0)
        if rows == 0:
            rules.append(Rule(f"f1 in {segment}", "no test rows", f">= {floor}", False, threshold=floor))
            continue
        f1 = report.candidate.f1_per_segment[segment]
        rules.append(
            Rule(f"f1 in {segment}", f1, f">= {floor}", f1 >= floor, f"{rows:,} test rows", value=f1, threshold=floor)
        )
    return GateResult("meets_segment_minimums", subject, tuple(rules))


def model_gates(report: CandidateReport, spec: ModelSpec, subject: str) -> list[GateResult]:
    judges = {
        "meets_absolute_minimums": meets_absolute_minimums,
        "beats_trivial_baseline": beats_trivial_baseline,
        "no_worse_than_champion": no_worse_than_champion,
        "meets_segment_minimums": meets_segment_minimums,
    }
    return [judges[name](report, spec, subject) for name in model_gate_names(spec)]


def unpassed_gates(recorded: object) -> list[str]:
    """Why a registered version's recorded gate verdicts do not let it hold an alias; empty when all passed.

    A version may become ``champion``, ``staging`` or ``production`` only when every gate recorded for
    it says "passed". One registered outside the gated graph has no verdicts at all, and is refused too.

    Args:
        recorded: the verdicts by gate name, as registered with the version (anything else counts as none).
    """
    if not isinstance(recorded, dict) or not recorded:
        return ["no gate results recorded (the version was not registered through the gated graph)"]
    return [f"{gate}: {verdict}" for gate, verdict in sorted(recorded.items()) if verdict != "passed"]
