"""Security: no secret from the environment is echoed, and models load only from the platform's own store.

A real iris lifecycle runs with secret-looking environment values set (cloud keys, MLflow credentials,
a package index URL and a Postgres URL with passwords). Afterwards no sentinel may appear in the
Dagster run's events and metadata, the MLflow runs (parameters, tags, metric names, text artifacts),
the registry (model and version tags, descriptions), the decision ledger, any byte of any file under
the platform home, the MLflow store or DAGSTER_HOME, nor in what the run printed.

Loading a model deserializes it (skops, or pickle for a tampered version): arbitrary code for pickle.
So the loader accepts only a registered version whose files live under the platform's own artifact
root; a version pointing at a file path elsewhere (a tampered registry) is refused before anything is
read.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import dagster as dg
import pytest
from dagster_shared.serdes import serialize_value

from ml_platform.defs.resources import MlflowStore
from ml_platform.settings import PlatformPaths, redacted
from ml_platform.stores.registry import CHAMPION, Store, load_version
from ml_platform_tests.harness import Platform, failure_messages, unique_spec
from ml_platform_tests.models import IRIS

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

SENTINEL = "s3ntinel-9c41f7"
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": f"aws/{SENTINEL}-aws",
    "AWS_SESSION_TOKEN": f"{SENTINEL}-session",
    "MLFLOW_TRACKING_PASSWORD": f"{SENTINEL}-mlflow-password",
    "MLFLOW_TRACKING_TOKEN": f"{SENTINEL}-mlflow-token",
    "DATABRICKS_TOKEN": f"dapi{SENTINEL}",
    "GITHUB_TOKEN": f"ghp_{SENTINEL}",
    "HF_TOKEN": f"hf_{SENTINEL}",
    "PIP_INDEX_URL": f"https://ci:{SENTINEL}-pip@pypi.invalid/simple",
    "ML_PLATFORM_POSTGRES_URL": f"postgresql://mlp:{SENTINEL}-pg@127.0.0.1:1/platform",
    "DAGSTER_CLOUD_API_TOKEN": f"user:{SENTINEL}-dagster",
}


def leaks_in_files(*roots: Path) -> list[str]:
    """Every file under the roots whose bytes hold the sentinel (SQLite stores, artifacts, the ledger, logs)."""
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink() and SENTINEL.encode() in path.read_bytes():
                found.append(str(path))
    return found


def leaks_in_dagster(instance: dg.DagsterInstance) -> list[str]:
    """Every run record and event (logs, materializations, check evaluations with their metadata)."""
    found = []
    for run in instance.get_runs():
        if SENTINEL in serialize_value(run):
            found.append(f"run {run.run_id}")
        for event in instance.all_logs(run.run_id):
            if SENTINEL in serialize_value(event):
                found.append(f"run {run.run_id} event {event.dagster_event_type}: {event.message[:120]}")
    return found


def leaks_in_mlflow(store: Store, download_to: Path) -> list[str]:
    """Parameters, tags and metric names of every run; every text artifact; registry tags and descriptions."""
    client = store.client()
    found = []
    for experiment in client.search_experiments():
        found += [f"experiment {experiment.name} tags"] * (SENTINEL in repr(experiment.tags))
        for run in client.search_runs([experiment.experiment_id]):
            data = run.data
            for kind, values in (("params", data.params), ("tags", data.tags), ("metric names", data.metrics.keys())):
                if SENTINEL in repr(values):
                    found.append(f"run {run.info.run_id} {kind}")
            local = Path(client.download_artifacts(run.info.run_id, "", str(download_to / run.info.run_id)))
            found += [f"run {run.info.run_id} artifact {p}" for p in leaks_in_files(local)]
    for model in client.search_registered_models():
        if SENTINEL in repr((model.tags, model.description, model.aliases)):
            found.append(f"registered model {model.name}")
        for version in client.search_model_versions(f"name = '{model.name}'"):
            if SENTINEL in repr((version.tags, version.description, version.source, version.run_link)):
                found.append(f"model version {model.name}/{version.version}")
    return found


@pytest.fixture
def own_store(tmp_path) -> Store:
    """A store of this test's own (not the session's), so every byte of it can be searched."""
    root = tmp_path / "mlflow"
    store = Store(f"sqlite:///{root / 'mlflow.db'}", f"sqlite:///{root / 'mlflow.db'}", (root / "artifacts").as_uri())
    store.client().search_experiments()
    return store


def test_the_scanners_find_a_sentinel_where_one_was_written(tmp_path, own_store):
    """The searches below can fail: a sentinel logged on purpose is found in each place they look."""
    client = own_store.client()
    experiment = client.create_experiment("canary")
    run = client.create_run(experiment)
    client.log_param(run.info.run_id, "leaked", SENTINEL)
    assert leaks_in_mlflow(own_store, tmp_path / "download") == [f"run {run.info.run_id} params"]
    assert leaks_in_files(tmp_path / "mlflow")  # the SQLite file holds the parameter's bytes

    @dg.asset
    def noisy(context):
        context.log.info(f"connecting with {SENTINEL}")
        return dg.MaterializeResult(metadata={"uri": "x"})

    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        assert dg.materialize([noisy], instance=instance).success
        assert any("connecting with" in leak for leak in leaks_in_dagster(instance))
    assert leaks_in_files(tmp_path / "dagster")


def test_a_lifecycle_run_echoes_no_environment_secret(tmp_path, monkeypatch, own_store, capfd, caplog):
    """The whole iris graph, champion promoted, with secret-looking values in the environment."""
    from botany.iris.demo_data import generate as iris_data

    from ml_platform.stores.ledger import Ledger

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ML_PLATFORM_HOME", str(home))
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        platform = Platform(unique_spec(IRIS), PlatformPaths(home), instance, own_store)
        platform.land(iris_data())
        result = platform.materialize()
        assert result.success, failure_messages(result)
        client = own_store.client()
        assert str(client.get_model_version_by_alias(platform.spec.name, CHAMPION).version) == "1"
        assert Ledger.for_home(home).query(platform.spec.name, ["promoted"])  # the ledger was written: searched below
        assert leaks_in_dagster(instance) == []
    assert leaks_in_mlflow(own_store, tmp_path / "download") == []
    assert (home / "decisions.db").is_file()
    assert leaks_in_files(home, tmp_path / "mlflow", tmp_path / "dagster") == []
    out, err = capfd.readouterr()
    assert SENTINEL not in out and SENTINEL not in err
    assert SENTINEL not in caplog.text


def test_the_ledger_holds_no_sentinel_in_any_column(tmp_path, monkeypatch, own_store):
    """Read back through SQL, not bytes: a value could be stored compressed or encoded in the file."""
    from botany.iris.demo_data import generate as iris_data

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "home"
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        platform = Platform(unique_spec(IRIS, min_rows=10_000), PlatformPaths(home), instance, own_store)
        platform.land(iris_data())
        assert not platform.materialize().success  # a rejected run records its failed gates in the ledger too
    with sqlite3.connect(home / "decisions.db") as connection:
        tables = [row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")]
        rows = [row for table in tables for row in connection.execute(f'select * from "{table}"')]  # noqa: S608
    assert rows, "the rejected run wrote no ledger record"
    assert not [row for row in rows if SENTINEL in repr(row)]


@pytest.mark.parametrize(
    "uri",
    [
        f"postgresql+psycopg2://mlp:{SENTINEL}@db:5432/platform?options=-csearch_path%3Dmlflow",
        f"https://user:{SENTINEL}@mlflow.example.com",
    ],
)
def test_store_addresses_are_redacted_for_terminals(uri):
    assert SENTINEL not in redacted(uri)
    assert redacted(uri).split("@", 1)[1] == uri.split("@", 1)[1]


def test_secrets_in_any_text_are_redacted():
    """What clients echo: MLflow names the URL it failed to reach, password and all."""
    from ml_platform.settings import redact_secrets

    message = (
        f"API request to http://viewer:{SENTINEL}@mlflow:5000/api/2.0/x failed; "
        f"also postgresql+psycopg2://mlp:{SENTINEL}@db/platform and https://host/path?q=1"
    )
    assert redact_secrets(message) == (
        "API request to http://viewer:***@mlflow:5000/api/2.0/x failed; "
        "also postgresql+psycopg2://mlp:***@db/platform and https://host/path?q=1"
    )


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_store_is_reported_without_its_password(tmp_path, monkeypatch, capsys):
    """Exit 3 from the CLI and from a CI stage command, and neither the terminal nor the evidence file
    holds the password that MLflow's own message carries."""
    from ml_platform.cli import ExitCode, main

    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://viewer:{SENTINEL}@127.0.0.1:{_closed_port()}")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)  # mlflow.set_registry_uri exports it for the process
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    assert main(["explain", "iris"]) == ExitCode.INFRASTRUCTURE
    assert main(["decide", "iris", "--json", "--evidence", str(tmp_path / "evidence")]) == ExitCode.INFRASTRUCTURE
    out, err = capsys.readouterr()
    assert "viewer:***@127.0.0.1" in out + err  # the message still says where it failed
    assert SENTINEL not in out + err
    assert leaks_in_files(tmp_path / "evidence") == [] and list((tmp_path / "evidence").iterdir())


def test_a_store_password_is_not_in_what_the_webserver_shows(tmp_path, monkeypatch):
    """Dagster's webserver shows every resource's configured values to every viewer, read-only mode
    included. A tracking URI with a password reaches the resource as an environment variable's name."""
    from dagster._core.remote_representation.external_data import RepositorySnap

    from ml_platform.definitions import build_definitions

    uri = f"http://viewer:{SENTINEL}@mlflow.internal:5000"
    for variable in ("TRACKING", "REGISTRY", "ARTIFACT"):
        monkeypatch.delenv(f"ML_PLATFORM_RESOLVED_{variable}_URI", raising=False)
    monkeypatch.delenv("ML_PLATFORM_RESOLVED_ARTIFACT_ROOT", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    defs = build_definitions(PlatformPaths(tmp_path / "home"))
    assert SENTINEL not in serialize_value(RepositorySnap.from_def(defs.get_repository_def()))

    @dg.asset
    def tracking_uri(mlflow: MlflowStore) -> str:
        return mlflow.store().tracking_uri

    result = dg.materialize([tracking_uri], resources={"mlflow": defs.resources["mlflow"]})
    assert result.output_for_node("tracking_uri") == uri  # the run itself still gets the real address


# ------------------------------------------------------------------ models load only from the platform's store


def _pickled_model_outside(folder: Path, marker: Path) -> Path:
    """A real MLflow sklearn model directory outside the store whose pickle creates ``marker`` when loaded."""
    import mlflow.sklearn

    class Trap:
        def __reduce__(self):
            return (Path.touch, (marker,))

    mlflow.sklearn.save_model(
        {"model": Trap()}, str(folder), serialization_format="cloudpickle", pip_requirements=["scikit-learn"]
    )
    return folder


def test_a_registered_version_outside_the_store_is_refused_before_it_is_read(tmp_path, own_store):
    """A tampered registry: a version whose source is a file path elsewhere, made champion. Loading it is
    refused by name and the pickle never runs (the marker file its ``__reduce__`` would create is absent)."""
    from ml_platform.errors import PromotionBlocked

    marker = tmp_path / "pickle-ran"
    outside = _pickled_model_outside(tmp_path / "outside" / "model", marker)
    client = own_store.client()
    name = unique_spec(IRIS).name
    client.create_registered_model(name)
    try:
        version = client.create_model_version(name, source=str(outside))
    except Exception as refused:  # the registry itself may refuse a source outside its runs
        pytest.skip(f"this MLflow refuses the tampered version itself: {refused}")
    client.set_registered_model_alias(name, CHAMPION, version.version)
    with pytest.raises(PromotionBlocked, match=r"not under the platform's artifact root"):
        load_version(own_store, name, version.version)
    assert not marker.exists(), "the model's pickle was deserialized"


def test_the_loader_reads_a_version_the_platform_registered(tmp_path, monkeypatch, own_store):
    """The refusal above is specific: the platform's own champion loads and predicts."""
    from botany.iris.demo_data import generate as iris_data

    home = tmp_path / "home"
    monkeypatch.setenv("ML_PLATFORM_HOME", str(home))
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        platform = Platform(unique_spec(IRIS), PlatformPaths(home), instance, own_store)
        frame = iris_data()
        platform.land(frame)
        assert platform.materialize().success
    model = load_version(own_store, platform.spec.name, "1")
    assert len(model.predict(frame[list(IRIS.features)].head(5))) == 5


DESERIALIZERS = re.compile(
    r"\b(pickle|cloudpickle|joblib|dill)\.loads?\(|skops\.io\.loads?\(|\bsio\.loads?\("
    r"|mlflow\.\w+\.load_model\(|from mlflow\.\w+ import .*load_model|from (pickle|cloudpickle|joblib) import"
)


def test_no_other_module_deserializes_models():
    """Every model load goes through ``registry.load_version``: no deserializer is called anywhere else."""
    root = Path(__file__).resolve().parents[2] / "ml_platform"
    found = sorted(
        f"{path.relative_to(root)}: {match[0]}"
        for path in root.rglob("*.py")
        for match in DESERIALIZERS.finditer(path.read_text())
    )
    assert found == ["stores/registry.py: mlflow.sklearn.load_model("], found
