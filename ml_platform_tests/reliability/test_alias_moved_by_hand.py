"""``champion`` moved outside the platform, by hand, with MLflow's own client.

MLflow has no alias permissions: anyone who may register a version may move ``champion``, and MLflow
keeps no history of it. The decision ledger knows every move the platform made, so reconciling the
two finds the move; it is recorded once as ``unrecorded-move`` (alias, from, to, when noticed), shown
by ``ml-platform history`` and on ``<model>/decisions`` in Dagster, and batch scoring refuses to follow
it -- unless the spec accepts such moves, or a person confirms it with ``ml-platform approve``.
"""

from __future__ import annotations

import dagster as dg
import pytest
from botany.iris.demo_data import generate

from ml_platform.cli import main
from ml_platform.defs.scoring import scoring_definitions
from ml_platform.keys import CHAMPION
from ml_platform.stores.ledger import Ledger
from ml_platform.stores.recovery import reconcile
from ml_platform.stores.registry import current_champion
from ml_platform_tests.harness import declare_only, failure_messages, unique_spec
from ml_platform_tests.models import IRIS

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(600)]
BATCH = "hand-moved.csv"


def score(platform, spec=None) -> dg.ExecuteInProcessResult:
    """Materialize the scoring batch's partition, as the scoring sensor's run would."""
    definitions = scoring_definitions(spec or platform.spec)
    return dg.materialize(
        list(definitions.assets),
        partition_key=BATCH,
        instance=platform.instance,
        resources=platform.resources(),
        raise_on_error=False,
    )


def scored_by(result: dg.ExecuteInProcessResult) -> str:
    assert result.success, failure_messages(result)
    (materialization,) = result.get_asset_materialization_events()
    return materialization.materialization.metadata["model_version"].value


@pytest.fixture
def two_champions(make_platform, mlflow_store, monkeypatch, tmp_path):
    """Iris promoted twice through its gates (v1, then v2 on new data), a scoring batch, and the CLI's
    environment pointing at the same home, store and a Dagster home of the test's own."""
    platform = make_platform(
        IRIS,
        policy=IRIS.policy.model_copy(update={"champion_tolerance": 0.5}),
        release=IRIS.release.model_copy(update={"deployed_alias": CHAMPION}),  # scoring follows champion
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store.tracking_uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", mlflow_store.registry_uri)
    monkeypatch.setenv("ML_PLATFORM_ARTIFACT_ROOT", mlflow_store.artifact_root)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "cli-dagster"))
    declare_only(monkeypatch, platform.spec)  # the CLI finds the test's model by name
    platform.land(generate())
    assert platform.materialize().success
    platform.land(generate(rows=300, seed=7))
    assert platform.materialize().success
    assert current_champion(platform.store, platform.spec.name).version == "2"
    folder = platform.paths.scoring(platform.spec.name)
    folder.mkdir(parents=True)
    generate(rows=40, seed=9).drop(columns=IRIS.label).to_csv(folder / BATCH, index=False)
    platform.instance.add_dynamic_partitions(scoring_definitions(platform.spec).assets[0].partitions_def.name, [BATCH])
    assert scored_by(score(platform)) == "2"
    return platform


def test_a_champion_moved_by_hand_is_recorded_once_refused_by_scoring_and_shown_in_history(two_champions, capsys):
    platform = two_champions
    model, store = platform.spec.name, platform.store
    store.client().set_registered_model_alias(model, CHAMPION, "1")  # a person with edit rights, by hand

    refused = score(platform)

    assert not refused.success
    message = failure_messages(refused)
    assert f"batch_predictions {model!r}: refuses to follow champion v1" in message, message
    assert "'champion' was moved outside the platform: from v2 to v1" in message, message
    assert f"ml-platform rollback {model} --to 2" in message and f"ml-platform approve {model} 1" in message
    assert "accept_manual_alias_moves" in message
    (move,) = Ledger.for_home(platform.paths.home).query(model, ["unrecorded-move"])
    assert move.version == "1" and move.trigger == "reconcile"
    assert {k: move.evidence[k] for k in ("alias", "from_version", "to_version")} == {
        "alias": CHAMPION, "from_version": "2", "to_version": "1"
    }  # fmt: skip
    assert move.evidence["noticed_at"]
    observed = platform.instance.fetch_observations(dg.AssetKey([model, "decisions"]), limit=20).records
    shown = [r.asset_observation.metadata for r in observed if r.asset_observation.metadata["decision"].value
             == "unrecorded-move"]  # fmt: skip
    assert [m["ledger_id"].value for m in shown] == [move.id], "the UI's decisions asset does not show the move once"

    assert main(["history", model]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith(f"{model}: champion now v1")
    assert "WARNING: champion was moved outside the platform" in out
    lines = [line.split()[1:3] for line in out.splitlines() if line[:4].isdigit()]
    assert lines == [["promoted", "v1"], ["promoted", "v2"], ["unrecorded-move", "v1"]], out
    assert not score(platform).success, "scoring followed the hand-moved champion on a second try"
    assert len(Ledger.for_home(platform.paths.home).query(model, ["unrecorded-move"])) == 1, "recorded twice"


def test_a_spec_that_accepts_manual_moves_follows_and_an_approval_confirms_the_move(two_champions, capsys):
    platform = two_champions
    model, store = platform.spec.name, platform.store
    store.client().set_registered_model_alias(model, CHAMPION, "1")

    release = platform.spec.release.model_copy(update={"accept_manual_alias_moves": True})
    accepting = platform.spec.model_copy(update={"release": release})
    assert scored_by(score(platform, accepting)) == "1", "the spec accepts manual moves, scoring should follow"
    assert not score(platform).success, "without the flag, the same move is refused"

    assert main(["approve", model, "1", "--by", "ana", "--note", "v2 misbehaves on mobile"]) == 0
    out = capsys.readouterr().out
    assert "confirmed by ana: v2 misbehaves on mobile; v1 stays champion" in out
    assert scored_by(score(platform)) == "1", "a confirmed move is followed"
    changes = Ledger.for_home(platform.paths.home).query(model, ["promoted", "rolled-back", "unrecorded-move"])
    assert [(d.decision, d.version, d.actor) for d in changes] == [
        ("promoted", "1", None), ("promoted", "2", None), ("unrecorded-move", "1", None), ("promoted", "1", "ana")
    ]  # fmt: skip
    assert reconcile(store, platform.paths, model).agrees


def test_approve_refuses_to_confirm_a_hand_moved_version_whose_gates_did_not_pass(two_champions, capsys):
    platform = two_champions
    model, client = platform.spec.name, platform.store.client()
    failed = '{"candidate_model:no_worse_than_champion": "failed"}'
    client.set_model_version_tag(model, "1", "ml_platform.gates", failed)
    client.set_registered_model_alias(model, CHAMPION, "1")

    assert main(["approve", model, "1", "--by", "ana"]) == 1
    assert "refused to confirm the move made outside the platform" in capsys.readouterr().err
    assert not score(platform).success
    assert not reconcile(platform.store, platform.paths, model).agrees


def test_a_home_whose_ledger_never_saw_the_champion_trusts_the_platforms_tags_only(mlflow_store, tmp_path):
    """A fresh home (a CI job's, a restored backup) has no champion change of the model in its ledger. A
    champion the platform promoted (its ``promoted_at`` tag) is not a hand move there; one a person set
    on a version the platform never promoted is, and is recorded once."""
    from ml_platform.settings import PlatformPaths
    from ml_platform.stores.registry import register_candidate

    model, client = unique_spec(IRIS).name, mlflow_store.client()
    run_ids = [client.create_run(mlflow_store.experiment_id(model)).info.run_id for _ in range(2)]
    gates = {"ml_platform.gates": {"candidate_model:every_gate": "passed"}}
    register_candidate(mlflow_store, model, run_ids[0], f"runs:/{run_ids[0]}/model", "fp-0", None, gates)
    fresh = PlatformPaths(tmp_path / "fresh-home")
    assert reconcile(mlflow_store, fresh, model).agrees
    assert Ledger.for_home(fresh.home).query(model) == []

    by_hand = client.create_model_version(model, f"runs:/{run_ids[1]}/model", run_ids[1])
    client.set_registered_model_alias(model, CHAMPION, by_hand.version)
    found = reconcile(mlflow_store, fresh, model)
    assert not found.agrees and found.moved_by_hand.version == str(by_hand.version) == "2"
    assert (
        "from (none) to v2" in found.moved_by_hand.reason
        and "the ledger records no champion" in found.moved_by_hand.reason
    )
    assert reconcile(mlflow_store, fresh, model).recorded == [], "the same move was recorded twice"
