"""Helpers for a team's own tests: run a model's gates on a frame, on a throwaway platform (platform-owned).

A team tests its declaration the way the platform runs it: the frame lands, and the model's whole graph
(data gates, feature contract, training, model gates, registry) is materialized in process on a
temporary Dagster instance and a temporary MLflow SQLite store under ``folder``. Nothing is mocked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ml_platform.rules.spec import ModelSpec


@dataclass(frozen=True)
class GateRun:
    """What one run of a model's graph decided."""

    success: bool
    gates: dict[str, bool]
    materialized: tuple[str, ...]
    failures: tuple[str, ...]

    @property
    def failed_gates(self) -> list[str]:
        return sorted(name for name, passed in self.gates.items() if not passed)


def declared_spec(path: Path) -> ModelSpec:
    """The spec a team's ``defs.yaml`` declares, validated as the platform validates it."""
    from ml_platform.discovery import load_declaration

    return load_declaration(Path(path))


def run_gates(spec: ModelSpec, frame, folder: Path) -> GateRun:
    """Land ``frame`` as the model's only landing file and run its lifecycle (what ``ml-platform run`` runs)."""
    import dagster as dg

    from ml_platform.components.model import model_definitions
    from ml_platform.defs.resources import MlflowStore, PlatformHome
    from ml_platform.keys import LIFECYCLE_ASSETS, ModelKeys
    from ml_platform.settings import PlatformPaths

    home = Path(folder) / "home"
    landing = spec.landing_path(home)
    landing.mkdir(parents=True, exist_ok=True)
    for old in landing.iterdir():
        old.unlink()
    frame.to_csv(landing / "export.csv", index=False)
    store = f"sqlite:///{home / 'mlflow.db'}"
    resources = {
        "platform": PlatformHome(home=str(home)),
        "mlflow": MlflowStore(tracking_uri=store, registry_uri=store, artifact_root=(home / "mlartifacts").as_uri()),
    }
    definitions = model_definitions(spec, PlatformPaths(home))
    keys = [ModelKeys(spec.name).asset(name) for name in LIFECYCLE_ASSETS]
    (home / "dagster").mkdir(exist_ok=True)
    with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
        result = dg.materialize(
            [*definitions.assets, *definitions.asset_checks],
            instance=instance,
            resources=resources,
            selection=dg.AssetSelection.assets(*keys) | dg.AssetSelection.checks_for_assets(*keys),
            raise_on_error=False,
        )
    return GateRun(
        success=result.success,
        gates={e.check_name: e.passed for e in result.get_asset_check_evaluations()},
        materialized=tuple(e.asset_key.path[-1] for e in result.get_asset_materialization_events()),
        failures=tuple(_failure(event) for event in result.get_step_failure_events()),
    )


def _failure(event) -> str:
    data = event.step_failure_data
    if data.user_failure_data and data.user_failure_data.description:
        return f"{event.step_key}: {data.user_failure_data.description}"
    return f"{event.step_key}: {data.error.message if data.error else 'failed'}"
