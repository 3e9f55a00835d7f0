"""`ml-platform release <model> start|status|promote|abort`: a canary, its online gate, its verdict (platform-owned).

    start [--canary PCT] [--shadow] [--version V]   canary (default: the champion) beside production;
                                                    with nothing in production yet, the first release
    status [--wait --timeout S] [--judge] [--json]  the gate's current table; --wait until the verdict
    promote                                         production <- canary now, with the gate's evidence
    abort                                           canary removed, production untouched

The exit codes are the stage commands': 0 promoted (or started), 1 rolled back or refused with the
evidence, 2 usage or configuration, 3 infrastructure (and ``status --wait`` that saw no verdict in
time). The release sensor (``<model>_release_sensor``, run by the Dagster daemon) applies the gate's
verdict; ``status --wait --judge`` applies it from this process instead, for a platform without a
running daemon. Both go through the same moves, so a release is decided once.
"""

from __future__ import annotations

import argparse
import contextlib
import time

from ml_platform.cli.commands.stages import _stage
from ml_platform.cli.exit_codes import ExitCode
from ml_platform.cli.report import StageReport

POLL_SECONDS = 5.0


def register(commands) -> None:
    """Add ``release`` and its actions to ``commands``."""
    release = commands.add_parser("release", help="release a version: canary, online gate, promote or roll back")
    release.add_argument("model")
    actions = release.add_subparsers(dest="action", metavar="ACTION", required=True)
    start = actions.add_parser("start", help="start a canary of the champion (or --version) beside production")
    start.add_argument("--canary", type=float, default=None, metavar="PCT", help="share of traffic (default: spec)")
    start.add_argument("--shadow", action="store_true", help="score a sample in the background; answer with production")
    start.add_argument("--version", default=None, help="the version to release (default: the champion)")
    start.set_defaults(handler=lambda args: _stage("release-start", args, _start))
    status = actions.add_parser("status", help="the release in progress and its gate; --wait for the verdict")
    status.add_argument("--wait", action="store_true", help="wait until the release is promoted or rolled back")
    status.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait (exit 3 after)")
    status.add_argument("--judge", action="store_true", help="apply the gate's verdict here (no Dagster daemon)")
    status.set_defaults(handler=lambda args: _stage("release-status", args, _status))
    promote = actions.add_parser("promote", help="move production to the canary now, with the gate's evidence")
    promote.set_defaults(handler=lambda args: _stage("release-promote", args, _promote))
    abort = actions.add_parser("abort", help="remove the canary; production stays (exits 1: rolled back)")
    abort.set_defaults(handler=lambda args: _stage("release-abort", args, _abort))
    for parser in (start, status, promote, abort):
        parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        parser.add_argument("--evidence", type=_path, default=None, metavar="DIR", help="write the evidence files here")
    for parser in (start, promote, abort):
        parser.add_argument("--by", default=None, help="who (default: the current user)")
        parser.add_argument("--reason", default="", help="why, in a sentence, for the ledger")
    manifests = commands.add_parser(
        "serving-manifests", help="render a model's Kubernetes serving manifests (deploy/k8s/serving-<model>.yaml)"
    )
    manifests.add_argument("model")
    manifests.add_argument("--write", action="store_true", help="write deploy/k8s/serving-<model>.yaml")
    manifests.set_defaults(handler=_serving_manifests)


def _serving_manifests(args: argparse.Namespace) -> int:
    from ml_platform.discovery import get_spec
    from ml_platform.rules.serving_manifests import render
    from ml_platform.settings import PROJECT_ROOT

    spec = get_spec(args.model)
    if not args.write:
        print(render(spec), end="")
        return ExitCode.PASSED
    target = PROJECT_ROOT / "deploy" / "k8s" / f"serving-{spec.name}.yaml"
    target.write_text(render(spec))
    print(f"wrote {target}")
    return ExitCode.PASSED


def _path(text: str):
    from pathlib import Path

    return Path(text)


def _context():
    from ml_platform.cli.commands.stages import _paths, _store

    paths = _paths()
    return paths, _store(paths)


def _actor(given: str | None) -> str:
    import getpass

    return given or getpass.getuser()


def _start(spec, args: argparse.Namespace, report: StageReport) -> None:
    from ml_platform.defs.release import record_release, release_decision, report_events
    from ml_platform.stores.release import start_release

    paths, store = _context()
    actor = _actor(args.by)
    move = start_release(store, spec, args.version, args.canary, args.shadow, actor)
    report.outputs.update(
        {
            "version": move.version,
            "release": move.kind,
            "release_id": move.release_id,
            "moves": move.moves,
            "note": move.note,
        }
    )
    if move.kind == "no-op":
        return
    reason = args.reason or f"release started by {actor}"
    report_events(record_release(paths, spec, release_decision(spec, move, reason, actor)))


def _gates(spec, judgment) -> list[dict]:
    return [
        {
            "asset": f"{spec.name}/deployment",
            "check": rule.rule,
            "passed": rule.passed,
            "description": f"observed {rule.observed}, required {rule.required}",
            "table": judgment.table(),
        }
        for rule in judgment.gate.rules
    ]


def _judge(spec, paths, store, report: StageReport):
    """The release in progress and the gate's judgment of it now, into the report; ``None`` without one."""
    from ml_platform.defs.release import evaluate
    from ml_platform.stores.release import active_release

    active = active_release(store, spec.name)
    if active is None:
        return None, None
    if active.problem is not None:  # set outside `release start`: no window, nothing to judge
        report.outputs.update({"canary": active.version, "production": active.production, "problem": active.problem})
        return active, None
    judgment = evaluate(spec, paths, store, active)
    report.gates = _gates(spec, judgment)
    report.outputs.update(
        {
            "release_id": active.release_id,
            "canary": active.version,
            "mode": active.mode,
            "production": active.production,
            "started_at": active.started_at,
            "verdict": judgment.verdict,
            "reason": judgment.reason,
        }
    )
    return active, judgment


def _status(spec, args: argparse.Namespace, report: StageReport) -> None:
    from ml_platform.defs.release import ACTOR, apply_verdict, report_events
    from ml_platform.errors import PromotionBlocked

    paths, store = _context()
    deadline = time.monotonic() + args.timeout
    active, judgment = _judge(spec, paths, store, report)
    if active is not None and active.problem is not None:
        report.exit_code, report.message = ExitCode.GATE_FAILED, active.problem
        return
    watched = active.release_id if active else None
    while args.wait and active is not None and active.release_id == watched:
        if args.judge and judgment.verdict != "wait":
            with contextlib.suppress(PromotionBlocked):  # decided meanwhile by the sensor or a person: see the ledger
                report_events(apply_verdict(spec, paths, store, active, judgment, f"{ACTOR} (ml-platform status)"))
        elif time.monotonic() > deadline:
            report.exit_code = ExitCode.INFRASTRUCTURE
            report.message = (
                f"no verdict within {args.timeout:g} s: canary v{active.version} is still baking ({judgment.reason}). "
                "Is the release sensor running (the Dagster daemon)? Or wait with --judge."
            )
            return
        else:
            time.sleep(min(POLL_SECONDS, spec.release.poll_seconds * 2))
        active, judgment = _judge(spec, paths, store, report)
    if active is not None and not args.wait:
        report.message = f"release in progress: {judgment.verdict}: {judgment.reason}"
        return
    _outcome(spec, paths, watched, report)


def _outcome(spec, paths, release_id: str | None, report: StageReport) -> None:
    """The verdict of a finished release (default: the latest) from the ledger, as the exit code."""
    from ml_platform.errors import PromotionBlocked
    from ml_platform.stores.ledger import Ledger
    from ml_platform.stores.release import RELEASE_TRIGGER

    records = Ledger.for_home(paths.home).query(spec.name, ("promoted", "rolled-back"), trigger=RELEASE_TRIGGER)
    if release_id is not None:
        records = [r for r in records if r.evidence.get("release_id") == release_id]
    if not records:
        raise PromotionBlocked(f"release {spec.name!r}: no release has been decided yet (none is in progress)")
    last = records[-1]
    report.outputs.update(
        {
            "release_id": last.evidence.get("release_id"),
            "version": last.version,
            "decision": last.decision,
            "ledger_id": last.id,
            "recorded_at": last.recorded_at,
        }
    )
    report.message = last.reason
    if "gate_table" in last.evidence:
        report.outputs["gate_table"] = last.evidence["gate_table"]
    report.exit_code = ExitCode.PASSED if last.decision == "promoted" else ExitCode.GATE_FAILED


def _conclude(spec, args: argparse.Namespace, report: StageReport, outcome: str) -> None:
    from ml_platform.defs.release import record_release, release_decision, report_events
    from ml_platform.errors import PromotionBlocked
    from ml_platform.stores.release import conclude_release

    paths, store = _context()
    active, judgment = _judge(spec, paths, store, report)
    if active is None:
        raise PromotionBlocked(f"release {spec.name!r} {args.action}: no release is in progress")
    actor = _actor(args.by)
    if outcome == "promote" and active.problem is not None:
        raise PromotionBlocked(f"release {spec.name!r} promote: refused, {active.problem}")
    if outcome == "promote" and judgment.verdict == "rollback":
        raise PromotionBlocked(f"release {spec.name!r} promote: refused, the online gate says {judgment.reason}")
    reason = f"{args.action} by {actor}" + (f": {args.reason}" if args.reason else "")
    reason += f" ({active.problem})" if judgment is None else f" (the gate said {judgment.verdict}: {judgment.reason})"
    move = conclude_release(store, spec.name, active.release_id, outcome, reason)
    report_events(record_release(paths, spec, release_decision(spec, move, reason, actor, judgment), judgment))
    report.outputs.update({"version": move.version, "decision": move.kind, "moves": move.moves, "note": move.note})
    report.exit_code = ExitCode.PASSED if outcome == "promote" else ExitCode.GATE_FAILED
    report.message = move.note


def _promote(spec, args: argparse.Namespace, report: StageReport) -> None:
    _conclude(spec, args, report, "promote")


def _abort(spec, args: argparse.Namespace, report: StageReport) -> None:
    _conclude(spec, args, report, "rollback")


def first_release(spec, paths) -> str:
    """Make a model servable on a new home (``ml-platform demo``): its champion's first release, when
    nothing is in production yet; a model with a production is left to `ml-platform release`."""
    from ml_platform.defs.release import record_release, release_decision, report_events
    from ml_platform.keys import PRODUCTION
    from ml_platform.stores.registry import Store
    from ml_platform.stores.release import alias_version, start_release

    store = Store.from_paths(paths)
    production = alias_version(store, spec.name, PRODUCTION)
    if production is not None:
        return f"production is v{production}; release a newer champion with `ml-platform release {spec.name} start`"
    move = start_release(store, spec, None, None, False, "ml-platform demo")
    report_events(record_release(paths, spec, release_decision(spec, move, "first release by the demo", "demo")))
    return move.note
