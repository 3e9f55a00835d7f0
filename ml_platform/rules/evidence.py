"""Gate results as evidence: what was required, what was observed, and whether it held.

Every gate returns a ``GateResult`` that lists *all* of its rules, the passing ones too, so a reader
sees the margin as well as the verdict; a failing gate names each violated rule as
"observed vs required" in one message (ZenML's evaluator does the same).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rule:
    """One line of a gate's table.

    ``observed`` and ``required`` are what a person reads. ``value`` and ``threshold`` are the same
    comparison as numbers, where it has them (a row count against ``min_rows``, a share against its
    floor, an age in hours against ``max_age``), so that a UI can show and plot them across runs;
    ``measure`` names that number when ``rule`` carries something that changes from run to run (the
    champion's version) or needs a unit.
    """

    rule: str
    observed: Any
    required: str
    passed: bool
    note: str = ""
    value: float | None = None
    threshold: float | None = None
    measure: str = ""

    @property
    def series(self) -> str:
        """The name this rule's numbers go under, the same on every run."""
        return self.measure or self.rule


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate over one subject (a snapshot, a feature frame or a candidate)."""

    gate: str
    subject: str
    rules: tuple[Rule, ...]
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(rule.passed for rule in self.rules)

    @property
    def violations(self) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if not rule.passed)

    def summary(self) -> str:
        """One line per violated rule, or a one-line pass statement."""
        if self.passed:
            return (
                f"{self.gate} passed on {self.subject} ({len(self.rules)} rules){': ' + self.note if self.note else ''}"
            )
        lines = [f"{self.gate} failed on {self.subject}:"]
        lines += [
            f"  - {r.rule}: observed {_fmt(r.observed)}, required {r.required}" + (f" ({r.note})" if r.note else "")
            for r in self.violations
        ]
        if self.note:
            lines.append(f"  ({self.note})")
        return "\n".join(lines)

    def table(self) -> str:
        """The gate as a Markdown table, the form Dagster's UI renders."""
        head = "| rule | observed | required | passed |\n|---|---|---|---|\n"
        body = "".join(
            f"| {r.rule} | {_fmt(r.observed)} | {r.required} | {'yes' if r.passed else '**NO**'} |\n"
            for r in self.rules
        )
        return head + body + (f"\n{self.note}\n" if self.note else "")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def capped(items: list[Any], limit: int = 5, width: int = 80) -> str:
    """A short list for a message: the first few items, each cut to ``width`` characters, and how many more.

    Items come from landing data (column names, values): a hostile megabyte string must not be copied
    whole into every message, Dagster's metadata and the ledger.
    """
    shown = ", ".join(_cut(repr(item), width) for item in items[:limit])
    return f"[{shown}{f', … {len(items) - limit} more' if len(items) > limit else ''}]"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else f"{text[: width - 1]}…({len(text):,} characters)"
