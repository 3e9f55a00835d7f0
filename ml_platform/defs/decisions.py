"""The ``<model>/decisions`` asset: the decision ledger, visible in the Dagster UI.

The ledger itself is a SQLite file under the platform home (``ml_platform.stores.ledger``), which
survives the purge of sensor ticks. Each record is mirrored as an ``AssetObservation`` of
``<model>/decisions`` -- from a sensor's result, from a step of the model's graph, or from a schedule
through the instance -- so the asset's page lists every retraining judgment and gate outcome, no-ops
included, with their reasons and scores as metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import dagster as dg

from ml_platform.keys import DECISION_TAG, TRIGGER_TAG, ModelKeys
from ml_platform.rules.spec import ModelSpec
from ml_platform.settings import PlatformPaths
from ml_platform.stores.ledger import Decision, Ledger


def observation(decision: Decision, figures: dict[str, str] | None = None) -> dg.AssetObservation:
    """A ledger record as an observation of ``<model>/decisions``.

    ``figures`` are Markdown images (``figures.markdown_image``) shown beside the record. They go to the
    observation only, never to the ledger: a picture of base64 PNG has no place in an audit table, and
    the numbers it draws are in the record's scores.
    """
    metadata: dict = {
        "decision": decision.decision,
        "trigger": decision.trigger,
        "reason": decision.reason,
        "ledger_id": decision.id if decision.id is not None else -1,
        "recorded_at": decision.recorded_at,
    }
    if decision.version:
        metadata["version"] = decision.version
    if decision.actor:
        metadata["actor"] = decision.actor
    if decision.scores:
        metadata["scores"] = dg.MetadataValue.json(_plain(decision.scores))
    if decision.evidence:
        metadata["evidence"] = dg.MetadataValue.json(_plain(decision.evidence))
    if "table" in decision.evidence:
        metadata["drift"] = dg.MetadataValue.md(decision.evidence["table"])
    if "performance_table" in decision.evidence:
        metadata["performance"] = dg.MetadataValue.md(decision.evidence["performance_table"])
    for name, markdown in (figures or {}).items():
        metadata[name] = dg.MetadataValue.md(markdown)
    return dg.AssetObservation(asset_key=ModelKeys(decision.model).decisions, metadata=metadata)


def record(
    paths: PlatformPaths, decision: Decision, figures: dict[str, str] | None = None
) -> tuple[Decision, dg.AssetObservation]:
    """Append ``decision`` to the ledger; return it recorded, with its observation (and ``figures``) for Dagster."""
    recorded = Ledger.for_home(paths.home).record(decision)
    return recorded, observation(recorded, figures)


def step_recorder(context, paths: PlatformPaths):
    """A ``registry.Recorder`` for a step: each decision recorded once per key, its observation logged in the run."""
    ledger, op_context = Ledger.for_home(paths.home), getattr(context, "op_execution_context", context)

    def record_once(decision: Decision, key: str) -> Decision | None:
        recorded = ledger.record_once(decision, key)
        if recorded is not None:
            op_context.log_event(observation(recorded))
        return recorded

    return record_once


def runless_recorder(paths: PlatformPaths, instance: dg.DagsterInstance):
    """A ``registry.Recorder`` outside a run (a sensor tick, the CLI): the observation goes to the instance."""
    ledger = Ledger.for_home(paths.home)

    def record_once(decision: Decision, key: str) -> Decision | None:
        recorded = ledger.record_once(decision, key)
        if recorded is not None:
            instance.report_runless_asset_event(observation(recorded))
        return recorded

    return record_once


def record_in_step(context, paths: PlatformPaths, decision: Decision) -> Decision:
    """Record a decision from an asset or check step, and log its observation in that run."""
    recorded, event = record(paths, decision)
    op_context = getattr(context, "op_execution_context", context)
    op_context.log_event(event)
    return recorded


def run_trigger(context) -> dict[str, str]:
    """What requested this run, from its tags: the trigger and its ledger record, if a trigger did."""
    tags = context.run.tags
    found = {"trigger": tags.get(TRIGGER_TAG, ""), "trigger_decision_id": tags.get(DECISION_TAG, "")}
    return {"dagster_run_id": context.run.run_id, **{k: v for k, v in found.items() if v}}


def record_gate_failures(context, paths: PlatformPaths, spec: ModelSpec, results, subject: dict[str, str]) -> None:
    """Record ``rejected`` when any of a step's gates failed: the candidate (or its data) goes no further."""
    failed = [result for result in results if not result.passed]
    if not failed:
        return
    reason = f"{len(failed)} blocking gate(s) failed, nothing downstream runs and champion stays: " + "; ".join(
        result.summary().replace("\n", " ") for result in failed
    )
    evidence = {**subject, **run_trigger(context), "failed_checks": [result.gate for result in failed]}
    scores = {result.gate: {r.rule: r.observed for r in result.violations} for result in failed}
    record_in_step(context, paths, Decision(spec.name, "rejected", "gates", reason, scores, evidence))


@contextmanager
def landing_refusals_recorded(context, paths: PlatformPaths, spec: ModelSpec, evidence: Mapping) -> Iterator[None]:
    """Record ``rejected`` (trigger ``landing``) for landing files refused before any snapshot exists.

    A refusal there (an unsupported file, a size limit, two headers, a foreign delimiter) leaves no
    snapshot for a gate to judge, so without this record it would be in the run's log only, which
    ``ml-platform history`` and an auditor never read.
    """
    from ml_platform.errors import ContractViolation

    try:
        yield
    except ContractViolation as error:
        reason = f"landing files refused before a snapshot, nothing downstream runs and champion stays: {error}"
        found = {**evidence, **run_trigger(context), "contract": type(error).__name__}
        record_in_step(context, paths, Decision(spec.name, "rejected", "landing", reason, {}, found))
        raise


def record_dropped_columns(context, paths: PlatformPaths, spec: ModelSpec, snapshot_id: str, sources) -> None:
    """Record an ``alert`` (trigger ``landing``) naming the columns the spec's ``unexpected_columns='drop'``
    kept out of a snapshot: the export changed upstream, and someone may want those columns in the contract."""
    dropped = {source.name: list(source.dropped_columns) for source in sources if source.dropped_columns}
    if not dropped:
        return
    from ml_platform.rules.evidence import capped

    names = sorted({column for columns in dropped.values() for column in columns})
    reason = (
        f"the landing files carry {len(names)} column(s) the contract does not declare: {capped(names)}; dropped "
        f"from snapshot {snapshot_id[:12]} as the spec asks (unexpected_columns='drop'). Add them to the contract "
        "to train on them."
    )
    evidence = {"snapshot_id": snapshot_id, "dropped_columns": dropped, **run_trigger(context)}
    scores = {"dropped_columns": len(names)}
    record_in_step(context, paths, Decision(spec.name, "alert", "landing", reason, scores, evidence))


def registration_facts(context, spec: ModelSpec, candidate: dict) -> dict:
    """The scores and evidence of the ``promoted`` (or ``held``) record a registration leads to.

    They travel in the version's promotion intent (``stores.registry``), so the record is the same
    whether this run writes it or a recovery finishes the promotion after this run was killed.
    """
    evaluation = candidate.get("evaluation", {})
    metric = spec.policy.comparison_metric
    scores = {"candidate": {metric: evaluation.get("candidate", {}).get(metric)}}
    if evaluation.get("champion"):
        scores["champion"] = {metric: evaluation["champion"].get(metric)}
    evidence = {
        "mlflow_run_id": candidate.get("mlflow_run_id"),
        "snapshot_id": candidate.get("snapshot_id"),
        "features_id": candidate.get("features_id"),
        **run_trigger(context),
    }
    return {"scores": _plain(scores), "evidence": _plain(evidence)}


def decisions_definitions(spec: ModelSpec) -> dg.Definitions:
    """The model's ``decisions`` asset (observed, never computed: its records come from the ledger).

    It sits in ``<model>_serving`` beside the scoring batches, not in the model's own group: the UI
    refuses to materialize a group that holds an asset it cannot materialize ("One or more external
    assets are selected"), and the model's group is meant to be exactly its lifecycle job, launched
    as one run from the group's menu on the global lineage page.
    """
    keys = ModelKeys(spec.name)
    return dg.Definitions(
        assets=[
            dg.AssetSpec(
                keys.decisions,
                group_name=keys.serving_group,
                kinds={"sqlite"},
                description=f"The decision ledger of {spec.name!r}: every retraining judgment (retrain, no-op, "
                "no decision), every gate outcome (promoted, held, rejected, rolled back) and every move of "
                "'champion' or 'production' made outside the platform (unrecorded-move), with reasons, scores and "
                "evidence. Each observation is one record of <home>/decisions.db; `ml-platform history` "
                "reads them from a terminal.",
            )
        ]
    )


def _plain(value):
    return json.loads(json.dumps(value, default=str))
