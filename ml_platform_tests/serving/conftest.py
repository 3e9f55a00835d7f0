"""A trained registry for the serving tests, and real servers on 127.0.0.1 over it.

The conversion model is trained once per module through the real gated graph (version 1). Two more
versions are registered through the platform's own registration (``register_candidate``, which
records the artifact manifest) from pipelines fitted here: version 2 on the labels flipped, so its
answers differ from version 1's where it matters (shadow, canary), and version 3 like version 1,
to be tampered with. The tests move the ``production`` and ``canary`` aliases themselves, as
``ml-platform release`` would.

Each server is a real uvicorn on a free port, in a thread of the test process (or a subprocess, for
the kill test), polling the registry every 0.2 s.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from growth.conversion.demo_data import generate

from ml_platform.keys import (
    CANARY,
    PRODUCTION,
    REGISTRY_TAG,
    RELEASE_ID_TAG,
    RELEASE_OUTCOME_TAG,
    RELEASE_STARTED_AT_TAG,
)
from ml_platform.rules.spec import ModelSpec, resolve_ref
from ml_platform.settings import PlatformPaths
from ml_platform.stores.registry import Store, register_candidate
from ml_platform_tests.harness import Platform, failure_messages, unique_spec
from ml_platform_tests.models import CONVERSION

FAST = {"max_iter": 40, "learning_rate": 0.15, "max_leaf_nodes": 15, "early_stopping": False, "random_state": 42}
POLL_SECONDS = 0.2


@dataclass
class Registry:
    """A model with three registered versions on the session's MLflow store, and a home to serve from."""

    spec: ModelSpec
    store: Store
    home: Path
    versions: tuple[str, ...]

    def move(self, alias: str, version: str) -> None:
        """Move ``alias`` as the platform does: a version put in ``production`` carries ``production_at``, and
        one put in ``canary`` a release id and start time, as ``ml-platform release`` tags them (a server
        refuses a production without its tag or ledger record, and routes nothing to such a canary)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        if alias == PRODUCTION:
            self.tag(version, f"{REGISTRY_TAG}production_at", now)
        if alias == CANARY:  # as `ml-platform release start` does: a canary without them gets no traffic
            self.tag(version, RELEASE_ID_TAG, uuid.uuid4().hex)
            self.tag(version, RELEASE_STARTED_AT_TAG, now)
            if RELEASE_OUTCOME_TAG in self.store.client().get_model_version(self.spec.name, version).tags:
                self.store.client().delete_model_version_tag(self.spec.name, version, RELEASE_OUTCOME_TAG)
        self.store.client().set_registered_model_alias(self.spec.name, alias, version)

    def move_by_hand(self, alias: str, version: str) -> None:
        """Move ``alias`` as a person with edit rights would, with MLflow's own client and nothing else."""
        self.store.client().set_registered_model_alias(self.spec.name, alias, version)

    def remove(self, alias: str) -> None:
        """Remove ``alias``; a ``canary`` as ``release abort`` does, its version tagged with the outcome."""
        if alias == CANARY:
            version = self.store.client().get_model_version_by_alias(self.spec.name, alias).version
            self.tag(str(version), RELEASE_OUTCOME_TAG, "rolled-back")
        self.store.client().delete_registered_model_alias(self.spec.name, alias)

    def tag(self, version: str, key: str, value: str) -> None:
        self.store.client().set_model_version_tag(self.spec.name, version, key, value)


def register_fitted(store: Store, spec: ModelSpec, pipeline, tag: str) -> str:
    """Log a fitted pipeline as the graph does and register it through the platform; its version."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    example = generate(20, seed=9)[list(spec.features)]
    with mlflow.start_run(experiment_id=store.experiment_id(spec.name), run_name=tag) as run:
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            signature=infer_signature(example, pipeline.predict(example)),
            pip_requirements=["scikit-learn"],
            skops_trusted_types=list(spec.skops_trusted_types),
        )
    champion = store.client().get_model_version_by_alias(spec.name, "champion").version
    registration = register_candidate(store, spec.name, run.info.run_id, info.model_uri, f"test-{tag}",
                                      str(champion), {"ml_platform.test": tag}, promote=False)  # fmt: skip
    return registration.version


def fitted(spec: ModelSpec, flip: bool):
    frame = generate(1500, seed=5)
    labels = 1 - frame[spec.label] if flip else frame[spec.label]
    return resolve_ref(spec.pipeline)(spec.params).fit(frame[list(spec.features)], labels)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, mlflow_store) -> Registry:
    root = tmp_path_factory.mktemp("serving")
    spec = unique_spec(CONVERSION, params=FAST)
    (root / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        platform = Platform(spec, PlatformPaths(root / "home"), instance, mlflow_store)
        platform.land(generate(3000, seed=1))
        result = platform.materialize()
        assert result.success, failure_messages(result)
    flipped = register_fitted(mlflow_store, spec, fitted(spec, flip=True), "flipped")
    spare = register_fitted(mlflow_store, spec, fitted(spec, flip=False), "spare")
    found = Registry(spec, mlflow_store, root / "home", ("1", flipped, spare))
    found.move(PRODUCTION, "1")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Client:
    """A real HTTP client of one server."""

    url: str

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """``(status, parsed JSON or text, headers)``; an HTTP error status is an answer, not an exception."""
        request = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw, found = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, raw, found = error.code, error.read(), dict(error.headers)
        try:
            return status, json.loads(raw), found
        except ValueError:
            return status, raw.decode(), found

    def predict(self, model: str, payload, headers: dict | None = None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return self.call("POST", f"/v1/models/{model}/predict", body, {"Content-Type": "application/json",
                                                                     **(headers or {})})  # fmt: skip

    def wait_until(self, condition, timeout: float = 60.0, what: str = "the condition"):
        """Poll ``/ready`` until ``condition(status, body)`` holds; the last body."""
        deadline = time.monotonic() + timeout
        while True:
            status, body, _ = self.call("GET", "/ready")
            if condition(status, body):
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not hold within {timeout:.0f} s; /ready says {body}")
            time.sleep(0.1)

    def wait_serving(self, model: str, version: str, timeout: float = 60.0):
        return self.wait_until(
            lambda status, body: body["models"][model]["serving"] == version and body["models"][model]["ready"],
            timeout,
            f"{model} serving v{version}",
        )


@contextmanager
def running_server(spec: ModelSpec, store: Store, home: Path, limits=None, **overrides):
    """A real uvicorn server of ``spec`` in a thread, on a free port of 127.0.0.1; stopped (and its log flushed)
    on exit."""
    import uvicorn

    from ml_platform.serving.app import build_app

    overrides.setdefault("poll_seconds", POLL_SECONDS)
    app = build_app([spec], store, PlatformPaths(home), limits, **overrides)
    listener = socket.socket()  # bound here and handed to uvicorn: no other socket can take the port meanwhile
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    client = Client(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start within 120 s"
        time.sleep(0.05)
    try:
        yield client
    finally:
        server.should_exit = True
        thread.join(timeout=120)
    # Tests read the online log after the block: it is complete only once the server's shutdown has flushed it.
    assert not thread.is_alive(), "the server did not stop within 120 s"


def session_rows(count: int, seed: int = 3) -> list[dict]:
    """Scoring rows of the conversion contract (no label), as JSON values."""
    frame = generate(count, seed=seed).drop(columns=["converted"])
    frame["event_time"] = frame["event_time"].map(lambda t: t.isoformat())
    return json.loads(frame.to_json(orient="records"))


def server_command(spec: ModelSpec, store: Store, home: Path, port: int) -> tuple[list[str], dict]:
    """The command and environment of a server subprocess serving ``spec`` (a test-unique name)."""
    env = os.environ | {
        "ML_PLATFORM_HOME": str(home),
        "MLFLOW_TRACKING_URI": store.tracking_uri,
        "MLFLOW_REGISTRY_URI": store.registry_uri,
        "ML_PLATFORM_ARTIFACT_ROOT": store.artifact_root,
    }
    spec_json = spec.model_dump_json()
    return [sys.executable, "-m", "ml_platform_tests.serving.subprocess_server", str(port), spec_json], env
