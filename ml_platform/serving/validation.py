"""Online requests checked against the model's raw contract without the label (the same schema as batch scoring).

The pandera schema is the one source of truth, but pandera's lazy validation costs about 13 ms on a
one-row frame here -- as much as the model's own ``predict``. So each batch goes first through a fast
path compiled from the same schema: pandera's own coercion per column, then its built-in checks
(``gt``, ``ge``, ``lt``, ``le``, ``in_range``, ``isin``, ``notin``, ``eq``, ``ne``) evaluated from their
recorded statistics. The fast path only *accepts*: anything it does not accept (a failure, or a
contract with a check it does not know, a unique column, a frame-level check) goes to pandera itself,
which decides and names the problems. The tests hold the two to the same verdicts and the same typed
frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ml_platform.errors import RequestRefused
from ml_platform.rules.evidence import capped
from ml_platform.rules.spec import ModelSpec, resolve_ref
from ml_platform.serving.payload import Rows

_CHECKS: dict[str, Callable[[np.ndarray, dict], np.ndarray]] = {
    "greater_than": lambda v, a: v > a["min_value"],
    "greater_than_or_equal_to": lambda v, a: v >= a["min_value"],
    "less_than": lambda v, a: v < a["max_value"],
    "less_than_or_equal_to": lambda v, a: v <= a["max_value"],
    "in_range": lambda v, a: (
        (v >= a["min_value"] if a.get("include_min", True) else v > a["min_value"])
        & (v <= a["max_value"] if a.get("include_max", True) else v < a["max_value"])
    ),
    "isin": lambda v, a: np.isin(v, np.asarray(a["allowed_values"], dtype=object)),
    "notin": lambda v, a: ~np.isin(v, np.asarray(a["forbidden_values"], dtype=object)),
    "equal_to": lambda v, a: v == a["value"],
    "not_equal_to": lambda v, a: v != a["value"],
}
# What a JSON value must already be for the fast path to accept it, per kind of column and coercion.
# Anything else (a number for a text column, 1 for a boolean) is left to pandera, which may still accept it.
_ACCEPTS: dict[tuple[str, bool], Callable[[object], bool]] = {
    ("float", True): lambda v: (type(v) is float and v == v) or type(v) is int,
    ("float", False): lambda v: type(v) is float and v == v,
    ("int", True): lambda v: type(v) is int,
    ("int", False): lambda v: type(v) is int,
    ("bool", True): lambda v: type(v) is bool,
    ("bool", False): lambda v: type(v) is bool,
    ("str", True): lambda v: type(v) is str,
    ("datetime", True): lambda v: type(v) is str,
}


def _kind(dtype) -> str | None:
    text = str(dtype)
    if text in ("float64", "int64", "bool"):
        return text.rstrip("64")
    if text == "str" or text.startswith("string"):
        return "str"
    if text.startswith("datetime64[ns, "):
        return "datetime"
    return None


@dataclass(frozen=True)
class _Plan:
    name: str
    column: object  # pandera Column
    kind: str
    coerce: bool  # the column's own, or the schema's

    def accept(self, values: list) -> object | None:
        """The column's values typed as pandera types them, or ``None`` when the fast path cannot accept them."""
        if not all(map(_ACCEPTS[(self.kind, self.coerce)], values)):
            return None
        if self.kind == "datetime":
            try:
                typed = pd.to_datetime(values, utc=True, format="ISO8601").as_unit("ns")
            except (ValueError, TypeError, OverflowError):
                return None
            typed = typed.tz_convert(self.column.dtype.type.tz).array
            array = typed.to_numpy()
        elif self.kind == "str":
            array = typed = np.asarray(values, dtype=object)
        else:
            array = typed = np.asarray(values, dtype=self.kind if self.kind != "float" else "float64")
        for check in self.column.checks:
            if not bool(np.all(_CHECKS[check.name](array, check.statistics))):
                return None
        return pd.array(typed, dtype=self.column.dtype.type) if self.kind == "str" else typed


@dataclass(frozen=True)
class Validated:
    """A batch after the contract: the typed rows of the accepted requests, and each request's outcome.

    ``outcomes[i]`` is the slice of the rows holding request ``i``'s, or the refusal naming its problems.
    ``columns`` holds each contract column's typed values (a NumPy or pandas array): the server takes the
    model's features and the log's columns from it, so a batch pays for no frame it does not use (building
    and slicing one-row frames cost about as much as the contract itself, docs/benchmarks.md profile 15).
    """

    columns: dict[str, Any]
    outcomes: list[slice | RequestRefused]

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def frame(self, names: Sequence[str] | None = None) -> pd.DataFrame:
        """The accepted rows as a frame: every column, or ``names`` in that order."""
        return pd.DataFrame({name: self.columns[name] for name in (self.columns if names is None else names)})


class ScoringContract:
    """A model's raw contract without its label, as online requests must meet it."""

    def __init__(self, spec: ModelSpec):
        self.model = spec.name
        self.label = spec.label
        self.contract_name = resolve_ref(spec.contract).__name__
        self.schema = resolve_ref(spec.contract).to_schema().remove_columns([spec.label])
        self.columns = tuple(self.schema.columns)
        self.plans = _compile(self.schema)

    def validate_many(self, parts: Sequence[Rows]) -> Validated:
        """Every request of a batch checked; one bad request never refuses the others."""
        typed = self._fast([row for part in parts for row in part.rows])
        if typed is not None:
            outcomes, start = [], 0
            for part in parts:
                outcomes.append(slice(start, start + len(part.rows)))
                start += len(part.rows)
            return Validated(typed, outcomes)
        frames, outcomes, start = [], [], 0
        for part in parts:
            try:
                checked = self.validate(part.rows)
            except RequestRefused as refused:
                outcomes.append(refused)
                continue
            frames.append(checked)
            outcomes.append(slice(start, start + len(checked)))
            start += len(checked)
        if not frames:
            return Validated({}, outcomes)
        accepted = pd.concat(frames, ignore_index=True)
        return Validated({name: accepted[name].array for name in accepted.columns}, outcomes)

    def validate(self, rows: Sequence[Sequence]) -> pd.DataFrame:
        """One request's rows typed by the contract, or a 422 naming each column, what was found and what was
        expected."""
        from pandera.errors import SchemaErrors

        typed = self._fast(rows)
        if typed is not None:
            return pd.DataFrame(typed)
        try:
            return self.schema.validate(pd.DataFrame(rows, columns=list(self.columns)), lazy=True)
        except SchemaErrors as errors:
            problems = _problems(errors.failure_cases)
            raise RequestRefused(
                f"model {self.model!r}: the request breaks {self.contract_name} (without {self.label!r}): "
                + "; ".join(problems[:8]),
                422,
            ) from None

    def _fast(self, rows: Sequence[Sequence]) -> dict[str, Any] | None:
        """Each column's typed values, when the fast path accepts every row; else ``None`` (pandera decides)."""
        if self.plans is None or not rows:
            return None
        typed = {}
        for plan, values in zip(self.plans, zip(*rows, strict=True), strict=True):
            accepted = plan.accept(list(values))
            if accepted is None:
                return None
            typed[plan.name] = accepted
        return typed


def _compile(schema) -> list[_Plan] | None:
    """The fast path's plan per column, or ``None`` when the schema has something only pandera can judge."""
    if schema.checks or getattr(schema, "unique", None) or getattr(schema, "parsers", None):
        return None
    plans = []
    for name, column in schema.columns.items():
        if column.unique or column.regex or getattr(column, "parsers", None):
            return None
        if any(check.name not in _CHECKS or check.statistics is None for check in column.checks):
            return None
        kind, coerce = _kind(column.dtype), bool(column.coerce or schema.coerce)
        if kind is None or (kind, coerce) not in _ACCEPTS or column.nullable:
            return None
        plans.append(_Plan(name, column, kind, coerce))
    return plans


def _problems(cases: pd.DataFrame) -> list[str]:
    """One line per column and check: the column, what was observed, what the contract expects."""
    problems = []
    coerced = set(cases.loc[cases["check"].astype(str).str.startswith("coerce_dtype("), "column"])
    typed = coerced | set(cases.loc[cases["check"].astype(str).str.startswith("dtype("), "column"])
    for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
        text = str(check)
        if column in typed and not text.startswith(("coerce_dtype(", "dtype(", "not_nullable")):
            continue  # a value check on a column of the wrong type only repeats the type problem
        if column in coerced and text.startswith("dtype("):
            continue
        values = group["failure_case"].astype(str).unique().tolist()
        rows = sorted({int(i) for i in group["index"].dropna()})
        where = f" in row(s) {capped(rows, 5)}" if rows else ""
        name = column if column == column else "frame"
        observed = "null" if check == "not_nullable" else capped(values, 3)
        problems.append(f"column {name!r}: observed {observed}{where}, expected {_expected(str(check))}")
    return problems


def _expected(check: str) -> str:
    if check == "not_nullable":
        return "a value (the column may not be null)"
    for prefix, meaning in (("coerce_dtype(", "a value of type "), ("dtype(", "the type ")):
        if check.startswith(prefix):
            return meaning + check[len(prefix) : -1].strip("'")
    if check.startswith("isin("):
        return "one of " + check[len("isin(") : -1]
    return check
