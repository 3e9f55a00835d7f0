"""What a command found, printed one way: the verdict, the gates it judged, and the facts a later job needs.

``run``, ``demo`` and every CI stage command build a ``StageReport``; ``run_command`` turns whatever happened
(crashes included) into one exit code through ``classify``, and ``emit`` prints it: a summary for a
person, one JSON object with ``--json``, the gate tables with ``--evidence DIR``.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ml_platform.cli.exit_codes import ExitCode, classify


@dataclass
class StageReport:
    """What one command found: the verdict, the gates it judged, and the facts a later job needs."""

    stage: str
    model: str
    exit_code: ExitCode = ExitCode.PASSED
    message: str = ""
    gates: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return ExitCode(self.exit_code).status

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, **asdict(self), "exit_code": int(self.exit_code)}

    def absorb(self, outcome) -> None:
        """Take a run's verdict, gates, failures and reported metadata (a ``RunOutcome``)."""
        self.exit_code, self.message = outcome.exit_code, outcome.message
        self.gates += [asdict(gate) for gate in outcome.gates]
        self.failures += outcome.failures
        self.outputs.update({"dagster_run_id": outcome.run_id, **outcome.outputs})
        if outcome.exit_code != ExitCode.PASSED:
            self.outputs["full_log"] = outcome.full_log


def run_command(stage: str, model: str, body: Callable[[StageReport], None], as_json: bool = False,
                evidence: Path | None = None) -> int:  # fmt: skip
    """Run one command body and turn whatever happened into one exit code and one printed report."""
    report = collect(stage, model, body)
    emit(report, as_json, evidence)
    return int(report.exit_code)


def collect(stage: str, model: str, body: Callable[[StageReport], None]) -> StageReport:
    """Run one command body; every outcome, crashes included, becomes a report with one exit code."""
    report = StageReport(stage, model)
    try:
        body(report)
    except Exception as error:
        verdict = classify(error)
        report.exit_code, report.message = verdict.code, verdict.message
        if verdict.crashed:
            _print_trace(error)
    return report


def fail(error: BaseException) -> int:
    """Print one error the way every command does, and return its exit code (``main``'s last resort)."""
    verdict = classify(error)
    if verdict.crashed:
        _print_trace(error)
    print(f"ml-platform: {verdict.message}", file=sys.stderr)
    return int(verdict.code)


def _print_trace(error: BaseException) -> None:
    """A crash is a bug: its stack trace is the useful part (masked, on stderr)."""
    from ml_platform.settings import redact_secrets

    print(redact_secrets("".join(traceback.format_exception(error))), file=sys.stderr, end="")


def emit(report: StageReport, as_json: bool = False, evidence: Path | None = None) -> None:
    if evidence is not None:
        evidence.mkdir(parents=True, exist_ok=True)
        (evidence / f"{report.stage}.json").write_text(json.dumps(report.as_dict(), indent=2, default=str))
        if report.gates:
            (evidence / f"{report.stage}-gates.md").write_text(gate_tables(report))
    if as_json:
        print(json.dumps(report.as_dict(), default=str, separators=(",", ":")))
        return
    print_report(report)


def print_report(report: StageReport) -> None:
    """The summary a person reads: each gate, what stopped the run, the facts, and what to do."""
    print(f"== {report.stage} {report.model}: {report.status.upper()}")
    for gate in report.gates:
        print(f"  [{'pass' if gate['passed'] else 'FAIL'}] {gate['asset']}:{gate['check']}")
        if not gate["passed"]:
            for line in gate["description"].splitlines()[1:]:
                print(f"         {line.strip()}")
    for failure in report.failures:
        print(f"  [stop] {failure}")
    for name, value in report.outputs.items():
        print(f"  {name}: {value}")
    if report.message:
        print(f"  {report.message}", file=sys.stderr if report.exit_code else sys.stdout)


def gate_tables(report: StageReport) -> str:
    lines = [f"# {report.stage} {report.model}: {report.status}\n"]
    for gate in report.gates:
        lines.append(f"## {gate['asset']}:{gate['check']} — {'passed' if gate['passed'] else 'FAILED'}\n")
        lines.append((gate.get("table") or gate["description"]) + "\n")
    return "\n".join(lines)
