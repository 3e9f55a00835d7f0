"""Where the platform keeps its state, resolved from the environment (platform-owned).

One folder holds everything on the embedded default, so a user can see, back up or delete it whole:

    <home>/landing/<model>/      landing files a team drops in (CSV, Parquet)
    <home>/snapshots/<model>/    immutable, content-addressed dataset snapshots
    <home>/features/<model>/     validated feature frames with their recorded split
    <home>/mlflow.db             MLflow tracking and registry (SQLite)
    <home>/mlartifacts/          MLflow artifacts
    <home>/dagster/              DAGSTER_HOME: runs, events, asset checks (SQLite)

``ML_PLATFORM_HOME`` moves the folder; ``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI`` and
``DAGSTER_HOME`` keep their usual meaning and win over the derived defaults. Reading the environment
is all this module does at import time.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOME = ".ml_platform"


@dataclass(frozen=True)
class PlatformPaths:
    """The folders and store addresses of one platform home."""

    home: Path

    @classmethod
    def from_environment(cls) -> PlatformPaths:
        return cls(Path(os.environ.get("ML_PLATFORM_HOME", DEFAULT_HOME)).expanduser().resolve())

    def landing(self, model: str) -> Path:
        return self.home / "landing" / model

    def snapshots(self, model: str) -> Path:
        return self.home / "snapshots" / model

    def features(self, model: str) -> Path:
        return self.home / "features" / model

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.home / "dagster").expanduser().resolve()

    @property
    def tracking_uri(self) -> str:
        return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def registry_uri(self) -> str:
        return os.environ.get("MLFLOW_REGISTRY_URI") or self.tracking_uri

    @property
    def artifact_root(self) -> str:
        return os.environ.get("ML_PLATFORM_ARTIFACT_ROOT") or (self.home / "mlartifacts").as_uri()


def ensure_dagster_home(paths: PlatformPaths) -> Path:
    """Point DAGSTER_HOME at the platform home and give it the project's instance config.

    Dagster refuses to start a persistent instance without DAGSTER_HOME. The repository's top-level
    ``dagster.yaml`` is the embedded default (SQLite, telemetry off); it is copied, never overwritten,
    so a user's edited instance config survives.
    """
    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    target = home / "dagster.yaml"
    source = PROJECT_ROOT / "dagster.yaml"
    if not target.exists() and source.exists():
        shutil.copyfile(source, target)
    return home
