"""The ``ml-platform`` command: demo data, gated runs and the evidence chain of a registered model.

Exit codes mean one thing each: 0 passed; 1 a gate stopped the run (the evidence is printed);
2 usage or configuration error; 3 infrastructure error worth a retry. Heavy imports happen inside
the commands so that ``ml-platform --help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_PASSED, EXIT_GATE_FAILED, EXIT_USAGE, EXIT_INFRASTRUCTURE = 0, 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args)
    except ValueError as error:  # a bad model name, an unknown model, a bad option value
        print(f"ml-platform: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:
        from ml_platform.errors import is_transient

        if not is_transient(error):
            raise
        # A store that cannot be reached before any run starts (Postgres down, MLflow server away):
        # worth a retry, and nothing was written. The message is the driver's, never the URL with its password.
        from ml_platform.settings import redact_secrets

        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        first_line = redact_secrets(first_line)  # MLflow's message carries the URL, password included
        print(
            f"ml-platform: infrastructure error, nothing was run or written: {type(error).__name__}: {first_line}",
            file=sys.stderr,
        )
        return EXIT_INFRASTRUCTURE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ml-platform",
        description="Gated model lifecycles on Dagster and MLflow. "
        "State lives in $ML_PLATFORM_HOME (default ./.ml_platform).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

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

    dev = commands.add_parser("dev", help="start the Dagster UI (dagster dev) on workspace.yaml and this platform home")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(handler=_dev)

    mlflow_ui = commands.add_parser("mlflow-ui", help="start MLflow's UI on this platform home's store")
    mlflow_ui.add_argument("--port", type=int, default=5000)
    mlflow_ui.set_defaults(handler=_mlflow_ui)

    demo = commands.add_parser("demo", help="demo data for every model, a gated run of each, and a summary")
    demo.set_defaults(handler=_demo)

    from ml_platform.cli.commands import register_all

    register_all(commands)
    return parser


def _demo_data(args: argparse.Namespace) -> int:
    from ml_platform.demo import write_demo_data, write_feedback, write_scoring_batch

    if sum((args.drift, args.scoring, args.feedback)) > 1:
        raise ValueError("--drift, --scoring and --feedback each write a different file: choose one")
    if args.degraded and not args.feedback:
        raise ValueError("--degraded changes the outcomes that --feedback writes: add --feedback")
    if args.scoring:
        print(f"wrote {write_scoring_batch(args.model, args.rows, args.seed, args.format)}")
        return EXIT_PASSED
    if args.feedback:
        print(f"wrote {write_feedback(args.model, args.rows, args.seed, args.degraded, args.format)}")
        return EXIT_PASSED
    path = write_demo_data(args.model, rows=args.rows, seed=args.seed, file_format=args.format, drift=args.drift)
    print(f"wrote {path}")
    return EXIT_PASSED


def _run(args: argparse.Namespace) -> int:
    from ml_platform.runner import print_outcome, run_model

    outcome = run_model(args.model)
    print_outcome(outcome)
    return outcome.exit_code


def _explain(args: argparse.Namespace) -> int:
    from ml_platform.runner import explain

    try:
        print(explain(args.model, args.version))
    except LookupError as error:
        print(f"ml-platform: {error}", file=sys.stderr)
        return EXIT_GATE_FAILED
    return EXIT_PASSED


def _dev(args: argparse.Namespace) -> int:
    import os

    from ml_platform.runner import ensure_mlflow_store
    from ml_platform.settings import PROJECT_ROOT, PlatformPaths, ensure_dagster_home, redacted

    paths = PlatformPaths.from_environment()
    os.environ["ML_PLATFORM_HOME"] = str(paths.home)
    ensure_dagster_home(paths)
    ensure_mlflow_store(paths)
    print(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']}  MLflow: {redacted(paths.tracking_uri)}")
    os.chdir(PROJECT_ROOT)
    os.execvp("dagster", ["dagster", "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(args.port)])


def _mlflow_ui(args: argparse.Namespace) -> int:
    import os

    from ml_platform.settings import PlatformPaths

    paths = PlatformPaths.from_environment()
    paths.home.mkdir(parents=True, exist_ok=True)
    os.execvp(
        "mlflow",
        [
            "mlflow",
            "ui",
            "--backend-store-uri",
            paths.tracking_uri,
            "--default-artifact-root",
            paths.artifact_root,
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port),
        ],
    )


def _demo(args: argparse.Namespace) -> int:
    from ml_platform.demo import write_demo_data
    from ml_platform.models import SPECS
    from ml_platform.runner import print_outcome, run_model

    worst = EXIT_PASSED
    outcomes = []
    for spec in SPECS:
        print(f"wrote {write_demo_data(spec.name)}")
        outcome = run_model(spec.name)
        outcomes.append(outcome)
        worst = max(worst, outcome.exit_code)
    print()
    for outcome in outcomes:
        print_outcome(outcome)
    print(f"\nDagster UI: make dev    MLflow UI: make mlflow-ui    state: {Path.cwd() / '.ml_platform'}")
    return worst

