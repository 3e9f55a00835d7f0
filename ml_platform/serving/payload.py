"""MLflow's ``/invocations`` payloads parsed into rows in the contract's column order (pure).

Accepted, as ``mlflow models serve`` accepts them, so existing clients work unchanged:

    {"dataframe_split": {"columns": [...], "data": [[...], ...]}}      (an "index" is ignored)
    {"dataframe_records": [{"column": value, ...}, ...]}

Every refusal is a ``RequestRefused`` with the HTTP status and a message naming what was found and
what was expected: 400 for a body that is not JSON, 413 over the row limit, 422 for a payload of the
wrong shape or columns. Types and ranges are the contract's business (``validation``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ml_platform.errors import RequestRefused
from ml_platform.rules.evidence import capped

FORMATS = ("dataframe_split", "dataframe_records")
MISSING = object()


@dataclass(frozen=True)
class Rows:
    """A request's rows, each a list of values in ``columns`` order (the contract's, label dropped)."""

    columns: tuple[str, ...]
    rows: list[list[Any]]


def parse_payload(body: bytes, columns: Sequence[str], label: str, max_rows: int) -> Rows:
    """The request's rows in the contract's column order, or a ``RequestRefused`` naming the problem."""
    if not body.strip():
        raise RequestRefused(f"empty body: expected a JSON object with one of {list(FORMATS)}", 400)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        expected = f"expected a JSON object with one of {list(FORMATS)}"
        raise RequestRefused(f"the body is not JSON ({error}); {expected}", 400) from None
    if not isinstance(payload, dict) or not any(name in payload for name in FORMATS):
        found = sorted(payload)[:5] if isinstance(payload, dict) else type(payload).__name__
        raise RequestRefused(f"the JSON has {found}; expected an object with one of {list(FORMATS)}", 422)
    if "dataframe_split" in payload:
        given, data = _split(payload["dataframe_split"])
    else:
        given, data = _records(payload["dataframe_records"])
    if not data:
        raise RequestRefused("the request has 0 rows; expected at least 1", 422)
    if len(data) > max_rows:
        limit = f"this server takes at most {max_rows:,} rows per request (--max-rows)"
        raise RequestRefused(f"the request has {len(data):,} rows; {limit}", 413)
    return Rows(tuple(columns), _in_contract_order(given, data, columns, label))


def _split(split: Any) -> tuple[list[str], list[list[Any]]]:
    shaped = isinstance(split, dict) and isinstance(split.get("columns"), list) and isinstance(split.get("data"), list)
    if not shaped:
        raise RequestRefused('dataframe_split must be {"columns": [names], "data": [[values], ...]}', 422)
    given = split["columns"]
    if not all(isinstance(name, str) for name in given):
        raise RequestRefused(f"dataframe_split columns must be names (strings); found {capped(given, 5)}", 422)
    for number, row in enumerate(split["data"]):
        if not isinstance(row, list) or len(row) != len(given):
            found = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            expected = f"expected {len(given)} (one per column)"
            raise RequestRefused(f"dataframe_split row {number} has {found}; {expected}", 422)
    return given, split["data"]


def _records(records: Any) -> tuple[list[str], list[list[Any]]]:
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise RequestRefused("dataframe_records must be a list of objects, one per row", 422)
    given = list(records[0]) if records else []
    for number, record in enumerate(records):
        if list(record) != given and set(record) != set(given):
            missing, extra = sorted(set(given) - set(record)), sorted(set(record) - set(given))
            raise RequestRefused(
                f"dataframe_records row {number} has different columns from row 0: missing {capped(missing, 5)}, "
                f"extra {capped(extra, 5)}",
                422,
            )
    return given, [[record.get(name) for name in given] for record in records]


def _in_contract_order(given: list[str], data: list[list[Any]], columns: Sequence[str], label: str) -> list[list[Any]]:
    """The rows reordered to the contract's columns; the label, if sent, dropped."""
    present = [name for name in given if name != label]
    missing = [name for name in columns if name not in present]
    unexpected = [name for name in present if name not in columns]
    if missing or unexpected or len(set(present)) != len(present):
        parts = [f"missing column(s) {capped(missing, 8)}"] if missing else []
        parts += [f"unexpected column(s) {capped(unexpected, 8)}"] if unexpected else []
        parts += ["a column named twice"] if len(set(present)) != len(present) else []
        raise RequestRefused(f"{'; '.join(parts)}; expected exactly the columns {list(columns)}", 422)
    if given == list(columns):
        return data
    positions = [given.index(name) for name in columns]
    return [[row[i] for i in positions] for row in data]
