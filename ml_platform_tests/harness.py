"""Test harness: a platform home, a real Dagster instance and a real MLflow store, per test.

Each test gets its own model name (so its MLflow registered model and folders are its own) while the
MLflow SQLite store is created once per session: creating and migrating it costs seconds, and a
registered model per test isolates tests just as well.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd

from ml_platform.defs.factory import model_definitions
from ml_platform.defs.resources import MlflowStore, PlatformHome
from ml_platform.keys import ModelKeys
from ml_platform.rules.spec import ModelSpec
from ml_platform.settings import PlatformPaths
from ml_platform.stores.registry import Store

_counter = itertools.count()


@dataclass
class Platform:
    """One test's view of the platform: its spec, folders, instance and MLflow store."""

    spec: ModelSpec
    paths: PlatformPaths
    instance: dg.DagsterInstance
    store: Store

    @property
    def keys(self) -> ModelKeys:
        return ModelKeys(self.spec.name)

    @property
    def landing(self) -> Path:
        return self.spec.landing_path(self.paths.home)

    def land(self, frame: pd.DataFrame, name: str = "export.csv", replace: bool = True) -> Path:
        """Drop a landing file, as an export job would; by default it replaces what landed before."""
        self.landing.mkdir(parents=True, exist_ok=True)
        if replace:
            for old in self.landing.iterdir():
                old.unlink()
        path = self.landing / name
        if name.endswith(".csv"):
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path, index=False)
        return path

    def resources(self) -> dict:
        """The platform's resources on this test's home and the session's MLflow store.

        Built anew rather than copied: a ConfigurableResource's run-time config comes from its
        constructor arguments, and pydantic's ``model_copy(update=...)`` does not reach it.
        """
        return {
            "platform": PlatformHome(home=str(self.paths.home)),
            "mlflow": MlflowStore(
                tracking_uri=self.store.tracking_uri,
                registry_uri=self.store.registry_uri,
                artifact_root=self.store.artifact_root,
            ),
        }

    def materialize(self, *asset_names: str) -> dg.ExecuteInProcessResult:
        """Materialize the model's graph (or only the named assets) with their checks, in process."""
        defs = model_definitions(self.spec)
        selection = None
        if asset_names:
            keys = [self.keys.asset(name) for name in asset_names]
            selection = dg.AssetSelection.assets(*keys) | dg.AssetSelection.checks_for_assets(*keys)
        return dg.materialize(
            [*defs.assets, *defs.asset_checks],
            instance=self.instance,
            resources=self.resources(),
            selection=selection,
            raise_on_error=False,
        )


def unique_spec(base: ModelSpec, **overrides) -> ModelSpec:
    """The base spec under a fresh name (its own registry entry and folders), with overrides."""
    name = f"{base.name}-t{os.getpid()}-{next(_counter)}"
    return base.model_copy(update={"name": name, **overrides})


def check_results(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    return sorted(name for name, evaluation in check_results(result).items() if not evaluation.passed)


def materialized(result: dg.ExecuteInProcessResult) -> list[str]:
    return sorted(event.asset_key.path[-1] for event in result.get_asset_materialization_events())


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's description, as a user would read it in the run log."""
    lines = []
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data and data.user_failure_data.description:
            lines.append(data.user_failure_data.description)
        elif data.error:
            lines.append(data.error.message)
    return "\n".join(lines)


def declare_only(monkeypatch, *specs: ModelSpec) -> None:
    """Make the CLI and the demo find exactly ``specs``, as if they were the workspace's only declarations."""
    from ml_platform import discovery

    declared = {spec.name: discovery.DeclaredModel(spec, "tests", Path(__file__)) for spec in specs}
    monkeypatch.setattr(discovery, "declared_models", lambda workspace=None: declared)
