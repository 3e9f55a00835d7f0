"""``<model>/validated_features`` and its feature contract: a gated snapshot made into a split training frame."""

import dagster as dg

from ml_platform.defs.decisions import record_gate_failures
from ml_platform.defs.gating import (
    FEATURES_ID,
    INFRASTRUCTURE_RETRY,
    SNAPSHOT_ID,
    check_result,
    evidence_failures,
    latest_metadata,
    require_gates,
    upstream_gates,
)
from ml_platform.defs.resources import PlatformHome
from ml_platform.keys import FEATURE_GATE, FEATURES, ModelKeys
from ml_platform.rules import contracts
from ml_platform.rules.spec import ModelSpec, resolve_ref


def build_features(spec: ModelSpec, keys: ModelKeys) -> dg.Definitions:
    """The feature-frame asset and its blocking feature-contract check."""

    @dg.asset(
        key=keys.features,
        deps=[keys.snapshot],
        group_name=keys.group,
        kinds={"pandera", "parquet"},
        description="The contract-typed training frame with a deterministic, recorded, stratified train/test split.",
        retry_policy=INFRASTRUCTURE_RETRY,
    )
    def validated_features(context: dg.AssetExecutionContext, platform: PlatformHome) -> dg.MaterializeResult:
        from ml_platform.rules.features import build_feature_frame, split_digest, with_split
        from ml_platform.stores.snapshot import SourceFile, load_snapshot, take_snapshot, take_typed

        paths = platform.paths()
        upstream = latest_metadata(context.instance, keys.snapshot)
        snapshot_id = upstream[SNAPSHOT_ID]
        root = paths.snapshots(spec.name)
        with evidence_failures(FEATURES, spec.name):
            require_gates(context.instance, FEATURES, spec.name, upstream_gates(spec, upstream))
            typed = take_typed(context.run_id, root, snapshot_id, spec.contract)
            snapshot, frame = load_snapshot(root, snapshot_id, run_id=context.run_id, release=True)
            if typed is None:  # another run's snapshot, or gates judged in another process: type it here
                features = build_feature_frame(frame, spec, resolve_ref(spec.contract))
            else:
                features = with_split(typed, spec)
            del frame, typed
            source = SourceFile(
                f"snapshot:{snapshot_id}", snapshot.data_sha256, snapshot.data_file.stat().st_size, snapshot.rows
            )
            stored = take_snapshot(features, [source], paths.features(spec.name), run_id=context.run_id)
        counts = features.groupby(["split", spec.label], observed=True).size()
        return dg.MaterializeResult(
            metadata={
                FEATURES_ID: stored.snapshot_id,
                SNAPSHOT_ID: snapshot_id,
                "path": dg.MetadataValue.path(str(stored.data_file)),
                "split_digest": split_digest(features["split"]),
                "train_rows": int((features["split"] == "train").sum()),
                "test_rows": int((features["split"] == "test").sum()),
                "rows_per_split_and_label": dg.MetadataValue.json(
                    {f"{s}/{label}": int(n) for (s, label), n in counts.items()}
                ),
                "split": dg.MetadataValue.json(spec.split.model_dump()),
            },
            data_version=dg.DataVersion(stored.snapshot_id),
        )

    @dg.asset_check(
        asset=keys.features,
        name=FEATURE_GATE,
        blocking=True,
        description="The feature frame satisfies the model's pandera feature contract, split column included.",
    )
    def feature_check(context: dg.AssetCheckExecutionContext, platform: PlatformHome) -> dg.AssetCheckResult:
        from ml_platform.stores.snapshot import load_snapshot

        features_id = latest_metadata(context.instance, keys.features)[FEATURES_ID]
        with evidence_failures(FEATURES, spec.name):
            _, frame = load_snapshot(platform.paths().features(spec.name), features_id, run_id=context.run.run_id)
        contract = resolve_ref(spec.feature_contract or spec.contract)
        subject = f"{FEATURES} {spec.name!r} {features_id[:12]}"
        result = contracts.schema_holds(frame, contract, subject, FEATURE_GATE)
        record_gate_failures(context, platform.paths(), spec, [result], {FEATURES_ID: features_id})
        return check_result(keys.features, result, FEATURES_ID, features_id)

    return dg.Definitions(assets=[validated_features], asset_checks=[feature_check])
