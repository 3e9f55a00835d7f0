"""``<model>/registry_entry``: a gated candidate registered in MLflow with its evidence as tags.

The ``champion`` alias moves only when every gate on the way passed for this very candidate (or, under
manual promotion, ``challenger`` does and a person approves). The registry refuses a move when the
champion the candidate was compared with has moved meanwhile; that refusal is recorded as ``rejected``.
The step begins by reconciling the registry with the ledger (``stores.recovery.reconcile``), so a
promotion an earlier run was killed in the middle of is finished or undone, and recorded, first.
"""

import dagster as dg

from ml_platform.defs.decisions import registration_facts, step_recorder
from ml_platform.defs.gating import (
    FEATURES_ID,
    INFRASTRUCTURE_RETRY,
    MLFLOW_RUN_ID,
    SNAPSHOT_ID,
    RequiredGate,
    evidence_failures,
    latest_metadata,
    require_gates,
    upstream_gates,
)
from ml_platform.defs.resources import MlflowStore, PlatformHome
from ml_platform.keys import REGISTRY, REGISTRY_TAG, ModelKeys
from ml_platform.rules.spec import ModelSpec


def build_registry(spec: ModelSpec, keys: ModelKeys) -> dg.Definitions:
    """The registry asset: it has no checks of its own, it requires every upstream gate."""

    @dg.asset(
        key=keys.registry,
        deps=[keys.candidate],
        group_name=keys.group,
        kinds={"mlflow"},
        description=f"The MLflow registered model {spec.name!r}: a new version with its evidence as tags; the "
        "'champion' alias moves to it only when every gate passed for this very candidate.",
        retry_policy=INFRASTRUCTURE_RETRY,
    )
    def registry_entry(
        context: dg.AssetExecutionContext, mlflow: MlflowStore, platform: PlatformHome
    ) -> dg.MaterializeResult:
        from ml_platform.errors import ChampionMoved
        from ml_platform.stores.recovery import reconcile
        from ml_platform.stores.registry import register_candidate
        from ml_platform.stores.tracking import model_version_url

        candidate = latest_metadata(context.instance, keys.candidate)
        required = upstream_gates(spec, candidate)
        gates = _passed(required)
        record = step_recorder(context, platform.paths())
        with evidence_failures(REGISTRY, spec.name, mlflow.tracking_uri, context.retry_number):
            _log_reconciliation(context, reconcile(mlflow.store(), platform.paths(), spec.name, record))
            require_gates(context.instance, REGISTRY, spec.name, required)
            try:
                registration = register_candidate(
                    mlflow.store(),
                    spec.name,
                    run_id=candidate[MLFLOW_RUN_ID],
                    model_uri=candidate["model_uri"],
                    fingerprint=candidate["fingerprint"],
                    compared_champion=candidate.get("champion_version") or None,
                    tags=registration_tags(spec, candidate, gates, context.run_id),
                    promote=spec.promotion == "auto",
                    record=record,
                    facts=registration_facts(context, spec, candidate),
                )
            except ChampionMoved as refused:
                record_champion_moved(context, platform.paths(), spec, refused, candidate)
                raise
        context.log.info(registration.note)
        return dg.MaterializeResult(
            metadata={
                "version": registration.version,
                "mlflow_model_version": dg.MetadataValue.url(model_version_url(spec.name, registration.version)),
                "promoted": registration.promoted,
                "alias": registration.alias or "none",
                "previous_champion": registration.previous_champion or "none",
                "note": registration.note,
                MLFLOW_RUN_ID: candidate[MLFLOW_RUN_ID],
                SNAPSHOT_ID: candidate[SNAPSHOT_ID],
                "gates": dg.MetadataValue.json(gates),
            }
        )

    return dg.Definitions(assets=[registry_entry])


def _log_reconciliation(context, found) -> None:
    """Say what the start-of-step reconciliation repaired or found (its records are in the ledger already)."""
    for version, settled in found.settled.items():
        context.log.warning(f"an interrupted promotion of version {version} was carried out: {settled.note}")
    if found.moved_by_hand is not None:
        context.log.warning(f"ledger #{found.moved_by_hand.id}: {found.moved_by_hand.reason}")


def _passed(required: list[RequiredGate]) -> dict[str, str]:
    """The gates a registered version passed, as its ``gates`` tag records them (``<asset>:<check>``)."""
    return {f"{key.asset_key.path[-1]}:{key.name}": "passed" for key, _, _ in required}


def registration_tags(spec: ModelSpec, candidate: dict, gates: dict[str, str], dagster_run_id: str) -> dict:
    """The evidence a model version carries in the registry: its data, code, parameters, gates and metrics."""
    evidence = {
        SNAPSHOT_ID: candidate[SNAPSHOT_ID],
        FEATURES_ID: candidate[FEATURES_ID],
        "training_run_id": candidate[MLFLOW_RUN_ID],
        "dagster_run_id": dagster_run_id,
        "training_dagster_run_id": candidate["dagster_run_id"],
        "git_commit": candidate["git_commit"],
        "git_dirty": str(candidate["git_dirty"]).lower(),
        "params_digest": candidate["params_digest"],
        "params": spec.params,
        "gates": gates,
        "compared_with_champion": candidate.get("champion_version") or "none",
        "metrics": candidate["evaluation"]["candidate"] | {"confusion": None},
    }
    return {f"{REGISTRY_TAG}{name}": value for name, value in evidence.items()}


def record_champion_moved(context, paths, spec: ModelSpec, refused, candidate: dict) -> None:
    """Record ``rejected`` in the ledger for a version registered without an alias because the champion
    it was compared with moved meanwhile (two runs promoting at once, or a person's approval)."""
    from ml_platform.defs.decisions import record_in_step, run_trigger
    from ml_platform.stores.ledger import Decision

    evidence = {
        MLFLOW_RUN_ID: candidate.get(MLFLOW_RUN_ID),
        SNAPSHOT_ID: candidate.get(SNAPSHOT_ID),
        "compared_with_champion": candidate.get("champion_version") or "none",
        "champion": refused.champion or "none",
        **run_trigger(context),
    }
    record_in_step(
        context, paths, Decision(spec.name, "rejected", "registry", str(refused), {}, evidence, version=refused.version)
    )
