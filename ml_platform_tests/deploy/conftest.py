"""Fixtures for the Kubernetes tests: the cluster's instance config on a fake API server."""

from __future__ import annotations

import os
from urllib.parse import urlparse

import dagster as dg
import pytest
import yaml

from ml_platform_tests.deploy.k8s import DEPLOY, fake_api_server, write_kubeconfig

NAMESPACE = "ml-platform"
POSTGRES_URL = os.environ.get("ML_PLATFORM_TEST_POSTGRES_URL")


def cluster_instance_config(kubeconfig, storage: dict | None = None) -> dict:
    """deploy/dagster/dagster.yaml as a pod would load it, but pointed at a kubeconfig file.

    Only two fields change: ``load_incluster_config: false`` and ``kubeconfig_file``; ``storage``
    replaces the Postgres storage where a test does not exercise it.
    """
    config = yaml.safe_load((DEPLOY / "dagster" / "dagster.yaml").read_text())
    config["run_launcher"]["config"]["load_incluster_config"] = False
    config["run_launcher"]["config"]["kubeconfig_file"] = str(kubeconfig)
    if storage is not None:
        config["storage"] = storage
    return config


def postgres_environment(url: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables the cluster's instance config reads, from a postgresql:// URL."""
    parsed = urlparse(url)
    return {
        "DAGSTER_PG_USERNAME": parsed.username or "",
        "DAGSTER_PG_PASSWORD": parsed.password or "",
        "DAGSTER_PG_HOST": parsed.hostname or "127.0.0.1",
        "DAGSTER_PG_PORT": str(parsed.port or 5432),
        "DAGSTER_PG_DB": parsed.path.lstrip("/"),
    }


@pytest.fixture(scope="module")
def _shared_api_server():
    with fake_api_server() as server:
        yield server


@pytest.fixture
def api_server(_shared_api_server):
    """A fake Kubernetes API server, emptied for each test; set ``responses`` to script its answers."""
    _shared_api_server.responses.clear()
    _shared_api_server.received.clear()
    _shared_api_server.paths.clear()
    return _shared_api_server


@pytest.fixture(scope="module")
def cluster_instance(tmp_path_factory, _shared_api_server):
    """A real DagsterInstance with the cluster's K8sRunLauncher, talking to the fake API server.

    Shared by a module's tests (creating it costs seconds; each test launches runs of its own).
    Run storage is SQLite here (the launcher is under test); the Postgres storage of the same file is
    loaded by ``test_the_cluster_instance_config_loads_unchanged_on_postgres``.
    """
    base = tmp_path_factory.mktemp("cluster")
    home = base / "dagster_home"
    home.mkdir()
    kubeconfig = write_kubeconfig(base / "kubeconfig", _shared_api_server.url, NAMESPACE)
    storage = {"sqlite": {"base_dir": str(home)}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(cluster_instance_config(kubeconfig, storage)))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        yield instance
