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

``ML_PLATFORM_SERVER_TIMEOUT`` (seconds, default 10) bounds every wait on a server that accepts a
connection and never answers: each MLflow HTTP request (``MLFLOW_HTTP_REQUEST_TIMEOUT``, with one
retry, unless those MLflow variables are set) and each PostgreSQL connection (libpq's
``connect_timeout``, which covers the start-up handshake a silent server never answers).
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
SERVER_TIMEOUT_VARIABLE = "ML_PLATFORM_SERVER_TIMEOUT"
DEFAULT_SERVER_TIMEOUT = 10  # seconds
# Per request: 2 attempts of at most the timeout each, a second or two apart (urllib3's backoff plus MLflow's
# jitter); a step's RetryPolicy retries the step on top of that.
MLFLOW_HTTP_RETRIES = 1
MLFLOW_HTTP_BACKOFF_FACTOR = 1


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
            return with_connect_timeout(with_search_path(sqlalchemy_url(self.postgres_url), MLFLOW_SCHEMA))
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
        os.environ[DAGSTER_POSTGRES_URL_VARIABLE] = with_connect_timeout(sqlalchemy_url(paths.postgres_url))
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
    from psycopg2 import sql

    connection = _postgres_connection(url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    finally:
        connection.close()


def server_timeout() -> int:
    """The seconds any one wait on a server may last (``ML_PLATFORM_SERVER_TIMEOUT``)."""
    value = os.environ.get(SERVER_TIMEOUT_VARIABLE, "").strip()
    try:
        seconds = int(value) if value else DEFAULT_SERVER_TIMEOUT
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise ValueError(
            f"{SERVER_TIMEOUT_VARIABLE}={value!r} is not a whole number of seconds of at least 1 (e.g. 10)"
        )
    return seconds


def bound_server_waits(*uris: str) -> None:
    """Bound every wait on the stores named by ``uris`` before a client of them is made.

    MLflow reads its HTTP settings from the environment at each request; by default a request to a
    server that accepts and never answers waits 120 s, eight times over, with backoff between (about
    20 minutes). The platform's bound applies unless the MLflow variables are set. A PostgreSQL store
    is tried once per process with ``connect_timeout`` first: MLflow itself retries a failed first
    connection ten times with sleeps that add up to 100 s.
    """
    seconds = server_timeout()
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(seconds))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(MLFLOW_HTTP_RETRIES))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", str(MLFLOW_HTTP_BACKOFF_FACTOR))
    for uri in dict.fromkeys(uris):
        if urlsplit(uri).scheme.split("+", 1)[0] in ("postgres", "postgresql") and uri not in _ANSWERED:
            _postgres_connection(uri).close()
            _ANSWERED.add(uri)


_ANSWERED: set[str] = set()  # PostgreSQL stores that answered once in this process


def servers_named(paths: PlatformPaths | None = None) -> str:
    """The network stores this process uses, passwords masked, and the bound on each wait: for a message
    about a server that did not answer. Empty when every store is a local file."""
    paths = paths or PlatformPaths.from_environment()
    named = {}
    if paths.postgres_url:
        named[redacted(paths.postgres_url)] = "the PostgreSQL server"
    for uri in (paths.tracking_uri, paths.registry_uri):
        if urlsplit(uri).scheme in ("http", "https"):
            named.setdefault(redacted(uri), "the MLflow tracking server")
        elif urlsplit(uri).scheme.startswith("postgres") and not paths.postgres_url:
            named.setdefault(redacted(uri), "the PostgreSQL server")
    if not named:
        return ""
    try:
        bound = f"{server_timeout()} s"
    except ValueError as error:
        bound = str(error)
    servers = " and ".join(f"{what} {uri}" for uri, what in named.items())
    return f"is {servers} up and answering? (each wait on it is bounded: {SERVER_TIMEOUT_VARIABLE}, {bound})"


def with_connect_timeout(url: str) -> str:
    """The PostgreSQL URL with libpq's ``connect_timeout`` (``server_timeout``) unless it names one."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    if any(key == "connect_timeout" for key, _ in query):
        return url
    return urlunsplit(parts._replace(query=urlencode([*query, ("connect_timeout", str(server_timeout()))])))


def _postgres_connection(url: str):
    """A psycopg2 connection that gives up after ``server_timeout`` seconds, naming the server (masked).

    Raises:
        InfrastructureUnavailable: the server refused, or accepted and did not answer in time.
    """
    import psycopg2

    from ml_platform.errors import InfrastructureUnavailable

    seconds = server_timeout()
    dsn = urlunsplit(urlsplit(url)._replace(scheme="postgresql"))
    try:
        return psycopg2.connect(dsn, connect_timeout=seconds)
    except psycopg2.OperationalError as error:
        raise InfrastructureUnavailable(
            f"the PostgreSQL server {redacted(url)} did not answer within {seconds} s "
            f"({SERVER_TIMEOUT_VARIABLE}): {redact_secrets(str(error).strip())}"
        ) from None


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
