"""Data gates on a snapshot and on the feature frame (platform-owned rules, team-owned thresholds).

The pandera ``DataFrameModel`` a team declares is the column contract (names, types, ranges,
categories). The rules that are not facts about one column — enough rows, no nulls where the
platform needs values, unique keys, known labels, every segment present with its share, fresh
events — are separate gates, each reading its thresholds from the ``ModelSpec``.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ml_platform.rules.evidence import GateResult, Rule, capped
from ml_platform.rules.spec import LandingLimits, ModelSpec

if TYPE_CHECKING:  # pandas is imported inside the gates: loading the definitions must not pay for it
    import pandas as pd

MAX_FAILURE_CASES = 20
MAX_CASE_CHARS = 200  # a failing value is landing data: a hostile one may be megabytes long
MAX_COUNTED = 50  # distinct values listed in a gate's counts (labels, segments): the most frequent first
CLOCK_SKEW = timedelta(minutes=5)  # how far ahead of ours an exporter's clock may run
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
LIMIT_UNITS = {
    "max_file_bytes": "bytes",
    "max_decompressed_bytes": "bytes",
    "max_rows": "rows",
    "max_columns": "columns",
}

BOOLEAN_TEXT = frozenset({"True", "TRUE", "true", "False", "FALSE", "false"})  # what pandas' CSV reader reads as bool
INTEGER_TEXT = re.compile(r"[+-]?\d+")
FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|nan)", re.IGNORECASE)

SourceRows = Sequence[tuple[str, int]]  # a snapshot's landing files in order, each with its row count


# ------------------------------------------------------------------ landing files, before any gate


def foreign_delimiter(header: str, expected: str) -> str | None:
    """The delimiter a CSV header line uses instead of ``expected``, or None when it uses ``expected``.

    Counted outside quotes, per candidate: a header that never contains the expected delimiter but
    does contain another one was written with that other one (a European spreadsheet's ``;``). A
    header with no candidate at all is one column, not a wrong delimiter.
    """
    splits = {d: len(next(csv.reader([header], delimiter=d), [])) - 1 for d in DELIMITERS}
    if splits.get(expected, 0) > 0:
        return None
    found = max(splits, key=splits.get)
    return found if splits[found] > 0 else None


def delimiter_refusal(file: str, found: str, expected: str, header: str) -> str:
    return (
        f"landing file {file!r} looks {DELIMITERS[found]}-delimited: its header {header[:120]!r} splits into "
        f"{len(next(csv.reader([header], delimiter=found)))} fields on {found!r} and has no {expected!r} "
        f"(expected {DELIMITERS[expected]}-delimited CSV, the spec's csv_delimiter {expected!r}). Re-export the file "
        f"with {expected!r}, or set csv_delimiter={found!r} in the model's spec if every export uses it."
    )


def limit_refusal(file: str, limits: LandingLimits, limit: str, observed: int, how: str, at_least: bool) -> str:
    """The refusal of a landing file over one of the spec's ``limits``, with the way to raise it.

    ``at_least`` when counting stopped at the limit: the file holds more, and was not read further.
    """
    allowed = getattr(limits, limit)
    unit = LIMIT_UNITS[limit]
    amount = f"more than {allowed:,}" if at_least else f"{observed:,}"
    return (
        f"landing file {file!r} is over the landing limit limits.{limit}: {how} {amount} {unit} (allowed "
        f"{allowed:,}); it was refused before being read whole. If the file is genuine, raise the limit in the "
        f"model's spec: limits=LandingLimits({limit}=...)."
    )


def contract_columns(contract) -> tuple[str, ...]:
    """The columns a pandera ``DataFrameModel`` declares, in its order."""
    return tuple(contract.to_schema().columns)


def validate(frame: pd.DataFrame, contract) -> pd.DataFrame:
    """The frame as the contract types it, every failure collected (raises pandera's ``SchemaErrors``).

    pandera copies the whole frame before coercing unless told to work in place; in place on a shallow
    copy leaves the caller's frame untouched all the same (pandas' copy-on-write copies only the
    columns coercion replaces), without a second copy of every column in memory.
    """
    return contract.validate(frame.copy(deep=False), lazy=True, inplace=True)


def schema_holds(
    frame: pd.DataFrame, contract, subject: str, gate: str = "schema_holds", sources: SourceRows = ()
) -> GateResult:
    """Validate lazily against a pandera model, so every broken column is reported at once.

    ``sources`` (the snapshot's landing files in order, with their rows) lets each failing row be named
    by its file and its row in that file, which is where someone has to look.
    """
    return typed_by_contract(frame, contract, subject, gate, sources)[0]


def typed_by_contract(
    frame: pd.DataFrame, contract, subject: str, gate: str = "schema_holds", sources: SourceRows = ()
) -> tuple[GateResult, pd.DataFrame | None]:
    """``schema_holds``, and the frame as the contract typed it when it holds (None when it does not)."""
    from pandera.errors import SchemaErrors

    try:
        typed = validate(frame, contract)
    except SchemaErrors as errors:
        cases = _with_failing_values(errors.failure_cases, frame, contract)
        table = cases.head(MAX_FAILURE_CASES)[["column", "check", "failure_case", "index"]]
        if sources:
            table = table.assign(file=[_locate(row, sources)[0] if _is_row(row) else "" for row in table["index"]])
        table = table.astype(str).map(
            lambda text: f"{text[: MAX_CASE_CHARS - 1]}…" if len(str(text)) > MAX_CASE_CHARS else text
        )
        rules = tuple(_schema_rules(cases, contract.__name__, sources))
        return GateResult(gate, subject, rules, details={"failure_cases": table.to_dict("records")}), None
    shape = f"{len(frame):,} rows x {len(frame.columns)} columns valid"
    rule = Rule(
        f"{contract.__name__} holds",
        shape,
        "every rule of the contract",
        True,
        value=0,
        threshold=0,
        measure="failing values",
    )
    return GateResult(gate, subject, (rule,)), typed


def _with_failing_values(cases: pd.DataFrame, frame: pd.DataFrame, contract) -> pd.DataFrame:
    """The failure cases with a column's wrong type replaced by the values that are not of the type.

    pandera reports a column that is not of its declared, uncoerced type once, by the type it found
    (``'str'`` for ``yes``/``no`` in a boolean column); a reader needs the values themselves and their rows.
    """
    import pandas as pd

    whole_column = cases["check"].astype(str).str.startswith("dtype(") & cases["index"].isna()
    if not whole_column.any():
        return cases
    declared = contract.to_schema().columns
    replaced, found = [], []
    for column in cases.loc[whole_column, "column"].dropna().unique():
        if column not in frame.columns or column not in declared:
            continue
        failing = _not_of_type(frame[column], declared[column].dtype)
        if failing.empty:
            continue
        found.append(column)
        check = cases.loc[whole_column & cases["column"].eq(column), "check"].iloc[0]
        replaced.append(
            pd.DataFrame(
                {
                    "schema_context": "Column",
                    "column": column,
                    "check": check,
                    "check_number": None,
                    "failure_case": pd.Series(failing.to_numpy(), dtype=object),
                    "index": pd.Series(failing.index, dtype=object),
                }
            )
        )
    if not replaced:
        return cases
    return pd.concat([cases[~(whole_column & cases["column"].isin(found))], *replaced], ignore_index=True)


def _not_of_type(values: pd.Series, dtype) -> pd.Series:
    """The non-null values that are not of ``dtype``'s kind (bool, integer, float, text, time); empty if unknown.

    Text that a CSV reader would have read as the kind (``True``, ``42``) fits: landing files that
    disagreed on a column's type are kept as text (``stores.snapshot._storable``), and only the values
    that are wrong in themselves should be named, not those of the file that was right.
    """
    from datetime import datetime as instant

    import numpy as np

    kind = getattr(getattr(dtype, "type", None), "kind", None)
    fits = {
        "b": lambda v: isinstance(v, bool | np.bool_) or v in BOOLEAN_TEXT,
        "i": lambda v: (
            (isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_))
            or (isinstance(v, str) and INTEGER_TEXT.fullmatch(v) is not None)
        ),
        "f": lambda v: (
            (isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool | np.bool_))
            or (isinstance(v, str) and FLOAT_TEXT.fullmatch(v) is not None)
        ),
        "O": lambda v: isinstance(v, str),
        "M": lambda v: isinstance(v, instant | np.datetime64),
    }.get({"u": "i", "U": "O"}.get(kind, kind))
    if fits is None:
        return values.iloc[:0]
    present = values.dropna()
    return present[~present.map(fits).astype(bool)]


def _schema_rules(cases: pd.DataFrame, contract: str, sources: SourceRows = ()) -> list[Rule]:
    """One rule per broken (column, check), the frame's missing and unexpected columns first.

    A column whose values cannot be coerced to its type is reported once, by that coercion: its dtype
    check, and any value check that crashed on the wrong type, only repeat the same failure.
    """
    rules = []
    on_frame = cases["schema_context"].astype(str).eq("DataFrameSchema")
    for check, group in cases[on_frame].groupby("check", sort=False):
        found = group["failure_case"].dropna().astype(str).unique().tolist()
        if check == "column_in_dataframe":
            rules.append(
                Rule(
                    "required columns present",
                    f"missing {capped(found)}",
                    f"every column of {contract}",
                    False,
                    value=len(found),
                    threshold=0,
                    measure="missing columns",
                )
            )
        elif check == "column_in_schema":
            rules.append(
                Rule(
                    "no unexpected columns",
                    f"unexpected {capped(found)}",
                    f"only the columns of {contract}",
                    False,
                    "to keep only the contract's columns and record the others, set unexpected_columns='drop' "
                    "in the model's spec",
                    value=len(found),
                    threshold=0,
                    measure="unexpected columns",
                )
            )
        else:
            observed = _failing_values(group, found, sources)
            rules.append(Rule(f"frame: {check}", observed, str(check), False, value=len(group), threshold=0))
    on_columns = cases[~on_frame]
    coercion_failed = on_columns["check"].astype(str).str.startswith("coerce_dtype(")
    uncoercible = set(on_columns.loc[coercion_failed, "column"])
    for (column, check), group in on_columns.groupby(["column", "check"], dropna=False, sort=False):
        check = str(check)
        repeats_coercion = check.startswith("dtype(") or group["index"].isna().all()
        if column in uncoercible and not check.startswith("coerce_dtype(") and repeats_coercion:
            continue
        found = group["failure_case"].dropna().astype(str).unique().tolist()
        observed = _failing_values(group, found, sources)
        rules.append(
            Rule(f"column {column}: {check}", observed, _expectation(check), False, value=len(group), threshold=0)
        )
    return rules


def _failing_values(group: pd.DataFrame, found: list[str], sources: SourceRows = ()) -> str:
    rows = group["index"].dropna().drop_duplicates().tolist()
    where = _where(rows, sources)
    if not found:
        return f"{len(group):,} null value(s){where}"
    return f"{len(group):,} failing value(s), e.g. {capped(found, 3)}{where}"


def _where(rows: list[int], sources: SourceRows) -> str:
    """Rows of the frame as rows of the landing files they came from: " in 'a.csv' rows [0, 1]"."""
    if not rows:
        return ""
    if not sources or not all(map(_is_row, rows)):
        return f" in rows {capped(rows, 3)}"
    by_file: dict[str, list[int]] = {}
    for row in rows:
        name, local = _locate(row, sources)
        by_file.setdefault(name, []).append(local)
    shown = [f"{name!r} rows {capped(local, 3)}" for name, local in list(by_file.items())[:3]]
    more = f" and {len(by_file) - 3} more file(s)" if len(by_file) > 3 else ""
    return " in " + ", ".join(shown) + more


def _locate(row: int, sources: SourceRows) -> tuple[str, int]:
    """The landing file a frame row came from, and its row in that file (both counted from 0)."""
    start = 0
    for name, rows in sources:
        if row < start + rows:
            return name, row - start
        start += rows
    return "?", row


def _is_row(value) -> bool:
    return isinstance(value, int) or getattr(getattr(value, "dtype", None), "kind", "") in ("i", "u")


def _expectation(check: str) -> str:
    """A pandera check name as the expectation a reader understands."""
    if match := re.fullmatch(r"coerce_dtype\('(.+)'\)", check):
        return f"every value convertible to {match[1]}"
    if match := re.fullmatch(r"dtype\('(.+)'\)", check):
        return f"dtype {match[1]}"
    return {"not_nullable": "no nulls", "field_uniqueness": "unique values"}.get(check, check)


def has_enough_rows(frame: pd.DataFrame, spec: ModelSpec, subject: str) -> GateResult:
    rows = len(frame)
    rule = Rule(
        "rows", rows, f">= {spec.min_rows:,} (min_rows)", rows >= spec.min_rows, value=rows, threshold=spec.min_rows
    )
    return GateResult("has_enough_rows", subject, (rule,))


def has_no_nulls(frame: pd.DataFrame, spec: ModelSpec, subject: str) -> GateResult:
    """Nulls in any column the platform relies on (key, label, features, segment, event time)."""
    rules = []
    for column in spec.required_columns:
        if column not in frame.columns:
            rules.append(_missing_column(column))
            continue
        rows = frame.index[frame[column].isna()]
        note = f"e.g. rows {capped(rows.tolist(), 3)}" if len(rows) else ""
        rules.append(Rule(f"nulls in {column}", len(rows), "0", rows.empty, note, value=len(rows), threshold=0))
    return GateResult("has_no_nulls", subject, tuple(rules))


def keys_are_unique(frame: pd.DataFrame, spec: ModelSpec, subject: str) -> GateResult:
    key = spec.key_column
    if key not in frame.columns:
        return GateResult("keys_are_unique", subject, (_missing_column(key),))
    values = frame[key]
    if values.is_unique:  # one hash pass; finding which rows repeat costs a second, only worth it on failure
        rule = Rule(f"duplicate {key} values", 0, "0", True, value=0, threshold=0)
        return GateResult("keys_are_unique", subject, (rule,))
    duplicated = values[values.duplicated(keep=False)]
    examples = duplicated.astype(str).unique().tolist()
    note = f"{len(duplicated):,} rows share {capped(examples)}" if examples else ""
    repeated = int(duplicated.nunique())
    rule = Rule(f"duplicate {key} values", repeated, "0", duplicated.empty, note, value=repeated, threshold=0)
    return GateResult("keys_are_unique", subject, (rule,))


def labels_are_known(frame: pd.DataFrame, spec: ModelSpec, subject: str) -> GateResult:
    """Every label is one of the declared classes, and every declared class occurs."""
    if spec.label not in frame.columns:
        return GateResult("labels_are_known", subject, (_missing_column(spec.label),))
    import pandas as pd

    labels = frame[spec.label].dropna()
    if pd.api.types.is_float_dtype(labels) and labels.mod(1).eq(0).all():
        labels = labels.astype("int64")  # a null turns a CSV's integer column into floats: 1.0 is class 1
    allowed = sorted({_label_text(v) for v in spec.label_values})
    observed = labels.astype(str)
    counts = observed.value_counts()
    unknown = sorted(set(counts.index) - set(allowed))
    absent = sorted(set(allowed) - set(counts.index))
    present = len(allowed) - len(absent)
    unknown_rows = int(counts[unknown].sum()) if unknown else 0
    rules = (
        Rule(
            "unknown label values",
            capped(unknown) if unknown else "none",
            f"only {allowed}",
            not unknown,
            f"{unknown_rows:,} rows" if unknown else "",
            value=unknown_rows,
            threshold=0,
            measure="rows with unknown labels",
        ),
        Rule(
            "declared classes present",
            f"{present} of {len(allowed)}",
            f"all of {allowed}",
            not absent,
            f"missing {absent}" if absent else "",
            value=present,
            threshold=len(allowed),
        ),
    )
    return GateResult("labels_are_known", subject, rules, details={"label_counts": bounded_counts(counts)})


def has_every_segment(frame: pd.DataFrame, spec: ModelSpec, subject: str) -> GateResult:
    """The gate that stops a partial export: each expected segment with at least its share of rows."""
    segments = spec.segments
    if segments.column not in frame.columns:
        return GateResult("has_every_segment", subject, (_missing_column(segments.column),))
    expected = sorted(segments.min_share)
    total = len(frame)
    counts = frame[segments.column].dropna().astype(str).value_counts()
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
                value=share,
                threshold=min_share,
            )
        )
    covered = [segment for segment in expected if counts.get(segment, 0) > 0]
    absent = [segment for segment in expected if segment not in covered]
    note = ""
    if absent:  # the time span is worth its parse only when it explains a failure
        span = _time_span(frame, spec)
        note = f"missing {absent}: the snapshot covers only {covered}{span}. Is this a partial export?"
    rules.append(
        Rule(
            f"{segments.column} values present",
            capped(covered, 10),
            f"all of {expected}",
            not absent,
            note,
            value=len(covered),
            threshold=len(expected),
        )
    )
    unexpected = sorted(set(counts.index) - set(expected))
    rules.append(
        Rule(
            f"unexpected {segments.column} values",
            capped(unexpected) if unexpected else "none",
            f"none outside {expected}",
            not unexpected,
            value=len(unexpected),
            threshold=0,
        )
    )
    return GateResult(
        "has_every_segment",
        subject,
        tuple(rules),
        f"segments present: {covered}",
        details={"rows_per_segment": bounded_counts(counts)},
    )


def _time_span(frame: pd.DataFrame, spec: ModelSpec) -> str:
    if not spec.freshness or spec.freshness.column not in frame.columns:
        return ""
    times = event_time(frame, spec.freshness.column).dropna()
    # isoformat, not strftime: strftime refuses a Timestamp outside Python's datetime range (year < 1)
    return f" from {times.min().isoformat()[:10]} to {times.max().isoformat()[:10]}" if not times.empty else ""


def event_time(frame: pd.DataFrame, column: str) -> pd.Series:
    """Event times as UTC timestamps; values that do not parse become NaT (the schema gate names them).

    Parsing text timestamps is the dearest part of the data gates (pandas' ISO 8601 parser runs at
    about 2 M values/s here). Arrow's cast does the same in C++ some 20x faster, but only for stamps
    that carry a zone offset and only all-or-nothing; anything else — naive stamps, which pandas reads
    as UTC, or unparseable values, which must become NaT — takes the pandas path, so the result is the
    same either way.
    """
    import pandas as pd

    values = frame[column]
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return values.dt.tz_localize("UTC")
    if (parsed := _arrow_timestamps(values)) is not None:
        return parsed
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")


def _arrow_timestamps(values: pd.Series) -> pd.Series | None:
    """Offset-carrying ISO 8601 text as UTC nanosecond timestamps, or None when any value needs pandas."""
    import pandas as pd
    import pyarrow as pa

    if not pd.api.types.is_string_dtype(values.dtype):
        return None
    try:
        parsed = pa.array(values, from_pandas=True).cast(pa.timestamp("ns", "UTC"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError, OverflowError):
        return None
    return pd.Series(parsed.to_pandas(), index=values.index, name=values.name)


def with_typed_event_times(frame: pd.DataFrame, spec: ModelSpec, contract) -> pd.DataFrame:
    """The frame with its event-time column parsed once, for every gate to share.

    Without this the schema's coercion, the freshness gate and the segment gate's note each parse the
    same text column again. The parsed column replaces the text only when the contract declares a
    datetime there and every non-null value parsed: otherwise the schema gate must see the text to
    name the values that do not convert.
    """
    import pandas as pd

    column = spec.freshness.column if spec.freshness else None
    if column is None or column not in frame.columns or not pd.api.types.is_string_dtype(frame[column].dtype):
        return frame
    declared = contract.to_schema().columns.get(column)
    if declared is None or not pd.api.types.is_datetime64_any_dtype(getattr(declared.dtype, "type", None)):
        return frame
    times = event_time(frame, column)
    if times.isna().sum() != frame[column].isna().sum():
        return frame
    return frame.assign(**{column: times})


def is_fresh(frame: pd.DataFrame, spec: ModelSpec, subject: str, now: datetime) -> GateResult:
    """The newest event is recent enough to train on, and not stamped in the future."""
    freshness = spec.freshness
    if freshness.column not in frame.columns:
        return GateResult("is_fresh", subject, (_missing_column(freshness.column),))
    times = event_time(frame, freshness.column).dropna()
    if times.empty:
        rule = Rule(f"newest {freshness.column}", "no parseable timestamps", "an ISO 8601 timestamp", False)
        return GateResult("is_fresh", subject, (rule,))
    import pandas as pd

    newest, oldest = times.max(), times.min()
    now = pd.Timestamp(now)
    # In seconds: a nanosecond Timedelta overflows beyond ~292 years, Python's datetime before year 1,
    # and a file may say "1700-01-01" or worse.
    age = now.as_unit("s") - newest.as_unit("s")
    max_age = f"<= {_fmt_age(freshness.max_age)} (max_age)"
    age_hours = age.total_seconds() / 3600
    rules = (
        Rule(
            f"age of newest {freshness.column}",
            _fmt_age(age),
            max_age,
            age <= freshness.max_age,
            f"newest event {newest.isoformat()}, now {now.isoformat()}",
            value=age_hours,
            threshold=freshness.max_age.total_seconds() / 3600,
            measure=f"age of newest {freshness.column} (hours)",
        ),
        Rule(
            f"newest {freshness.column} not in the future",
            newest.isoformat(),
            f"<= {now.isoformat()}",
            newest <= now + CLOCK_SKEW,
            value=-age_hours,
            threshold=CLOCK_SKEW.total_seconds() / 3600,
            measure=f"newest {freshness.column} ahead of now (hours)",
        ),
    )
    return GateResult(
        "is_fresh", subject, rules, details={"event_time_range": [oldest.isoformat(), newest.isoformat()]}
    )


def snapshot_gates(
    frame: pd.DataFrame, spec: ModelSpec, contract, subject: str, now: datetime, sources: SourceRows = ()
) -> list[GateResult]:
    """Every data gate the spec declares, in the order a reader should meet them.

    ``sources`` are the snapshot's landing files with their rows, so a failing value is named with its file.
    """
    return typed_snapshot_gates(frame, spec, contract, subject, now, sources)[0]


def typed_snapshot_gates(
    frame: pd.DataFrame, spec: ModelSpec, contract, subject: str, now: datetime, sources: SourceRows = ()
) -> tuple[list[GateResult], pd.DataFrame | None]:
    """``snapshot_gates``, and the snapshot as the raw contract typed it when ``schema_holds`` passed.

    That typed frame is exactly what ``features.typed_frame`` computes from the same snapshot (the same
    event-time parsing, the same validation), so a run that has it need not validate the snapshot twice.
    """
    frame = with_typed_event_times(frame, spec, contract)
    schema, typed = typed_by_contract(frame, contract, subject, sources=sources)
    results = [
        schema,
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
    return results, typed


def snapshot_gate_names(spec: ModelSpec) -> list[str]:
    names = ["schema_holds", "has_enough_rows", "has_no_nulls", "labels_are_known"]
    names += ["keys_are_unique"] if spec.key_column else []
    names += ["has_every_segment"] if spec.segments else []
    names += ["is_fresh"] if spec.freshness else []
    return names


def bounded_counts(counts: pd.Series) -> dict[str, int]:
    """Value counts fit for metadata: the most frequent ``MAX_COUNTED`` values, each cut to ``MAX_CASE_CHARS``.

    A hostile column can hold a million distinct megabyte values; every one of them would otherwise
    become a key of the check's metadata in Dagster's event log.
    """
    return {
        (f"{text[: MAX_CASE_CHARS - 1]}…" if len(text := str(value)) > MAX_CASE_CHARS else text): int(count)
        for value, count in counts.head(MAX_COUNTED).items()
    }


def _missing_column(column: str) -> Rule:
    return Rule(f"column {column} present", "missing", "present", False)


def _label_text(value) -> str:
    """A declared class as text, the way ``labels_are_known`` compares labels: 1.0 is the class 1."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _fmt_age(age: timedelta) -> str:
    seconds = age.total_seconds()
    if abs(seconds) >= 86400:
        return f"{seconds / 86400:.1f} days"
    return f"{seconds / 3600:.1f} hours"
