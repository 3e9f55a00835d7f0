"""One trained champion for the sensor tests, and per test a fresh home that holds its training snapshot.

Training a champion through the real graph costs seconds; every sensor test needs one but none
changes it. So the package trains it once, and each test gets its own platform home (its own landing
folder, ledger and snapshot copy) and its own Dagster instance, on the shared MLflow store.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from growth.conversion.demo_data import generate

from ml_platform.defs.decisions import decisions_definitions
from ml_platform.defs.factory import model_definitions
from ml_platform.defs.triggers import trigger_definitions
from ml_platform.rules.spec import ModelSpec
from ml_platform.settings import PlatformPaths
from ml_platform.stores.ledger import Ledger
from ml_platform.stores.registry import Store
from ml_platform_tests.harness import Platform, failure_messages, unique_spec
from ml_platform_tests.models import CONVERSION

FAST = {"max_iter": 60, "learning_rate": 0.15, "max_leaf_nodes": 31, "early_stopping": False, "random_state": 42}
TRAINING_FILE = "export.csv"


@dataclass
class Champion:
    spec: ModelSpec
    home: Path
    store: Store


@pytest.fixture(scope="package")
def champion(tmp_path_factory, mlflow_store) -> Champion:
    """A conversion champion (version 1) trained on 3,000 rows, once for every sensor test module."""
    root = tmp_path_factory.mktemp("champion")
    spec = unique_spec(CONVERSION, params=FAST)
    (root / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        platform = Platform(spec, PlatformPaths(root / "home"), instance, mlflow_store)
        platform.land(generate(3000, seed=1), TRAINING_FILE)
        result = platform.materialize()
        assert result.success, failure_messages(result)
    return Champion(spec, root / "home", mlflow_store)


@dataclass
class Watcher:
    """A test's platform home, with the champion's training file already in its landing folder."""

    spec: ModelSpec
    paths: PlatformPaths
    instance: dg.DagsterInstance
    store: Store

    @property
    def landing(self) -> Path:
        return self.spec.landing_path(self.paths.home)

    @property
    def ledger(self) -> Ledger:
        return Ledger.for_home(self.paths.home)

    def land(self, frame, name: str, sep: str = ",") -> Path:
        path = self.landing / name
        frame.to_csv(path, index=False, sep=sep)
        return path

    def definitions(self) -> dg.Definitions:
        platform = Platform(self.spec, self.paths, self.instance, self.store)
        return dg.Definitions.merge(
            model_definitions(self.spec),
            decisions_definitions(self.spec),
            trigger_definitions(self.spec),
            dg.Definitions(resources=platform.resources()),
        )

    def tick(self, sensor: str, cursor: str | None = None):
        """One evaluation of the named sensor, as the daemon would run it."""
        defs = self.definitions()
        name = f"{self.spec.dagster_name}_{sensor}"
        context = dg.build_sensor_context(
            instance=self.instance, cursor=cursor, definitions=defs, sensor_name=name, resources=defs.resources
        )
        return defs.resolve_sensor_def(name).evaluate_tick(context)


@pytest.fixture
def watcher(champion, tmp_path, instance):
    """Make a watcher for the trained champion, with monitoring overrides (and other spec fields changed)."""

    def make(spec_changes: dict | None = None, **monitoring) -> Watcher:
        home = tmp_path / "home"
        if not home.exists():
            shutil.copytree(champion.home / "snapshots", home / "snapshots")
            (home / "landing" / champion.spec.name).mkdir(parents=True)
            shutil.copy2(
                champion.home / "landing" / champion.spec.name / TRAINING_FILE,
                home / "landing" / champion.spec.name / TRAINING_FILE,
            )
        monitored = champion.spec.monitoring.model_copy(update=monitoring)
        spec = champion.spec.model_copy(update={"monitoring": monitored, **(spec_changes or {})})
        return Watcher(spec, PlatformPaths(home), instance, champion.store)

    return make
