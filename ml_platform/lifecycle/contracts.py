"""Data gates on a snapshot and on the feature frame (platform-owned rules, team-owned thresholds).

The pandera ``DataFrameModel`` a team declares is the column contract (names, types, ranges,
categories). The rules that are not facts about one column — enough rows, no nulls where the
platform needs values, unique keys, known labels, every segment present with its share, fresh
events — are separate gates, each reading its thresholds from the ``ModelSpec``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from ml_platform.lifecycle.evidence import GateResult, Rule, capped
from ml_platform.lifecycle.spec import ModelSpec

MAX_FAILURE_CASES = 20


def schema_holds(frame: pd.DataFrame, contract, subject: str, gate: str = "schema_holds") -> GateResult:
    """Validate lazily against a pandera model, so every broken column is reported at once."""
    from pandera.errors import SchemaErrors

    try:
        contract.validate(frame, lazy=True)
    except SchemaErrors as errors:
        cases = errors.failure_cases
        rules = []
        for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
            examples = group["failure_case"].dropna().astype(str).unique().tolist()
            rules.append(
                Rule(
                    rule=f"column {column if pd.notna(column) else '(frame)'}: {check}",
                    observed=f"{len(group):,} failing value(s), e.g. {capped(examples, 3)}",
                    required=str(check),
                    passed=False,
                )
            )
        table = cases.head(MAX_FAILURE_CASES)[["column", "check", "failure_case", "index"]].astype(str)
        return GateResult(gate, subject, tuple(rules), details={"failure_cases": table.to_dict("records")})
    return GateResult(gate, subject, (Rule(f"{contract.__name__} holds", "valid", "valid", True),))


def has_enough_rows(frame: pd.DataFrame, spec: ModelSpec, subject: str) -> GateResult:
    rows = len(frame)
    return GateResult("has_enough_rows", subject, (Rule("rows", rows, f">= {spec.min_rows:,}", rows >= spec.min_rows),))


def has_no_nulls(frame: pd.DataFrame, spec: ModelSpec, subject: str) -> GateResult:
    """Nulls in any column the platform relies on (key, label, features, segment, event time)."""
    rules = []
    for column in spec.required_columns:
        if column not in frame.columns:
            rules.append(Rule(f"column {column} present", "missing", "present", False))
            continue
        nulls = int(frame[column].isna().sum())
        rules.append(Rule(f"nulls in {column}", nulls, "0", nulls == 0))
    return GateResult("has_no_nulls", subject, tuple(rules))


def keys_are_unique(frame: pd.DataFrame, spec: ModelSpec, subject: str) -> GateResult:
    key = spec.key_column
    if key not in frame.columns:
        return GateResult("keys_are_unique", subject, (Rule(f"column {key} present", "missing", "present", False),))
    duplicated = frame[key][frame[key].duplicated(keep=False)]
    examples = duplicated.astype(str).unique().tolist()
    note = f"duplicated {key} values: {capped(examples)}" if examples else ""
    rule = Rule(f"duplicate {key} values", int(duplicated.nunique()), "0", duplicated.empty, note)
    return GateResult("keys_are_unique", subject, (rule,))


def labels_are_known(frame: pd.DataFrame, spec: ModelSpec, subject: str) -> GateResult:
    """Every label is one of the declared classes, and every declared class occurs."""
    if spec.label not in frame.columns:
        return GateResult("labels_are_known", subject, (Rule(f"column {spec.label} present", "missing", "present", False),))
    labels = frame[spec.label].dropna()
    allowed = {str(v) for v in spec.label_values}
    observed = labels.astype(str)
    unknown = sorted(set(observed.unique()) - allowed)
    absent = sorted(allowed - set(observed.unique()))
    counts = observed.value_counts()
    return GateResult(
        "labels_are_known",
        subject,
        (
            Rule("unknown label values", capped(unknown) if unknown else "none", f"only {sorted(allowed)}", not unknown,
                 f"{int(counts[unknown].sum()):,} rows" if unknown else ""),
            Rule("declared classes present", f"{len(allowed) - len(absent)} of {len(allowed)}", f"all of {sorted(allowed)}",
                 not absent, f"missing {absent}" if absent else ""),
        ),
        details={"label_counts": {str(k): int(v) for k, v in counts.items()}},
    )


def has_every_segment(frame: pd.DataFrame, spec: ModelSpec, subject: str) -> GateResult:
    """The gate that stops a partial export: each expected segment with at least its share of rows."""
    segments = spec.segments
    if segments.column not in frame.columns:
        return GateResult("has_every_segment", subject, (Rule(f"column {segments.column} present", "missing", "present", False),))
    total = len(frame)
    counts = frame[segments.column].astype(str).value_counts()
    rules = []
    for segment, min_share in segments.min_share.items():
        rows = int(counts.get(segment, 0))
        share = rows / total if total else 0.0
        rules.append(
            Rule(
                f"{segments.column} '{segment}' share",
                f"{share:.1%} ({rows:,} rows)",
                f">= {min_share:.1%} of {total:,}",
                rows > 0 and share >= min_share,
            )
        )
    unexpected = sorted(set(counts.index) - set(segments.min_share))
    rules.append(Rule(f"unexpected {segments.column} values", capped(unexpected) if unexpected else "none", "none", not unexpected))
    covered = sorted(s for s in segments.min_share if counts.get(s, 0) > 0)
    note = f"segments present: {covered}"
    return GateResult("has_every_segment", subject, tuple(rules), note,
                      details={"rows_per_segment": {str(k): int(v) for k, v in counts.items()}})


def event_time(frame: pd.DataFrame, column: str) -> pd.Series:
    """Event times as UTC timestamps; values that do not parse become NaT (the schema gate names them)."""
    return pd.to_datetime(frame[column], utc=True, errors="coerce", format="ISO8601")


def is_fresh(frame: pd.DataFrame, spec: ModelSpec, subject: str, now: datetime) -> GateResult:
    freshness = spec.freshness
    if freshness.column not in frame.columns:
        return GateResult("is_fresh", subject, (Rule(f"column {freshness.column} present", "missing", "present", False),))
    times = event_time(frame, freshness.column).dropna()
    if times.empty:
        return GateResult("is_fresh", subject, (Rule(f"newest {freshness.column}", "no parseable timestamps", "a timestamp", False),))
    newest, oldest = times.max(), times.min()
    age = pd.Timestamp(now) - newest
    rules = (
        Rule(f"age of newest {freshness.column}", _fmt_age(age), f"<= {_fmt_age(freshness.max_age)}", age <= freshness.max_age,
             f"newest event {newest.isoformat()}"),
        Rule(f"newest {freshness.column} not in the future", newest.isoformat(), f"<= {pd.Timestamp(now).isoformat()}",
             newest <= pd.Timestamp(now) + timedelta(minutes=5)),
    )
    return GateResult("is_fresh", subject, rules, details={"event_time_range": [oldest.isoformat(), newest.isoformat()]})


def snapshot_gates(frame: pd.DataFrame, spec: ModelSpec, contract, subject: str, now: datetime) -> list[GateResult]:
    """Every data gate the spec declares, in the order a reader should meet them."""
    results = [
        schema_holds(frame, contract, subject),
        has_enough_rows(frame, spec, subject),
        has_no_nulls(frame, spec, subject),
        labels_are_known(frame, spec, subject),
    ]
    if spec.key_column:
        results.append(keys_are_unique(frame, spec, subject))
    if spec.segments:
        results.append(has_every_segment(frame, spec, subject))
    if spec.freshness:
        results.append(is_fresh(frame, spec, subject, now))
    return results


def snapshot_gate_names(spec: ModelSpec) -> list[str]:
    names = ["schema_holds", "has_enough_rows", "has_no_nulls", "labels_are_known"]
    names += ["keys_are_unique"] if spec.key_column else []
    names += ["has_every_segment"] if spec.segments else []
    names += ["is_fresh"] if spec.freshness else []
    return names


def _fmt_age(age: timedelta) -> str:
    seconds = age.total_seconds()
    if abs(seconds) >= 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds / 3600:.1f} hours"
