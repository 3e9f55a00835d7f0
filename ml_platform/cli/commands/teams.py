"""`ml-platform` sub-commands for teams: scaffold a model, list the workspace's models (platform-owned).

    new-model <name> --team <team>   a new model's skeleton in teams/<team>/, registered in workspace.yaml
    models                           every model in the workspace, with the code location that declares it

Models are found in every code location of ``workspace.yaml`` (``ml_platform.discovery``), so a team's
new model needs no platform edit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ml_platform.cli.exit_codes import ExitCode


def register(commands) -> None:
    """Add this group's sub-parsers to ``commands``."""
    new_model = commands.add_parser(
        "new-model", help="scaffold a model (declaration, contract, pipeline, demo data, tests, CI) in a team project"
    )
    new_model.add_argument("name")
    new_model.add_argument("--team", required=True, help="the owning team; a new team gets its own project")
    new_model.add_argument("--root", type=Path, default=None, help="the project root (default: this checkout)")
    new_model.set_defaults(handler=_new_model)

    models = commands.add_parser("models", help="every model in the workspace and the code location declaring it")
    models.set_defaults(handler=_models)


def _new_model(args: argparse.Namespace) -> int:
    from ml_platform.scaffold import new_model

    done = new_model(args.name, args.team, root=args.root)
    root = done.workspace.parent
    for path in done.files:
        print(f"wrote {path.relative_to(root)}")
    if done.new_team:
        print(f"registered code location {args.team!r} in {done.workspace.name}")
    print(
        f"\nnext: ml-platform demo-data {args.name} && ml-platform run {args.name}\n"
        f"      pytest teams/{args.team}/tests    (docs/teams.md: replace the demo contract, pipeline and data)"
    )
    return ExitCode.PASSED


def _models(args: argparse.Namespace) -> int:
    from ml_platform.discovery import declared_models

    declared = declared_models()
    for name, model in sorted(declared.items()):
        demo = "demo data" if model.spec.demo_data else "no demo data"
        print(f"{name:24} {model.location:16} {demo:13} {model.source}")
    if not declared:
        print("no models declared: ml-platform new-model <name> --team <team>", file=sys.stderr)
    return ExitCode.PASSED
