"""`ml-platform` sub-commands for a model's lifecycle on this machine: demo data, a gated run, the demo,
the evidence chain of a registered version, and a run's full log (platform-owned)."""

from __future__ import annotations

import argparse
import sys

from ml_platform.cli.exit_codes import ExitCode


def register(commands) -> None:
    """Add this group's sub-parsers to ``commands``."""
    demo_data = commands.add_parser("demo-data", help="write seeded demo landing data for a model")
    demo_data.add_argument("model")
    demo_data.add_argument("--rows", type=int, default=None, help="rows to generate (default: the model's demo size)")
    demo_data.add_argument("--seed", type=int, default=0)
    demo_data.add_argument("--format", choices=("csv", "parquet"), default="csv")
    demo_data.add_argument(
        "--drift", action="store_true", help="write a shifted batch (a campaign: prices, discounts, apac's share move)"
    )
    demo_data.add_argument(
        "--scoring",
        action="store_true",
        help="write a scoring batch (a day of sessions, no label) into <home>/scoring/<model>/ instead",
    )
    demo_data.add_argument(
        "--feedback",
        action="store_true",
        help="write the outcomes (key and label) of the scoring batch of the same --seed/--rows into "
        "<home>/feedback/<model>/",
    )
    demo_data.add_argument(
        "--degraded",
        action="store_true",
        help="with --feedback: outcomes from a changed market, so the champion's live metric drops",
    )
    demo_data.set_defaults(handler=_demo_data)

    run = commands.add_parser("run", help="materialize a model's graph with every gate, on the configured instance")
    run.add_argument("model")
    run.set_defaults(handler=_run)

    explain = commands.add_parser(
        "explain", help="the evidence chain of a registered version, alias to source file hashes"
    )
    explain.add_argument("model")
    explain.add_argument("--version", default=None, help="a registered version (default: the champion)")
    explain.set_defaults(handler=_explain)

    demo = commands.add_parser(
        "demo", help="demo data for every model with a generator, a gated run of each, and a summary"
    )
    demo.set_defaults(handler=_demo)

    rerun = commands.add_parser(
        "rerun",
        help="re-execute a failed run of a model's job from its failed steps (the UI's 'Re-execute from failure')",
    )
    rerun.add_argument("run_id", metavar="RUN_ID")
    rerun.set_defaults(handler=_rerun)

    logs = commands.add_parser(
        "logs", help="a Dagster run's whole event log, stack traces included (the summaries leave them out)"
    )
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.set_defaults(handler=_logs)


def _demo_data(args: argparse.Namespace) -> int:
    from ml_platform.demo import write_demo_data, write_feedback, write_scoring_batch

    if sum((args.drift, args.scoring, args.feedback)) > 1:
        raise ValueError("--drift, --scoring and --feedback each write a different file: choose one")
    if args.degraded and not args.feedback:
        raise ValueError("--degraded changes the outcomes that --feedback writes: add --feedback")
    if args.scoring:
        print(f"wrote {write_scoring_batch(args.model, args.rows, args.seed, args.format)}")
        return ExitCode.PASSED
    if args.feedback:
        print(f"wrote {write_feedback(args.model, args.rows, args.seed, args.degraded, args.format)}")
        return ExitCode.PASSED
    path = write_demo_data(args.model, rows=args.rows, seed=args.seed, file_format=args.format, drift=args.drift)
    print(f"wrote {path}")
    return ExitCode.PASSED


def run_lifecycle(model: str, report, paths=None) -> None:
    """Materialize ``<model>_lifecycle`` in this process and add the champion it leaves to ``report``."""
    from ml_platform.cli.execution import execute
    from ml_platform.discovery import get_spec
    from ml_platform.keys import ModelKeys
    from ml_platform.settings import PlatformPaths

    spec = get_spec(model)
    paths = paths or PlatformPaths.from_environment()
    report.absorb(execute(spec, ModelKeys(spec.name).lifecycle_job, paths=paths))
    report.outputs["champion"] = _champion(spec.name, paths)


def _champion(model: str, paths) -> str:
    from ml_platform.keys import REGISTRY_TAG
    from ml_platform.stores.registry import Store, current_champion

    try:
        champion = current_champion(Store.from_paths(paths), model)
    except Exception as error:  # the summary must not hide the run's outcome behind a registry error
        return f"unknown ({type(error).__name__}: {error})"
    if champion is None:
        return "none yet"
    return f"version {champion.version} (snapshot {champion.tags.get(f'{REGISTRY_TAG}snapshot_id', '?')[:12]})"


def _run(args: argparse.Namespace) -> int:
    from ml_platform.cli.report import run_command

    return run_command("run", args.model, lambda report: run_lifecycle(args.model, report))


def _rerun(args: argparse.Namespace) -> int:
    from ml_platform.cli.execution import reexecute_from_failure
    from ml_platform.cli.report import run_command

    def body(report) -> None:
        outcome = reexecute_from_failure(args.run_id)
        report.model = outcome.model
        report.absorb(outcome)
        report.outputs["reexecuted"] = args.run_id

    return run_command("rerun", args.run_id, body)


def _demo(args: argparse.Namespace) -> int:
    """Demo data and a gated run for every model that names a generator; the others are skipped, with why.

    Each champion the demo makes is released at once (its first release), so a demo home is servable.
    """
    from ml_platform.cli.commands.release import first_release
    from ml_platform.cli.report import collect, print_report
    from ml_platform.discovery import declared_models
    from ml_platform.settings import PlatformPaths

    paths = PlatformPaths.from_environment()
    reports, skipped = [], []
    for name, model in declared_models().items():
        reason = _demo_data_for(name, model, paths)
        if reason:
            skipped.append(f"{name} ({model.location}): {reason}")
            continue
        reports.append(collect("run", name, lambda report, name=name: run_lifecycle(name, report, paths)))
        if reports[-1].exit_code == ExitCode.PASSED:  # servable at once: the champion's first release
            reports[-1].outputs["release"] = first_release(model.spec, paths)
    print()
    for report in reports:
        print_report(report)
    for line in skipped:
        print(f"== skipped {line}")
    print(f"\nDagster UI: make dev    MLflow UI: make mlflow-ui    state: {paths.home}")
    if not reports:
        return ExitCode.USAGE
    return max(int(report.exit_code) for report in reports)


def _demo_data_for(name: str, model, paths) -> str:
    """Write the model's demo landing file; why not, when it cannot (the demo then skips the model)."""
    from ml_platform.demo import write_demo_data

    if model.spec.demo_data is None:
        return "names no demo-data generator (demo_data in its declaration)"
    try:
        print(f"wrote {write_demo_data(name, paths=paths)}")
    except (ValueError, ImportError) as error:
        return f"its demo-data generator failed: {error}"
    return ""


def _explain(args: argparse.Namespace) -> int:
    from ml_platform.cli.explain import explain

    try:
        print(explain(args.model, args.version))
    except LookupError as error:  # no champion, or no such version: what the registry holds, not a typo
        print(f"ml-platform: {error}", file=sys.stderr)
        return ExitCode.GATE_FAILED
    return ExitCode.PASSED


def _logs(args: argparse.Namespace) -> int:
    """Print every event of a run as Dagster stored it, with each error's stack trace."""
    import dagster as dg

    from ml_platform.settings import PlatformPaths, ensure_dagster_home

    paths = PlatformPaths.from_environment()
    ensure_dagster_home(paths)
    with dg.DagsterInstance.get() as instance:
        if instance.get_run_by_id(args.run_id) is None:
            raise LookupError(f"no Dagster run {args.run_id!r} in the instance at {paths.dagster_home}")
        for entry in instance.all_logs(args.run_id):
            print(_log_line(entry))
    return ExitCode.PASSED


def _log_line(entry) -> str:
    import logging
    from datetime import UTC, datetime

    event = entry.dagster_event
    parts = [
        datetime.fromtimestamp(entry.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        logging.getLevelName(entry.level),
        entry.step_key,
        event.event_type_value if event else None,
        entry.user_message,
    ]
    line = " - ".join(str(part) for part in parts if part)
    error = getattr(event.event_specific_data, "error", None) if event else None
    return f"{line}\n{error.to_string()}" if error is not None else line
