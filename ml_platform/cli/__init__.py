"""The ``ml-platform`` command: one parser, one execution path, one exit-code enum (platform-owned).

    cli/__init__.py        ``main`` and the parser; each group of sub-commands registers itself
    cli/exit_codes.py      ``ExitCode`` and ``classify``: which code an error earns
    cli/execution.py       ``execute``: a model's job in this process, read back into a ``RunOutcome``
    cli/remote.py          ``execute_remote``: the same on a Dagster deployment (``train --dagster-url``)
    cli/report.py          ``StageReport`` and its one printer (summary, ``--json``, ``--evidence``)
    cli/explain.py         the evidence chain of a registered version
    cli/commands/          lifecycle (demo-data, run, demo, explain, logs), tools (dev, mlflow-ui),
                           decisions (approve, rollback, history), stages (the CI stage commands)

Exit codes mean one thing each: 0 passed; 1 a gate stopped the run (the evidence is printed);
2 usage or configuration error; 3 infrastructure error worth a retry. Heavy imports happen inside
the commands so that ``ml-platform --help`` answers at once.
"""

from __future__ import annotations

import argparse

from ml_platform.cli.exit_codes import ExitCode

__all__ = ["ExitCode", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return ExitCode.USAGE
    try:
        return int(args.handler(args))
    except Exception as error:  # one mapping for every command: ml_platform/cli/exit_codes.py
        from ml_platform.cli.report import fail

        return fail(error)


def _parser() -> argparse.ArgumentParser:
    from ml_platform.cli.commands import register_all

    parser = argparse.ArgumentParser(
        prog="ml-platform",
        description="Gated model lifecycles on Dagster and MLflow. "
        "State lives in $ML_PLATFORM_HOME (default ./.ml_platform).",
    )
    register_all(parser.add_subparsers(dest="command", metavar="COMMAND"))
    return parser
