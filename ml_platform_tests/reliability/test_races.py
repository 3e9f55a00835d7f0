"""Races: two runs of one model promote at the same moment.

MLflow has no compare-and-set on an alias: ``set_registered_model_alias`` overwrites. Two runs that
both read "champion is v1", both register and both move the alias leave the second champion without
ever having been compared with the first, and the first version is neither champion nor
previous-champion: lost from view. The registry therefore decides and moves under a lock file per
model (``Store.lock``) and reads the alias back; this test makes two real runs reach that point
together, on one platform home, one MLflow SQLite store and one decision ledger, and checks the outcome.

The local run queue also allows one run per model at a time (``dagster.yaml``'s tag concurrency limit on
``ml_platform/model``), as the Kubernetes deployment does; but runs launched outside the queue (the
CLI's in-process ``ml-platform run``, tests, a second deployment) do not pass through it, so the
registry must be safe on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import dagster as dg
import pytest

from ml_platform.errors import ChampionMoved
from ml_platform.keys import CHAMPION
from ml_platform.settings import PlatformPaths
from ml_platform.stores.ledger import Ledger
from ml_platform.stores.registry import NOT_PROMOTED, Registration, current_champion, register_candidate
from ml_platform_tests.harness import Platform, failure_messages, unique_spec
from ml_platform_tests.models import IRIS
from ml_platform_tests.reliability.conftest import assert_promises, registered_versions

pytestmark = pytest.mark.reliability


def aliases(platform: Platform) -> dict[str, str]:
    model = platform.store.client().get_registered_model(platform.spec.name)
    return {alias: str(version) for alias, version in (model.aliases or {}).items()}


PROMOTER = """
import json, sys, time
from pathlib import Path

args = json.loads(sys.argv[1])
import dagster as dg
import mlflow  # noqa: F401  (warm: both runs should reach the registry step equally fast)

import ml_platform.defs.training_step  # noqa: F401
from ml_platform.stores.registry import Store
from ml_platform_tests.models import IRIS
from ml_platform.settings import PlatformPaths
from ml_platform_tests.harness import Platform, failure_messages

spec = IRIS.model_copy(update={"name": args["model"], "params": args["params"]})
with dg.DagsterInstance.get() as instance:
    platform = Platform(spec, PlatformPaths(Path(args["home"])), instance, Store(*args["store"]))
    Path(args["ready"]).touch()
    while not Path(args["go"]).exists():
        time.sleep(0.005)
    started = time.time()
    result = platform.materialize("registry_entry")
    window = [started, time.time()]
    print(json.dumps({"success": result.success, "message": failure_messages(result), "window": window}))
"""


def test_two_runs_promoting_at_once_leave_one_champion_and_keep_the_other_version(tmp_path, mlflow_store, iris_frame):
    """Exactly one champion, a version whose gates passed; the other version kept, tagged, and in the ledger.

    Two processes stand for two run workers, each with its own Dagster instance; they share the
    platform home (snapshots, ledger) and the MLflow store, as two runs of one deployment do. (Two
    in-process Dagster runs in threads of one process deadlock in ``logging.config``: Dagster
    configures logging per run.) The candidates differ in one parameter, so they are two candidates,
    not one registered twice, and both were compared with "no champion". Their ``registry_entry``
    steps start together on a signal file.
    """
    paths = PlatformPaths(tmp_path / "home")
    paths.home.mkdir()
    spec_a = unique_spec(IRIS)
    spec_b = spec_a.model_copy(update={"params": {**spec_a.params, "n_estimators": 40}})
    (tmp_path / "worker-a").mkdir()
    (tmp_path / "worker-b").mkdir()
    ready, go = tmp_path / "b-ready", tmp_path / "go"
    arguments = {
        "model": spec_b.name,
        "params": spec_b.params,
        "home": str(paths.home),
        "store": [mlflow_store.tracking_uri, mlflow_store.registry_uri, mlflow_store.artifact_root],
        "ready": str(ready),
        "go": str(go),
    }
    worker_b = subprocess.Popen(
        [sys.executable, "-c", PROMOTER, json.dumps(arguments)],
        env={**os.environ, "DAGSTER_HOME": str(tmp_path / "worker-b")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with (
            dg.instance_for_test(temp_dir=str(tmp_path / "worker-a")) as instance_a,
            dg.instance_for_test(temp_dir=str(tmp_path / "worker-b")) as instance_b,
        ):
            run_a = Platform(spec_a, paths, instance_a, mlflow_store)
            run_a.land(iris_frame)
            for run in (run_a, Platform(spec_b, paths, instance_b, mlflow_store)):
                prepared = run.materialize("dataset_snapshot", "validated_features", "candidate_model")
                assert prepared.success, failure_messages(prepared)
            assert current_champion(mlflow_store, spec_a.name) is None
            deadline = time.monotonic() + 180
            while not ready.exists():
                assert worker_b.poll() is None, worker_b.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "worker b never became ready"
                time.sleep(0.05)
            go.touch()
            started = time.time()
            result_a = run_a.materialize("registry_entry")
            window_a = (started, time.time())
        out, err = worker_b.communicate(timeout=180)
    finally:
        if worker_b.poll() is None:
            worker_b.kill()
    assert worker_b.returncode == 0, err[-3000:]
    outcome_b = json.loads(out.strip().splitlines()[-1])
    window_b = outcome_b["window"]
    assert max(window_a[0], window_b[0]) < min(window_a[1], window_b[1]), "the two registry steps did not overlap"

    outcomes = {"a": (result_a.success, failure_messages(result_a)), "b": (outcome_b["success"], outcome_b["message"])}
    assert sorted(success for success, _ in outcomes.values()) == [False, True], outcomes
    champion = current_champion(mlflow_store, spec_a.name)
    versions = registered_versions(mlflow_store, spec_a.name)
    assert len(versions) == 2, f"expected both candidates registered, found {sorted(versions)}"
    (kept_version,) = set(versions) - {champion.version}
    assert aliases(run_a) == {CHAMPION: champion.version}, "exactly one alias, champion, on the winner"
    assert NOT_PROMOTED not in versions[champion.version]
    reason = versions[kept_version][NOT_PROMOTED]
    assert "compared with champion (none)" in reason and f"champion is now v{champion.version}" in reason
    (loser_message,) = [message for success, message in outcomes.values() if not success]
    assert f"registered as version {kept_version} but not promoted" in loser_message, loser_message

    ledger = Ledger.for_home(paths.home).query(spec_a.name, ["promoted", "rejected"])
    assert [(d.decision, d.version) for d in ledger] == [("promoted", champion.version), ("rejected", kept_version)]
    assert f"champion is now v{champion.version}" in ledger[1].reason
    assert_promises(run_a)


def test_registrations_racing_in_threads_move_champion_once_and_keep_every_version(mlflow_store):
    """The registry path alone, four callers released together: the tightest race the lock must hold.

    Each caller has its own real MLflow run and fingerprint and was compared with "no champion". With
    no lock, several read "no champion" and each moves the alias, the last writer wins and the others
    are promoted in their own eyes yet lost from the registry's; with it, one is promoted and three are
    registered without an alias, each tagged with the reason.
    """
    model = unique_spec(IRIS).name
    client = mlflow_store.client()
    experiment = mlflow_store.experiment_id(model)
    run_ids = [client.create_run(experiment).info.run_id for _ in range(4)]
    barrier, outcomes = threading.Barrier(len(run_ids)), {}

    def register(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = register_candidate(
                mlflow_store, model, run_ids[index], f"runs:/{run_ids[index]}/model", f"fingerprint-{index}",
                compared_champion=None, tags={"ml_platform.gates": {"candidate_model:every_gate": "passed"}},
            )  # fmt: skip
        except ChampionMoved as refused:
            outcomes[index] = refused

    threads = [threading.Thread(target=register, args=(index,)) for index in range(len(run_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    promoted = [o for o in outcomes.values() if isinstance(o, Registration) and o.promoted]
    refused = [o for o in outcomes.values() if isinstance(o, ChampionMoved)]
    assert len(promoted) == 1 and len(refused) == len(run_ids) - 1, outcomes
    champion = current_champion(mlflow_store, model)
    assert champion.version == promoted[0].version
    versions = registered_versions(mlflow_store, model)
    assert sorted(versions, key=int) == ["1", "2", "3", "4"], "a racing version was lost"
    assert {o.version for o in refused} == set(versions) - {champion.version}
    assert all(NOT_PROMOTED in versions[o.version] for o in refused)
    registered = mlflow_store.client().get_registered_model(model)
    assert {alias: str(version) for alias, version in registered.aliases.items()} == {CHAMPION: champion.version}
    assert mlflow_store.lock_path(model).exists()
