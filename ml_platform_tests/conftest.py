"""Shared fixtures: real Dagster instances and one real MLflow store per session."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from ml_platform.settings import PlatformPaths
from ml_platform.stores.registry import Store
from ml_platform_tests.harness import Platform, unique_spec
from ml_platform_tests.models import CONVERSION, IRIS

os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="session")
def mlflow_store(tmp_path_factory) -> Store:
    """One MLflow tracking + registry store on SQLite, migrated once, with local artifacts."""
    root = tmp_path_factory.mktemp("mlflow")
    store = Store(f"sqlite:///{root / 'mlflow.db'}", f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri())
    store.client().search_experiments()  # create and migrate the schema once, before any test uses it
    return store


@pytest.fixture
def platform_home(tmp_path: Path, monkeypatch) -> PlatformPaths:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ML_PLATFORM_HOME", str(home))
    return PlatformPaths(home)


@pytest.fixture
def instance(tmp_path: Path):
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        yield instance


def _platform(base, platform_home, instance, mlflow_store, **overrides) -> Platform:
    return Platform(unique_spec(base, **overrides), platform_home, instance, mlflow_store)


@pytest.fixture
def conversion(platform_home, instance, mlflow_store) -> Platform:
    """The conversion model under a test-unique name, on a fresh home and instance."""
    return _platform(CONVERSION, platform_home, instance, mlflow_store)


@pytest.fixture
def iris(platform_home, instance, mlflow_store) -> Platform:
    return _platform(IRIS, platform_home, instance, mlflow_store)


@pytest.fixture
def make_platform(platform_home, instance, mlflow_store):
    """A platform for a spec built from a shipped one with overrides (thresholds, rules)."""

    def make(base=CONVERSION, **overrides) -> Platform:
        return _platform(base, platform_home, instance, mlflow_store, **overrides)

    return make
