"""Resources: where the platform home and the MLflow store are, as typed Dagster config."""

import os
from pathlib import Path

import dagster as dg

from ml_platform.settings import PlatformPaths, redacted
from ml_platform.stores.registry import Store


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
            tracking_uri=_unshown(paths.tracking_uri, "ML_PLATFORM_RESOLVED_TRACKING_URI"),
            registry_uri=_unshown(paths.registry_uri, "ML_PLATFORM_RESOLVED_REGISTRY_URI"),
            artifact_root=_unshown(paths.artifact_root, "ML_PLATFORM_RESOLVED_ARTIFACT_ROOT"),
        ),
    }


def _unshown(value: str, variable: str) -> str | dg.EnvVar:
    """A store address that carries a password, handed to Dagster as the name of a variable holding it.

    Dagster's webserver shows every resource's configured values to anyone who can open it (the
    Resources page, the launchpad's defaults); an ``EnvVar`` shows only its name and is read when a
    run starts. Every process that loads the definitions derives the same value here.
    """
    if redacted(value) == value:
        return value
    os.environ[variable] = value
    return dg.EnvVar(variable)
