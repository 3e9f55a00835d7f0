"""ML_PLATFORM_POSTGRES_URL: the embedded platform's stores on PostgreSQL instead of SQLite."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from ml_platform.settings import (
    DAGSTER_POSTGRES_URL_VARIABLE,
    POSTGRES_URL_VARIABLE,
    PlatformPaths,
    ensure_dagster_home,
    sqlalchemy_url,
    with_search_path,
)
from ml_platform_tests.deploy.conftest import POSTGRES_URL

URL = "postgresql://dagster:pw-123@db.internal:5432/platform"


def test_the_driver_is_named_and_mlflow_gets_its_own_schema():
    assert sqlalchemy_url(URL) == "postgresql+psycopg2://dagster:pw-123@db.internal:5432/platform"
    assert sqlalchemy_url("postgresql+psycopg2://u@h/d") == "postgresql+psycopg2://u@h/d"
    assert with_search_path(URL + "?sslmode=require&options=-cfoo%3Dbar", "mlflow") == (
        "postgresql://dagster:pw-123@db.internal:5432/platform?sslmode=require&options=-csearch_path%3Dmlflow"
    )


def test_without_the_url_the_embedded_default_stays_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv(POSTGRES_URL_VARIABLE, raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    paths = PlatformPaths(tmp_path)
    assert paths.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    home = ensure_dagster_home(paths)
    assert "postgres" not in (home / "dagster.yaml").read_text()


@pytest.mark.skipif(
    not POSTGRES_URL,
    reason="LOUD SKIP: ML_PLATFORM_TEST_POSTGRES_URL is not set, so the Postgres instance was NOT created; "
    ".ci/run starts a PostgreSQL server and sets it",
)
def test_with_the_url_a_new_home_gets_postgres_storage_and_no_password_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv(POSTGRES_URL_VARIABLE, POSTGRES_URL)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv(DAGSTER_POSTGRES_URL_VARIABLE, raising=False)
    paths = PlatformPaths(tmp_path)
    assert paths.tracking_uri.startswith("postgresql+psycopg2://") and "search_path%3Dmlflow" in paths.tracking_uri
    home = ensure_dagster_home(paths)
    config = (home / "dagster.yaml").read_text()
    password = POSTGRES_URL.partition("@")[0].rpartition(":")[2]
    assert password not in config and f"env: {DAGSTER_POSTGRES_URL_VARIABLE}" in config
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"


def test_the_postgres_config_replaces_the_embedded_storage_and_keeps_the_rest():
    from ml_platform.settings import PROJECT_ROOT, postgres_instance_yaml

    embedded = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    written = yaml.safe_load(postgres_instance_yaml(PROJECT_ROOT / "dagster.yaml"))

    assert "custom" in embedded["storage"]  # the embedded default's engine-keeping SQLite storage
    assert written["storage"] == {"postgres": {"postgres_url": {"env": DAGSTER_POSTGRES_URL_VARIABLE}}}
    assert written["run_queue"] == embedded["run_queue"] and written["telemetry"] == embedded["telemetry"]
