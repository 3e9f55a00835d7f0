"""The end-to-end suite on both backends: embedded SQLite, and PostgreSQL when a server is given.

With ``ML_PLATFORM_TEST_POSTGRES_URL`` set (``.ci/run`` starts a server and sets it), the main
lifecycle scenario and the CLI scenario run a second time with the Dagster instance on
dagster-postgres and MLflow's tracking and registry on the same PostgreSQL server, each test in a
database of its own. Without it those variants skip, loudly. The other e2e tests run on SQLite only:
they exercise the graph, not the storage, and each costs tens of seconds here.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import pytest

from ml_platform.settings import (
    MLFLOW_SCHEMA,
    POSTGRES_URL_VARIABLE,
    ensure_postgres_schema,
    sqlalchemy_url,
    with_search_path,
)
from ml_platform.stores.registry import Store

TEST_POSTGRES_URL = os.environ.get("ML_PLATFORM_TEST_POSTGRES_URL")
ON_BOTH_BACKENDS = {
    "test_normal_data_promotes_then_a_partial_export_and_a_weaker_candidate_leave_the_champion_alone",
    "test_run_promotes_then_stops_a_partial_export_and_explain_traces_the_champion",
}
NO_POSTGRES = (
    "LOUD SKIP: the PostgreSQL variant did NOT run: ML_PLATFORM_TEST_POSTGRES_URL is not set. "
    ".ci/run starts a server and sets it; here, `source .ci/setup-postgres.sh` first"
)


@dataclass(frozen=True)
class Backend:
    """Where a test's Dagster instance and MLflow store live: ``url`` is its own Postgres database."""

    name: str
    url: str | None = None


def pytest_generate_tests(metafunc):
    if metafunc.function.__name__ in ON_BOTH_BACKENDS:
        metafunc.parametrize(
            "backend",
            ["sqlite", pytest.param("postgres", marks=pytest.mark.skipif(not TEST_POSTGRES_URL, reason=NO_POSTGRES))],
            indirect=True,
        )


def _connect(url: str):
    import psycopg2

    connection = psycopg2.connect(urlunsplit(urlsplit(url)._replace(scheme="postgresql")))
    connection.autocommit = True
    return connection


@pytest.fixture(autouse=True)
def backend(request, monkeypatch) -> Iterator[Backend]:
    """SQLite unless the test is parametrized onto Postgres; then a fresh database, dropped after."""
    name = getattr(request, "param", "sqlite")
    if name == "sqlite":
        monkeypatch.delenv(POSTGRES_URL_VARIABLE, raising=False)
        yield Backend("sqlite")
        return
    database = f"e2e_{uuid.uuid4().hex[:12]}"
    admin = _connect(TEST_POSTGRES_URL)
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{database}"')
        url = urlunsplit(urlsplit(TEST_POSTGRES_URL)._replace(path=f"/{database}"))
        ensure_postgres_schema(url, MLFLOW_SCHEMA)
        # what a user sets: the CLI's instance and MLflow store follow it (ml_platform/settings.py)
        monkeypatch.setenv(POSTGRES_URL_VARIABLE, url)
        yield Backend("postgres", url)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def instance(tmp_path, backend) -> Iterator[dg.DagsterInstance]:
    """A real instance: SQLite in a temporary folder, or dagster-postgres on the test's database."""
    (tmp_path / "dagster").mkdir()
    overrides = {"storage": {"postgres": {"postgres_url": sqlalchemy_url(backend.url)}}} if backend.url else None
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster"), overrides=overrides) as instance:
        if backend.url:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        yield instance


@pytest.fixture
def mlflow_store(mlflow_store, backend, tmp_path) -> Store:
    """The session's SQLite store, or MLflow tracking and registry on the test's Postgres database."""
    if not backend.url:
        return mlflow_store
    uri = with_search_path(sqlalchemy_url(backend.url), MLFLOW_SCHEMA)
    store = Store(uri, uri, (tmp_path / "mlartifacts").as_uri())
    store.client().search_experiments()  # create and migrate the schema before any step runs
    return store
