"""Retraining as a decision, end to end: drift lands, a trigger asks, the gates decide, people approve or roll back."""

from datetime import timedelta

import dagster as dg
import pytest
from growth.conversion.demo_data import generate

from ml_platform.cli import main
from ml_platform.defs.decisions import decisions_definitions
from ml_platform.defs.factory import model_definitions
from ml_platform.defs.triggers import trigger_definitions
from ml_platform.stores.ledger import Ledger
from ml_platform.stores.registry import CHALLENGER, current_champion
from ml_platform_tests.harness import declare_only, failure_messages

pytestmark = pytest.mark.e2e

FAST = {"max_iter": 60, "learning_rate": 0.15, "max_leaf_nodes": 31, "early_stopping": False, "random_state": 42}
SMALL = {"max_iter": 8, "learning_rate": 0.15, "max_leaf_nodes": 8, "early_stopping": False, "random_state": 42}
WEAK = {"max_iter": 5, "max_depth": 1, "learning_rate": 0.5, "early_stopping": False, "random_state": 0}


def definitions(platform) -> dg.Definitions:
    return dg.Definitions.merge(
        model_definitions(platform.spec),
        decisions_definitions(platform.spec),
        trigger_definitions(platform.spec),
        dg.Definitions(resources=platform.resources(), executor=dg.in_process_executor),
    )


def drift_tick(platform, cursor):
    defs = definitions(platform)
    name = f"{platform.spec.dagster_name}_drift_sensor"
    context = dg.build_sensor_context(
        instance=platform.instance, cursor=cursor, definitions=defs, sensor_name=name, resources=defs.resources
    )
    return defs.resolve_sensor_def(name).evaluate_tick(context)


def run_requested(platform, request) -> dg.ExecuteInProcessResult:
    """Launch what the sensor asked for, as the daemon would: the model's job with the request's tags."""
    job = definitions(platform).resolve_job_def(request.job_name)
    return job.execute_in_process(instance=platform.instance, tags=request.tags, raise_on_error=False)


@pytest.fixture
def cli_env(platform_home, mlflow_store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store.tracking_uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", mlflow_store.registry_uri)
    monkeypatch.setenv("ML_PLATFORM_ARTIFACT_ROOT", mlflow_store.artifact_root)


def test_drift_to_challenger_approve_rollback_and_a_rejected_candidate(make_platform, cli_env, monkeypatch, capsys):
    platform = make_platform(params=SMALL)
    platform.spec = platform.spec.model_copy(
        update={"monitoring": platform.spec.monitoring.model_copy(update={"cooldown": timedelta(0)})}
    )
    model = platform.spec.name
    declare_only(monkeypatch, platform.spec)  # the CLI finds the test's model by name
    ledger = Ledger.for_home(platform.paths.home)

    # 1. the champion, a small model: automatic promotion through the gates
    platform.land(generate(2500, seed=1), "week-1.csv")
    first = platform.materialize()
    assert first.success, failure_messages(first)
    assert current_champion(platform.store, model).version == "1"

    # 2. the team moves to manual promotion and a larger model; this week's export is a campaign's traffic,
    #    and the drift sensor asks for a candidate run, tagged with its scores
    platform.spec = platform.spec.model_copy(update={"promotion": "manual", "params": FAST})
    platform.land(generate(2500, seed=4, campaign=True), "campaign.csv")
    tick = drift_tick(platform, None)
    (request,) = tick.run_requests
    assert request.tags["ml_platform/trigger"] == "drift" and "discount" in request.tags["ml_platform/drifted"]

    # 3. the requested run: every gate passes, and under manual promotion the version waits as challenger
    second = run_requested(platform, request)
    assert second.success, failure_messages(second)
    assert current_champion(platform.store, model).version == "1"
    challenger = platform.store.client().get_model_version_by_alias(model, CHALLENGER)
    assert str(challenger.version) == "2"
    held = ledger.latest(model, ["held"])
    assert held.version == "2" and held.evidence["trigger"] == "drift"
    assert held.evidence["trigger_decision_id"] == request.tags["ml_platform/decision_id"]

    # 4. approve: the evidence is shown, champion moves, who approved is recorded
    assert main(["approve", model, "2", "--by", "ana", "--note", "campaign traffic is the new normal"]) == 0
    out = capsys.readouterr().out
    assert f"{model} version 2  aliases: challenger" in out and "passed  candidate_model:no_worse_than_champion" in out
    assert "version 2 is now champion, approved by ana; version 1 is previous-champion" in out
    assert current_champion(platform.store, model).version == "2"
    approval = ledger.latest(model, ["promoted"])
    assert (
        approval.actor == "ana"
        and approval.trigger == "approval"
        and "aliases: challenger" in (approval.evidence["evidence_shown"])
    )
    assert main(["approve", model, "2"]) == 1
    assert "it is already the champion" in capsys.readouterr().err

    # 5. rollback to the previous champion, with a reason
    assert main(["rollback", model, "--by", "ana", "--reason", "conversion dropped in apac"]) == 0
    assert "version 1 is champion again (rolled back from version 2 by ana" in capsys.readouterr().out
    assert current_champion(platform.store, model).version == "1"

    # 6. history: which version was champion when, and why
    assert main(["history", model]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{model}: champion now v1")
    assert [line.split()[1:3] for line in lines[1:]] == [["promoted", "v1"], ["promoted", "v2"], ["rolled-back", "v1"]]
    assert "[gates]" in lines[1] and "[approval by ana]" in lines[2] and "conversion dropped in apac" in lines[3]
    observed = platform.instance.fetch_observations(dg.AssetKey([model, "decisions"]), limit=20).records
    assert {r.asset_observation.metadata["decision"].value for r in observed} >= {"promoted", "held", "rolled-back"}

    # 7. another campaign batch, but a weak candidate: a gate rejects it, the champion stays, the ledger says why
    platform.spec = platform.spec.model_copy(update={"params": WEAK, "promotion": "auto"})
    platform.land(generate(2500, seed=5, campaign=True), "campaign-2.csv")
    tick = drift_tick(platform, tick.cursor)
    (request,) = tick.run_requests
    assert request.tags["ml_platform/batch"] == "campaign-2.csv"
    third = run_requested(platform, request)
    assert not third.success
    assert current_champion(platform.store, model).version == "1"
    rejected = ledger.latest(model, ["rejected"])
    assert "no_worse_than_champion" in rejected.evidence["failed_checks"]
    assert rejected.evidence["trigger"] == "drift" and "no_worse_than_champion failed" in rejected.reason
    assert [r.decision for r in ledger.query(model)] == [
        "promoted", "retrain", "held", "promoted", "rolled-back", "retrain", "rejected",
    ]  # fmt: skip


def test_approving_a_version_without_passed_gates_is_refused(make_platform, cli_env, monkeypatch, capsys):
    platform = make_platform(params=FAST)
    model = platform.spec.name
    declare_only(monkeypatch, platform.spec)
    client = platform.store.client()
    client.create_registered_model(model)
    client.create_model_version(model, source=platform.store.artifact_root + "/by-hand", tags={"origin": "by hand"})

    assert main(["approve", model, "1"]) == 1
    assert "refused, its gates did not all pass: no gate results recorded" in capsys.readouterr().err
    assert current_champion(platform.store, model) is None
    assert main(["rollback", model]) == 2
    assert "there is no champion to roll back" in capsys.readouterr().err
    assert main(["approve", model, "7"]) == 2
    assert main(["history", model]) == 0
    assert "no champion changes recorded yet" in capsys.readouterr().out
