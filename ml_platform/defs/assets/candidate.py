"""``<model>/candidate_model`` and its model gates: training is not approval.

The step body (fit, score against a baseline and the champion, record in MLflow) lives in
``ml_platform.defs.training_step``, the one module that imports scikit-learn and MLflow; this module
is imported whenever the definitions load and stays light.
"""

from collections.abc import Iterator

import dagster as dg

from ml_platform.defs.decisions import record_gate_failures
from ml_platform.defs.gating import (
    INFRASTRUCTURE_RETRY,
    MLFLOW_RUN_ID,
    SNAPSHOT_ID,
    check_result,
    evidence_failures,
    latest_metadata,
    require_gates,
    upstream_gates,
)
from ml_platform.defs.resources import MlflowStore, PlatformHome
from ml_platform.keys import CANDIDATE, ModelKeys
from ml_platform.rules.spec import ModelSpec, model_gate_names

MODEL_GATE_DESCRIPTIONS = {
    "meets_absolute_minimums": "The candidate reaches the policy's absolute metric floors on the test split.",
    "beats_trivial_baseline": "The candidate beats a DummyClassifier on the same split by the policy's margin.",
    "no_worse_than_champion": "The candidate is no worse than the champion re-scored on the same test split.",
    "meets_segment_minimums": "The candidate reaches the policy's F1 floor inside every segment.",
}


def build_candidate(spec: ModelSpec, keys: ModelKeys) -> dg.Definitions:
    """The candidate asset and one blocking check per model gate the spec's policy declares."""

    @dg.asset(
        key=keys.candidate,
        deps=[keys.features],
        group_name=keys.group,
        kinds={"sklearn", "mlflow"},
        description="The spec's pipeline trained on the training rows, scored with its baseline and the champion "
        "on the same test rows, and recorded in MLflow with its data version, code version, parameters and metrics.",
        retry_policy=INFRASTRUCTURE_RETRY,
    )
    def candidate_model(
        context: dg.AssetExecutionContext, platform: PlatformHome, mlflow: MlflowStore
    ) -> dg.MaterializeResult:
        from ml_platform.defs.training_step import train_candidate

        upstream = latest_metadata(context.instance, keys.features)
        with evidence_failures(CANDIDATE, spec.name, mlflow.tracking_uri, context.retry_number):
            require_gates(context.instance, CANDIDATE, spec.name, upstream_gates(spec, upstream))
            return train_candidate(context, spec, platform.paths(), mlflow.store(), upstream)

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(name, asset=keys.candidate, blocking=True, description=MODEL_GATE_DESCRIPTIONS[name])
            for name in model_gate_names(spec)
        ],
        name=keys.model_gates,
    )
    def model_checks(context: dg.AssetCheckExecutionContext, platform: PlatformHome) -> Iterator[dg.AssetCheckResult]:
        from ml_platform.rules import policy
        from ml_platform.rules.training import CandidateReport

        candidate = latest_metadata(context.instance, keys.candidate)
        report = CandidateReport.from_dict(candidate["evaluation"])
        run_id = candidate[MLFLOW_RUN_ID]
        subject = f"{CANDIDATE} {spec.name!r} (MLflow run {run_id[:12]})"
        results = policy.model_gates(report, spec, subject)
        evidence = {MLFLOW_RUN_ID: run_id, SNAPSHOT_ID: candidate[SNAPSHOT_ID]}
        record_gate_failures(context, platform.paths(), spec, results, evidence)
        for result in results:
            yield check_result(keys.candidate, result, MLFLOW_RUN_ID, run_id)

    return dg.Definitions(assets=[candidate_model], asset_checks=[model_checks])
