"""Helpers for the Kubernetes tests: the deploy/ files, schema validation, and a fake API server.

The fake API server is a plain HTTP server on 127.0.0.1 that answers the one call the K8sRunLauncher
makes (create a Job) with scripted statuses and records every body it receives. dagster-k8s and the
kubernetes client run unmodified against it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils

from ml_platform.settings import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
# The newest API the validator ships (a current release) and the oldest still in upstream support.
KUBERNETES_VERSIONS = ("1.33.0", kv_utils.latest_version())


def load_documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> list[tuple[str, dict]]:
    """Every Kubernetes object under deploy/k8s, named ``file:Kind/name``."""
    found = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in load_documents(path):
            found.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return found


def validate(obj: dict) -> None:
    """Validate against every tested Kubernetes version, strictly (unknown fields are errors)."""
    for version in KUBERNETES_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


@dataclass
class FakeApiServer:
    """What the fake API server answers (a queue of statuses; 201 once it is empty) and received."""

    url: str
    responses: list[int]
    received: list[dict] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


INVALID_JOB = {
    "kind": "Status",
    "apiVersion": "v1",
    "metadata": {},
    "status": "Failure",
    "message": 'Job.batch "dagster-run-x" is invalid: spec.template.spec.containers[0].resources.requests: '
    'Invalid value: "64": must be less than or equal to cpu limit of 1',
    "reason": "Invalid",
    "code": 422,
}


@contextmanager
def fake_api_server(responses: list[int] | None = None) -> Iterator[FakeApiServer]:
    state = FakeApiServer(url="", responses=list(responses or []))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.received.append(body)
            state.paths.append(self.path)
            status = state.responses.pop(0) if state.responses else 201
            if status == 201:
                payload = body
            elif status == 422:
                payload = INVALID_JOB
            else:
                payload = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "code": status,
                    "reason": "ServiceUnavailable",
                    "message": "the server is currently unable to handle the request",
                }
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def write_kubeconfig(path: Path, server_url: str, namespace: str) -> Path:
    """A kubeconfig for the fake API server: plain HTTP on loopback, no credentials."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server_url}}],
                "users": [{"name": "fake", "user": {}}],
                "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}],
                "current-context": "fake",
            }
        )
    )
    return path
