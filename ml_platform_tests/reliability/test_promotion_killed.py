"""The process promoting a version is killed (SIGKILL) between two of its writes, then recovered.

A promotion writes, in order: the new version (with its evidence and its promotion intent), the
previous champion's ``replaced_by`` tags and the ``previous-champion`` alias, ``champion``, the ledger
record, and last the intent's closing tags. Here a real ``registry_entry`` step runs in a child process
(a persistent Dagster instance and the session's SQLite MLflow store) and gets SIGKILL right after one
of those writes returns: the test wraps that one client call in the child -- the platform's code has no
hook -- and the kernel kills the process, as an OOM kill or a lost node would. The run stays
``STARTED``; it is marked failed as run monitoring would, and recovered as a user would: re-executed
from failure, or by the next reconciliation (the next run, a sensor tick, ``ml-platform history``).

After recovery: ``champion`` points at the new version, the ledger holds exactly one decision for it,
the tags say promoted and nothing is pending, and a further reconciliation finds nothing to do.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import dagster as dg
import pytest

from ml_platform.keys import CANDIDATE, CHAMPION, PREVIOUS_CHAMPION
from ml_platform.settings import PROJECT_ROOT, PlatformPaths
from ml_platform.stores.ledger import Ledger
from ml_platform.stores.recovery import reconcile
from ml_platform.stores.registry import (
    NOT_PROMOTED,
    PROMOTION_OUTCOME,
    PROMOTION_PENDING,
    current_champion,
)
from ml_platform_tests.harness import Platform, failure_messages, materialized, unique_spec
from ml_platform_tests.reliability.conftest import MODEL_VARIABLE, assert_promises, registered_versions

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]

# Each boundary: the client call after which the child is killed, and which of its calls count.
BOUNDARIES = {
    "version-created": ("mlflow:create_model_version", ""),
    "previous-champion-tagged": ("mlflow:set_model_version_tag", "ml_platform.replaced_at"),
    "alias-moved": ("mlflow:set_registered_model_alias", CHAMPION),
    "ledger-recorded": ("ledger:record_once", ""),
    "intent-closed": ("mlflow:delete_model_version_tag", PROMOTION_PENDING),
}

WORKER = """
import os, signal, sys

import dagster as dg
from mlflow import MlflowClient

from ml_platform.stores.ledger import Ledger
from ml_platform_tests.reliability.test_promotion_killed import promotion_job, registry_key

owner, method = sys.argv[1].split(":")
marker = sys.argv[2]
cls = {"mlflow": MlflowClient, "ledger": Ledger}[owner]
original = getattr(cls, method)

def killed_after(*args, **kwargs):
    result = original(*args, **kwargs)
    if not marker or marker in [str(value) for value in (*args[1:], *kwargs.values())]:
        os.kill(os.getpid(), signal.SIGKILL)
    return result

setattr(cls, method, killed_after)
with dg.DagsterInstance.get() as instance:
    dg.execute_job(dg.reconstructable(promotion_job), instance=instance, asset_selection=[registry_key()])
sys.exit("the boundary was never reached")
"""


def promotion_spec(name: str):
    """Iris under the test's name, with room for a second candidate on new data to pass its champion gate."""
    from ml_platform_tests.models import IRIS

    return IRIS.model_copy(update={"name": name, "policy": IRIS.policy.model_copy(update={"champion_tolerance": 0.5})})


def promotion_job():
    """The model's lifecycle job on the environment's home and store (rebuilt by name in any process)."""
    from ml_platform.defs.factory import model_definitions
    from ml_platform.defs.resources import default_resources

    spec = promotion_spec(os.environ[MODEL_VARIABLE])
    definitions = dg.Definitions.merge(
        model_definitions(spec),
        dg.Definitions(resources=default_resources(PlatformPaths.from_environment()), executor=dg.in_process_executor),
    )
    return definitions.resolve_job_def(f"{spec.dagster_name}_lifecycle")


def registry_key() -> dg.AssetKey:
    return dg.AssetKey([os.environ[MODEL_VARIABLE], "registry_entry"])


@pytest.fixture
def half_promoted(tmp_path, mlflow_store, iris_frame, monkeypatch):
    """Champion v1 through a whole run, a candidate on new data up to its gates, and a ``registry_entry``
    child process to kill: call the result with a boundary to get the killed run."""
    from botany.iris.demo_data import generate

    model = unique_spec(promotion_spec("iris")).name
    home, dagster_home = tmp_path / "home", tmp_path / "dagster"
    home.mkdir()
    dagster_home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    environment = {
        "DAGSTER_HOME": str(dagster_home),
        "ML_PLATFORM_HOME": str(home),
        "MLFLOW_TRACKING_URI": mlflow_store.tracking_uri,
        "MLFLOW_REGISTRY_URI": mlflow_store.registry_uri,
        "ML_PLATFORM_ARTIFACT_ROOT": mlflow_store.artifact_root,
        MODEL_VARIABLE: model,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    paths, spec = PlatformPaths(home), promotion_spec(model)
    platform = Platform(spec, paths, None, mlflow_store)
    job = dg.reconstructable(promotion_job)
    with dg.DagsterInstance.get() as instance:
        platform.instance = instance
        platform.land(iris_frame)
        first = dg.execute_job(job, instance)
        assert first.success, failure_messages(first)
        platform.land(generate(rows=300, seed=7))
        upstream = [dg.AssetKey([model, name]) for name in ("dataset_snapshot", "validated_features", CANDIDATE)]
        candidate = dg.execute_job(job, instance, asset_selection=upstream)
        assert candidate.success, failure_messages(candidate)
    assert current_champion(mlflow_store, model).version == "1"

    def kill_at(boundary: str) -> dg.DagsterRun:
        call, marker = BOUNDARIES[boundary]
        worker = subprocess.run(
            [sys.executable, "-c", WORKER, call, marker],
            env={**os.environ, **environment},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert worker.returncode == -signal.SIGKILL, f"not killed at {boundary}: {worker.stderr[-3000:]}"
        with dg.DagsterInstance.get() as instance:
            killed = instance.get_runs(limit=1)[0]
            assert killed.status == dg.DagsterRunStatus.STARTED, "SIGKILL leaves the run looking alive"
            instance.report_run_failed(killed)  # what run monitoring does for a run whose worker is gone
        return killed

    platform.kill_at = kill_at
    return platform


def reexecute_from_failure(platform: Platform, killed: dg.DagsterRun) -> dg.ExecuteJobResult:
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(
            dg.reconstructable(promotion_job),
            instance,
            reexecution_options=dg.ReexecutionOptions.from_failure(killed.run_id, instance),
        )
        assert result.success, failure_messages(result)
        assert materialized(result) == ["registry_entry"]
    return result


def assert_promoted_once(platform: Platform) -> None:
    """v2 is champion, v1 previous-champion; the ledger says so once; the tags agree; nothing is pending."""
    store, model = platform.store, platform.spec.name
    versions = registered_versions(store, model)
    assert sorted(versions, key=int) == ["1", "2"], f"expected versions 1 and 2, found {sorted(versions)}"
    assert current_champion(store, model).version == "2"
    aliases = {alias: str(v) for alias, v in store.client().get_registered_model(model).aliases.items()}
    assert aliases == {CHAMPION: "2", PREVIOUS_CHAMPION: "1"}
    assert versions["2"][PROMOTION_OUTCOME] == "promoted"
    assert PROMOTION_PENDING not in versions["2"] and NOT_PROMOTED not in versions["2"]
    assert versions["1"]["ml_platform.replaced_by"] == "2"
    ledger = Ledger.for_home(platform.paths.home)
    kinds = ["promoted", "held", "rejected", "unrecorded-move"]
    decisions = [(d.decision, d.version) for d in ledger.query(model, kinds)]
    assert decisions == [("promoted", "1"), ("promoted", "2")], decisions
    again = reconcile(store, platform.paths, model)
    assert again.agrees and again.settled == {} and again.recorded == [], again
    assert_promises(platform)


@pytest.mark.parametrize("boundary", list(BOUNDARIES))
def test_a_promotion_killed_at_any_boundary_is_finished_by_reexecuting_the_run_from_failure(half_promoted, boundary):
    killed = half_promoted.kill_at(boundary)
    reexecute_from_failure(half_promoted, killed)
    assert_promoted_once(half_promoted)


def test_a_promotion_killed_after_the_alias_moved_is_finished_by_the_next_reconciliation(half_promoted):
    """Nobody re-executes the run: the next sensor tick, run or ``ml-platform history`` reconciles."""
    half_promoted.kill_at("alias-moved")
    found = reconcile(half_promoted.store, half_promoted.paths, half_promoted.spec.name)
    assert list(found.settled) == ["2"] and found.settled["2"].promoted
    assert [(d.decision, d.version) for d in found.recorded] == [("promoted", "2")]
    assert found.recorded[0].evidence["previous_champion"] == "1"
    assert_promoted_once(half_promoted)


def test_a_half_done_promotion_whose_champion_moved_meanwhile_is_undone_and_recorded(half_promoted):
    """Killed after the previous champion was tagged; before any recovery someone removes ``champion`` by
    hand. The promotion is not finished (its comparison was with v1): v1's ``replaced_by`` and the
    ``previous-champion`` alias are put back, v2 is tagged not promoted, the ledger says ``rejected``
    once, and the hand removal is recorded as an ``unrecorded-move``."""
    model, store = half_promoted.spec.name, half_promoted.store
    half_promoted.kill_at("previous-champion-tagged")
    client = store.client()
    assert client.get_model_version(model, "1").tags["ml_platform.replaced_by"] == "2"
    client.delete_registered_model_alias(model, CHAMPION)

    found = reconcile(store, half_promoted.paths, model)

    assert list(found.settled) == ["2"] and not found.settled["2"].promoted
    assert [(d.decision, d.version) for d in found.recorded] == [("rejected", "2"), ("unrecorded-move", None)]
    assert "compared with champion v1, but the champion is now (none)" in found.recorded[0].reason
    assert found.recorded[1].evidence["from_version"] == "1" and found.recorded[1].evidence["to_version"] == "none"
    versions = registered_versions(store, model)
    assert NOT_PROMOTED in versions["2"] and versions["2"][PROMOTION_OUTCOME] == "not-promoted"
    assert PROMOTION_PENDING not in versions["2"]
    assert "ml_platform.replaced_by" not in versions["1"]
    assert dict(client.get_registered_model(model).aliases) == {}
    again = reconcile(store, half_promoted.paths, model)
    assert again.recorded == [] and again.settled == {}
