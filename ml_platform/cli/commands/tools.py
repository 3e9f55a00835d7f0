"""`ml-platform dev` and `ml-platform mlflow-ui`: the Dagster and MLflow UIs on this platform home (platform-owned).

Each starts the tool installed beside the Python that runs ``ml-platform``, so ``.venv/bin/ml-platform dev``
works without the environment's ``bin/`` on PATH; PATH is the fallback for an install without one.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn


def register(commands) -> None:
    """Add this group's sub-parsers to ``commands``."""
    dev = commands.add_parser("dev", help="start the Dagster UI (dagster dev) on workspace.yaml and this platform home")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(handler=_dev)

    mlflow_ui = commands.add_parser("mlflow-ui", help="start MLflow's UI on this platform home's store")
    mlflow_ui.add_argument("--port", type=int, default=5000)
    mlflow_ui.set_defaults(handler=_mlflow_ui)


def find_tool(name: str) -> Path:
    """The executable ``name`` of the environment running this command, else the first one on PATH.

    Raises:
        ValueError: neither has it (a usage error: the environment is incomplete).
    """
    import shutil

    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which(name)
    if found is None:
        raise ValueError(
            f"{name!r} is not installed beside {sys.executable} nor on PATH: "
            "install the platform's environment (`make env`) and run `.venv/bin/ml-platform`"
        )
    return Path(found)


def _exec(tool: Path, *arguments: str) -> NoReturn:
    """Replace this process with ``tool``; the tool's folder goes first on PATH for the processes it starts."""
    os.environ["PATH"] = os.pathsep.join([str(tool.parent), os.environ.get("PATH", "")])
    os.execv(tool, [tool.name, *arguments])


def _dev(args: argparse.Namespace) -> NoReturn:
    from ml_platform.settings import (
        PROJECT_ROOT,
        PlatformPaths,
        ensure_dagster_home,
        redacted,
    )
    from ml_platform.stores.registry import ensure_mlflow_store

    dagster = find_tool("dagster")
    paths = PlatformPaths.from_environment()
    os.environ["ML_PLATFORM_HOME"] = str(paths.home)
    ensure_dagster_home(paths)
    ensure_mlflow_store(paths)
    print(f"DAGSTER_HOME={os.environ['DAGSTER_HOME']}  MLflow: {redacted(paths.tracking_uri)}", flush=True)
    os.chdir(PROJECT_ROOT)
    _exec(dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(args.port))


def _mlflow_ui(args: argparse.Namespace) -> NoReturn:
    from ml_platform.settings import PlatformPaths

    mlflow = find_tool("mlflow")
    paths = PlatformPaths.from_environment()
    paths.home.mkdir(parents=True, exist_ok=True)
    _exec(
        mlflow,
        "ui",
        "--backend-store-uri",
        paths.tracking_uri,
        "--default-artifact-root",
        paths.artifact_root,
        "--host",
        "127.0.0.1",
        "--port",
        str(args.port),
    )
