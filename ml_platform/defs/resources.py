"""Resources: where the platform home and the MLflow store are, as typed Dagster config."""

from pathlib import Path

import dagster as dg

from ml_platform.lifecycle.registry import Store
from ml_platform.settings import PlatformPaths


class PlatformHome(dg.ConfigurableResource):
    """The platform's folder: landing files, snapshots and feature frames live under it."""

    home: str

    def paths(self) -> PlatformPaths:
        return PlatformPaths(Path(self.home))


class MlflowStore(dg.ConfigurableResource):
    """MLflow tracking and registry. On the embedded default both are one SQLite file.

    Creating the store's schema is done once, before any step can run, because two processes
    migrating a fresh SQLite store at once fail (see the field notes).
    """

    tracking_uri: str
    registry_uri: str
    artifact_root: str

    def store(self) -> Store:
        return Store(self.tracking_uri, self.registry_uri, self.artifact_root)


def default_resources(paths: PlatformPaths | None = None) -> dict[str, dg.ConfigurableResource]:
    paths = paths or PlatformPaths.from_environment()
    return {
        "platform": PlatformHome(home=str(paths.home)),
        "mlflow": MlflowStore(
            tracking_uri=paths.tracking_uri, registry_uri=paths.registry_uri, artifact_root=paths.artifact_root
        ),
    }
