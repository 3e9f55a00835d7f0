"""Where the platform keeps its state, resolved from the environment (platform-owned).

One folder holds everything on the embedded default, so a user can see, back up or delete it whole:

    <home>/landing/<model>/      landing files a team drops in (CSV, Parquet)
    <home>/snapshots/<model>/    immutable, content-addressed dataset snapshots
    <home>/features/<model>/     validated feature frames with their recorded split
    <home>/scoring/<model>/      scoring batches to predict (the raw contract without the label)
    <home>/inference/<model>/    the inference log: every batch's predictions with the model version
    <home>/feedback/<model>/     labelled outcomes of past predictions (key + label)
    <home>/mlflow.db             MLflow tracking and registry (SQLite)
    <home>/mlartifacts/          MLflow artifacts
    <home>/dagster/              DAGSTER_HOME: runs, events, asset checks (SQLite)

``ML_PLATFORM_HOME`` moves the folder; ``MLFLOW_TRACKING_URI``, ``MLFLOW_REGISTRY_URI`` and
``DAGSTER_HOME`` keep their usual meaning and win over the derived defaults. Reading the environment
is all this module does at import time.

``ML_PLATFORM_POSTGRES_URL`` (``postgresql://user:password@host:port/database``) moves both stores to
PostgreSQL: Dagster's runs, events and schedules in the database's default schema, MLflow's tracking
and registry in its schema ``mlflow`` (the two both have a ``runs`` table). SQLite stays the default.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_HOME = ".ml_platform"
POSTGRES_URL_VARIABLE = "ML_PLATFORM_POSTGRES_URL"
# Derived from it by ensure_dagster_home, with the driver named; the instance config reads this one.
DAGSTER_POSTGRES_URL_VARIABLE = "ML_PLATFORM_DAGSTER_POSTGRES_URL"
MLFLOW_SCHEMA = "mlflow"


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

    def scoring(self, model: str) -> Path:
        return self.home / "scoring" / model

    def inference(self, model: str) -> Path:
        return self.home / "inference" / model

    def feedback(self, model: str) -> Path:
        return self.home / "feedback" / model

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.home / "dagster").expanduser().resolve()

    @property
    def postgres_url(self) -> str | None:
        return os.environ.get(POSTGRES_URL_VARIABLE) or None

    @property
    def tracking_uri(self) -> str:
        if os.environ.get("MLFLOW_TRACKING_URI"):
            return os.environ["MLFLOW_TRACKING_URI"]
        if self.postgres_url:
            return with_search_path(sqlalchemy_url(self.postgres_url), MLFLOW_SCHEMA)
        return f"sqlite:///{self.home / 'mlflow.db'}"

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
    so a user's edited instance config survives. With ``ML_PLATFORM_POSTGRES_URL`` set, a new home gets
    that config with Dagster's storage on PostgreSQL instead, and MLflow's schema is created.
    """
    home = paths.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    target = home / "dagster.yaml"
    source = PROJECT_ROOT / "dagster.yaml"
    if paths.postgres_url:
        ensure_postgres_schema(paths.postgres_url, MLFLOW_SCHEMA)
        os.environ[DAGSTER_POSTGRES_URL_VARIABLE] = sqlalchemy_url(paths.postgres_url)
        if not target.exists():
            target.write_text(postgres_instance_yaml(source))
    elif not target.exists() and source.exists():
        shutil.copyfile(source, target)
    return home


def postgres_instance_yaml(default: Path) -> str:
    """The embedded instance config with Dagster's storage on ``ML_PLATFORM_POSTGRES_URL``.

    The URL is read from the environment when the instance loads: the password never reaches the file.
    (``ensure_dagster_home`` derives the variable it names from ``ML_PLATFORM_POSTGRES_URL``.)
    """
    import yaml

    config = yaml.safe_load(default.read_text()) if default.exists() else {}
    config.pop("storage", None)  # the embedded SQLite storage is what this replaces
    body = yaml.safe_dump(config, sort_keys=False) if config else ""
    return (
        f"# Written from {default.name} by ml-platform.\n{body.rstrip()}\n"
        f"# Written because {POSTGRES_URL_VARIABLE} was set: runs, events and schedules in PostgreSQL.\n"
        f"storage:\n  postgres:\n    postgres_url:\n      env: {DAGSTER_POSTGRES_URL_VARIABLE}\n"
    )


def sqlalchemy_url(url: str) -> str:
    """The URL with its driver named: SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, which
    is not installed; dagster-postgres and MLflow use psycopg2."""
    parts = urlsplit(url)
    if parts.scheme in ("postgres", "postgresql"):
        parts = parts._replace(scheme="postgresql+psycopg2")
    return urlunsplit(parts)


def with_search_path(url: str, schema: str) -> str:
    """The same database URL, with ``schema`` first on the connection's search path (libpq ``options``)."""
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urlunsplit(parts._replace(query=urlencode(query)))


def ensure_postgres_schema(url: str, schema: str) -> None:
    """Create ``schema`` in the URL's database if it is missing (MLflow creates tables, not schemas)."""
    import psycopg2
    from psycopg2 import sql

    dsn = urlunsplit(urlsplit(url)._replace(scheme="postgresql"))
    connection = psycopg2.connect(dsn)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    finally:
        connection.close()


def redacted(uri: str) -> str:
    """A store address fit for logs and terminals: any password in it replaced by ``***``."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


_PASSWORD_IN_URL = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*):[^@/?#\s]+@")


def redact_secrets(text: str) -> str:
    """Any text (an error message, a log line) with the password of every URL in it replaced by ``***``.

    HTTP and database clients echo the address they failed to reach, credentials included: MLflow says
    "API request to http://user:password@host/api/... failed". Such a message must not reach a terminal,
    a CI log or an evidence file as it is.
    """
    return _PASSWORD_IN_URL.sub(r"\g<head>:***@", text)
