"""The asset factory: one ``ModelSpec`` in, that model's gated asset graph out.

    <model>/dataset_snapshot ─► <model>/validated_features ─► <model>/candidate_model ─► <model>/registry_entry
      data gates (blocking)        feature contract (blocking)    model gates (blocking)

Values do not travel through an IO manager: each asset writes its output to an immutable, content-
addressed place (or to MLflow) and records the address in its materialization metadata; the next
asset reads that address. Nothing is overwritten, and every hop of the evidence chain is in Dagster's
event log.

A blocking check stops downstream steps only in its own run, and Dagster still stores the checked
asset (dagster#17332). So each asset also verifies, before it uses an upstream result, that the latest
evaluation of every upstream gate passed *for that very snapshot, frame or candidate*: a gate holds
across runs, whether the UI, the CLI or an automation condition asks for the downstream asset.
"""

import json
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import urlsplit

import dagster as dg

from ml_platform.defs.compute import k8s_run_tags
from ml_platform.defs.monitoring import record_gate_failures, record_registration
from ml_platform.defs.resources import MlflowStore, PlatformHome
from ml_platform.errors import (
    ContractViolation,
    InfrastructureUnavailable,
    PromotionBlocked,
    SnapshotWriteFailed,
    is_transient,
)
from ml_platform.keys import FEATURE_GATE, ModelKeys
from ml_platform.rules import contracts
from ml_platform.rules.evidence import GateResult
from ml_platform.rules.spec import ModelSpec, model_gate_names, resolve_ref
from ml_platform.settings import redact_secrets, redacted

# Infrastructure is uncertain (a tracking server restarts, a disk stalls): retry it with backoff.
# Evidence is not: every ContractViolation or PromotionBlocked fails the step with allow_retries=False.
INFRASTRUCTURE_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

SNAPSHOT_GATE_DESCRIPTIONS = {
    "schema_holds": "The snapshot satisfies the model's pandera raw-data contract (columns, types, ranges).",
    "has_enough_rows": "The snapshot has at least the spec's min_rows rows.",
    "has_no_nulls": "No nulls in the key, label, feature, segment or event-time columns.",
    "labels_are_known": "Every label is a declared class, and every declared class occurs.",
    "keys_are_unique": "The key column has no duplicate values.",
    "has_every_segment": "Every expected segment is present with at least its minimum share: stops partial exports.",
    "is_fresh": "The newest event is no older than the spec's max_age (and not in the future).",
}
MODEL_GATE_DESCRIPTIONS = {
    "meets_absolute_minimums": "The candidate reaches the policy's absolute metric floors on the test split.",
    "beats_trivial_baseline": "The candidate beats a DummyClassifier on the same split by the policy's margin.",
    "no_worse_than_champion": "The candidate is no worse than the champion re-scored on the same test split.",
    "meets_segment_minimums": "The candidate reaches the policy's F1 floor inside every segment.",
}


@contextmanager
def evidence_failures(asset: str, model: str, server: str | None = None, retry_number: int = 0) -> Iterator[None]:
    """Turn invalid evidence into a Dagster failure that names the asset and is never retried.

    Errors that look like infrastructure go to the step's RetryPolicy, renamed so that they name the
    asset and ``server`` (the MLflow tracking URI, password redacted) rather than only a deep HTTP
    error; on the last attempt (``retry_number`` reached the policy's ``max_retries``) they become the
    step's failure itself, instead of Dagster's bare "Exceeded max_retries". Storage that refuses a
    snapshot fails at once: a retry cannot free a disk. Any other error (a bug, an MLflow refusal)
    fails the step once, without burning retries on it.
    """

    try:
        yield
    except (ContractViolation, PromotionBlocked) as error:
        raise dg.Failure(
            description=f"{asset} {model!r}: {error}" if not str(error).startswith(asset) else str(error),
            metadata={"model": model, "asset": asset, "contract": type(error).__name__},
            allow_retries=False,
        ) from error
    except dg.Failure:
        raise
    except SnapshotWriteFailed as error:
        raise dg.Failure(
            description=f"{asset} {model!r}: {error}",
            metadata={"model": model, "asset": asset, "error": type(error).__name__},
            allow_retries=False,
        ) from error
    except Exception as error:
        if is_transient(error):
            if server is None or isinstance(error, InfrastructureUnavailable):
                raise
            cause = None if urlsplit(server).password is not None else error  # its text would carry the URL unredacted
            problem = (
                f"{asset} {model!r}: the MLflow tracking server {redacted(server)} did not answer: "
                f"{_scrubbed(f'{type(error).__name__}: {error}', server)[:500]}."
            )
            attempts = INFRASTRUCTURE_RETRY.max_retries + 1
            if retry_number >= INFRASTRUCTURE_RETRY.max_retries:
                raise dg.Failure(
                    description=f"{problem} Gave up after {attempts} attempts with exponential backoff: check that "
                    "the server is up and reachable from here, then re-execute the run from failure.",
                    metadata={"model": model, "asset": asset, "server": redacted(server), "attempts": attempts},
                    allow_retries=False,
                ) from cause
            raise InfrastructureUnavailable(
                f"{problem} Attempt {retry_number + 1} of {attempts}; the step's RetryPolicy retries it with backoff."
            ) from cause
        raise dg.Failure(
            description=f"{asset} {model!r} crashed (not retried, not a gate result): {type(error).__name__}: {error}",
            metadata={"model": model, "asset": asset, "error": type(error).__name__},
            allow_retries=False,
        ) from error


def _scrubbed(text: str, uri: str) -> str:
    """``text`` without the URI's password: in any URL (``redact_secrets``), and also where a library
    echoed the password alone."""
    from urllib.parse import urlsplit

    password = urlsplit(uri).password
    text = redact_secrets(text)
    return text.replace(password, "***") if password else text


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict:
    """The metadata of an asset's latest materialization, as plain values."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        raise ContractViolation(f"{key.to_user_string()} has never been materialized: materialize it first")
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def unpassed_gates(instance: dg.DagsterInstance, required: Sequence[tuple[dg.AssetCheckKey, str, str]]) -> list[str]:
    """Which required gates have not passed for the given subject, and why, one line each.

    ``required`` holds (check key, metadata field naming the subject, the subject's id). A check
    counts only if its latest evaluation passed *and* was about that subject: a pass on yesterday's
    snapshot says nothing about today's.
    """
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key([key for key, _, _ in required])
    problems = []
    for key, field, subject in required:
        name = f"{key.asset_key.to_user_string()}:{key.name}"
        record = records.get(key)
        evaluation = (
            record.event.dagster_event.event_specific_data
            if record and record.event and record.event.dagster_event
            else None
        )
        if not isinstance(evaluation, dg.AssetCheckEvaluation):
            problems.append(f"{name} has no completed evaluation (it never ran, or its run stopped before it)")
            continue
        evaluated = evaluation.metadata.get(field)
        if evaluated is None or evaluated.value != subject:
            problems.append(
                f"{name} was last evaluated on {field} {str(evaluated.value)[:12] if evaluated else '(unknown)'}…, "
                f"not on {subject[:12]}…: run the check on this {field.removesuffix('_id')}"
            )
        elif not evaluation.passed:
            detail = textwrap.indent(evaluation.description or "see the check evidence", "    ").lstrip()
            problems.append(f"{name} FAILED: {detail}")
    return problems


def require_gates(
    instance: dg.DagsterInstance, asset: str, model: str, required: Sequence[tuple[dg.AssetCheckKey, str, str]]
) -> None:
    problems = unpassed_gates(instance, required)
    if problems:
        raise PromotionBlocked(
            f"{asset} {model!r} refuses to continue: {len(problems)} upstream gate(s) did not pass:\n  - "
            + "\n  - ".join(problems)
        )


def check_result(key: dg.AssetKey, result: GateResult, subject_field: str, subject: str) -> dg.AssetCheckResult:
    metadata = {
        subject_field: subject,
        "gate": dg.MetadataValue.md(result.table()),
        "violations": len(result.violations),
    }
    if result.details:
        metadata["details"] = dg.MetadataValue.json(json.loads(json.dumps(result.details, default=str)))
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=result.gate,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.summary(),
        metadata=metadata,
    )


def model_definitions(spec: ModelSpec) -> dg.Definitions:
    """Every asset, gate and job of one model, generated from its spec."""
    keys = ModelKeys(spec.name)
    snapshot_gates = contracts.snapshot_gate_names(spec)
    model_gates = model_gate_names(spec)

    def required_snapshot_gates(snapshot_id: str):
        return [(dg.AssetCheckKey(keys.snapshot, name), "snapshot_id", snapshot_id) for name in snapshot_gates]

    @dg.asset(
        key=keys.snapshot,
        group_name=spec.dagster_name,
        kinds={"parquet"},
        description=f"An immutable, content-addressed snapshot of {spec.name!r}'s landing files, "
        "verified on every read.",
        retry_policy=INFRASTRUCTURE_RETRY,
    )
    def dataset_snapshot(context: dg.AssetExecutionContext, platform: PlatformHome) -> dg.MaterializeResult:
        from ml_platform.stores.snapshot import read_landing, take_snapshot

        paths = platform.paths()
        landing = spec.landing_path(paths.home)
        with evidence_failures("dataset_snapshot", spec.name):
            context.log.info(f"reading landing files in {landing}")
            frame, sources = read_landing(landing, spec.name)
            context.log.info(f"read {len(frame):,} rows from {len(sources)} file(s); hashing and writing the snapshot")
            snapshot = take_snapshot(frame, sources, paths.snapshots(spec.name))
        context.log.info(
            f"snapshot {snapshot.snapshot_id[:12]} {'reused' if snapshot.reused else 'written'}: "
            f"{snapshot.rows:,} rows from {len(sources)} file(s)"
        )
        return dg.MaterializeResult(
            metadata={"snapshot_id": snapshot.snapshot_id, **_snapshot_metadata(spec, snapshot, frame, landing)},
            data_version=dg.DataVersion(snapshot.snapshot_id),
        )

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(name, asset=keys.snapshot, blocking=True, description=SNAPSHOT_GATE_DESCRIPTIONS[name])
            for name in snapshot_gates
        ],
        name=f"{spec.dagster_name}_snapshot_gates",
    )
    def snapshot_checks(
        context: dg.AssetCheckExecutionContext, platform: PlatformHome
    ) -> Iterator[dg.AssetCheckResult]:
        from ml_platform.stores.snapshot import load_snapshot

        snapshot_id = latest_metadata(context.instance, keys.snapshot)["snapshot_id"]
        with evidence_failures("dataset_snapshot", spec.name):
            _, frame = load_snapshot(platform.paths().snapshots(spec.name), snapshot_id)
        contract = resolve_ref(spec.contract)
        subject = f"dataset_snapshot {spec.name!r} {snapshot_id[:12]}"
        results = contracts.snapshot_gates(frame, spec, contract, subject, now=datetime.now(UTC))
        record_gate_failures(context, platform.paths(), spec, results, {"snapshot_id": snapshot_id})
        for result in results:
            yield check_result(keys.snapshot, result, "snapshot_id", snapshot_id)

    @dg.asset(
        key=keys.features,
        deps=[keys.snapshot],
        group_name=spec.dagster_name,
        kinds={"pandera", "parquet"},
        description="The contract-typed training frame with a deterministic, recorded, stratified train/test split.",
        retry_policy=INFRASTRUCTURE_RETRY,
    )
    def validated_features(context: dg.AssetExecutionContext, platform: PlatformHome) -> dg.MaterializeResult:
        from ml_platform.rules.features import build_feature_frame, split_digest
        from ml_platform.stores.snapshot import SourceFile, load_snapshot, take_snapshot

        paths = platform.paths()
        snapshot_id = latest_metadata(context.instance, keys.snapshot)["snapshot_id"]
        with evidence_failures("validated_features", spec.name):
            require_gates(context.instance, "validated_features", spec.name, required_snapshot_gates(snapshot_id))
            snapshot, frame = load_snapshot(paths.snapshots(spec.name), snapshot_id)
            features = build_feature_frame(frame, spec, resolve_ref(spec.contract))
            source = SourceFile(
                f"snapshot:{snapshot_id}", snapshot.data_sha256, snapshot.data_file.stat().st_size, snapshot.rows
            )
            stored = take_snapshot(features, [source], paths.features(spec.name))
        counts = features.groupby(["split", spec.label], observed=True).size()
        return dg.MaterializeResult(
            metadata={
                "features_id": stored.snapshot_id,
                "snapshot_id": snapshot_id,
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

        features_id = latest_metadata(context.instance, keys.features)["features_id"]
        with evidence_failures("validated_features", spec.name):
            _, frame = load_snapshot(platform.paths().features(spec.name), features_id)
        contract = resolve_ref(spec.feature_contract or spec.contract)
        subject = f"validated_features {spec.name!r} {features_id[:12]}"
        result = contracts.schema_holds(frame, contract, subject, FEATURE_GATE)
        record_gate_failures(context, platform.paths(), spec, [result], {"features_id": features_id})
        return check_result(keys.features, result, "features_id", features_id)

    @dg.asset(
        key=keys.candidate,
        deps=[keys.features],
        group_name=spec.dagster_name,
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
        with evidence_failures("candidate_model", spec.name, mlflow.tracking_uri, context.retry_number):
            require_gates(
                context.instance,
                "candidate_model",
                spec.name,
                [
                    *required_snapshot_gates(upstream["snapshot_id"]),
                    (dg.AssetCheckKey(keys.features, FEATURE_GATE), "features_id", upstream["features_id"]),
                ],
            )
            return train_candidate(context, spec, platform.paths(), mlflow.store(), upstream)

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(name, asset=keys.candidate, blocking=True, description=MODEL_GATE_DESCRIPTIONS[name])
            for name in model_gates
        ],
        name=f"{spec.dagster_name}_model_gates",
    )
    def model_checks(context: dg.AssetCheckExecutionContext, platform: PlatformHome) -> Iterator[dg.AssetCheckResult]:
        from ml_platform.rules import policy
        from ml_platform.rules.training import CandidateReport

        candidate = latest_metadata(context.instance, keys.candidate)
        report = CandidateReport.from_dict(candidate["evaluation"])
        run_id = candidate["mlflow_run_id"]
        subject = f"candidate_model {spec.name!r} (MLflow run {run_id[:12]})"
        results = policy.model_gates(report, spec, subject)
        record_gate_failures(
            context, platform.paths(), spec, results, {"mlflow_run_id": run_id, "snapshot_id": candidate["snapshot_id"]}
        )
        for result in results:
            yield check_result(keys.candidate, result, "mlflow_run_id", run_id)

    @dg.asset(
        key=keys.registry,
        deps=[keys.candidate],
        group_name=spec.dagster_name,
        kinds={"mlflow"},
        description=f"The MLflow registered model {spec.name!r}: a new version with its evidence as tags; the "
        "'champion' alias moves to it only when every gate passed for this very candidate.",
        retry_policy=INFRASTRUCTURE_RETRY,
    )
    def registry_entry(
        context: dg.AssetExecutionContext, mlflow: MlflowStore, platform: PlatformHome
    ) -> dg.MaterializeResult:
        from ml_platform.errors import ChampionMoved
        from ml_platform.stores.registry import register_candidate
        from ml_platform.stores.tracking import model_version_url

        candidate = latest_metadata(context.instance, keys.candidate)
        required = [
            *required_snapshot_gates(candidate["snapshot_id"]),
            (dg.AssetCheckKey(keys.features, FEATURE_GATE), "features_id", candidate["features_id"]),
            *[
                (dg.AssetCheckKey(keys.candidate, name), "mlflow_run_id", candidate["mlflow_run_id"])
                for name in model_gates
            ],
        ]
        with evidence_failures("registry_entry", spec.name, mlflow.tracking_uri, context.retry_number):
            require_gates(context.instance, "registry_entry", spec.name, required)
            gates = {f"{key.asset_key.path[-1]}:{key.name}": "passed" for key, _, _ in required}
            try:
                registration = register_candidate(
                    mlflow.store(),
                    spec.name,
                    run_id=candidate["mlflow_run_id"],
                    model_uri=candidate["model_uri"],
                    fingerprint=candidate["fingerprint"],
                    compared_champion=candidate.get("champion_version") or None,
                    tags={
                        "ml_platform.snapshot_id": candidate["snapshot_id"],
                        "ml_platform.features_id": candidate["features_id"],
                        "ml_platform.training_run_id": candidate["mlflow_run_id"],
                        "ml_platform.dagster_run_id": context.run_id,
                        "ml_platform.training_dagster_run_id": candidate["dagster_run_id"],
                        "ml_platform.git_commit": candidate["git_commit"],
                        "ml_platform.git_dirty": str(candidate["git_dirty"]).lower(),
                        "ml_platform.params_digest": candidate["params_digest"],
                        "ml_platform.params": spec.params,
                        "ml_platform.gates": gates,
                        "ml_platform.compared_with_champion": candidate.get("champion_version") or "none",
                        "ml_platform.metrics": candidate["evaluation"]["candidate"] | {"confusion": None},
                    },
                    promote=spec.promotion == "auto",
                )
            except ChampionMoved as refused:
                record_champion_moved(context, platform.paths(), spec, refused, candidate)
                raise
        context.log.info(registration.note)
        record_registration(context, platform.paths(), spec, registration, candidate)
        return dg.MaterializeResult(
            metadata={
                "version": registration.version,
                "mlflow_model_version": dg.MetadataValue.url(model_version_url(spec.name, registration.version)),
                "promoted": registration.promoted,
                "alias": registration.alias or "none",
                "previous_champion": registration.previous_champion or "none",
                "note": registration.note,
                "mlflow_run_id": candidate["mlflow_run_id"],
                "snapshot_id": candidate["snapshot_id"],
                "gates": dg.MetadataValue.json(gates),
            }
        )

    return dg.Definitions(
        assets=[dataset_snapshot, validated_features, candidate_model, registry_entry],
        asset_checks=[snapshot_checks, feature_check, model_checks],
        jobs=[
            dg.define_asset_job(
                ModelKeys(spec.name).lifecycle_job,
                selection=dg.AssetSelection.groups(spec.dagster_name),
                description=f"Landing files to champion for {spec.name!r}, every gate on the way.",
                tags={"ml_platform/model": spec.name, **k8s_run_tags(spec)},
            )
        ],
    )


def _snapshot_metadata(spec: ModelSpec, snapshot, frame, landing) -> dict:
    """What a reviewer wants to see about a snapshot without opening it."""
    sources = "| file | rows | bytes | sha256 |\n|---|---|---|---|\n" + "".join(
        f"| {s.name} | {s.rows:,} | {s.bytes:,} | `{s.sha256[:16]}…` |\n" for s in snapshot.sources
    )
    metadata = {
        "path": dg.MetadataValue.path(str(snapshot.path)),
        "rows": snapshot.rows,
        "columns": dg.MetadataValue.json(list(snapshot.columns)),
        "source_files": dg.MetadataValue.md(sources),
        "source_hashes": dg.MetadataValue.json({s.name: s.sha256 for s in snapshot.sources}),
        "landing": dg.MetadataValue.path(str(landing)),
        "reused": snapshot.reused,
    }
    if spec.label in frame.columns:
        metadata["label_balance"] = dg.MetadataValue.json(
            contracts.bounded_counts(frame[spec.label].astype(str).value_counts())
        )
    if spec.segments and spec.segments.column in frame.columns:
        metadata["rows_per_segment"] = dg.MetadataValue.json(
            contracts.bounded_counts(frame[spec.segments.column].astype(str).value_counts())
        )
    if spec.freshness and spec.freshness.column in frame.columns:
        times = contracts.event_time(frame, spec.freshness.column).dropna()
        if not times.empty:
            metadata["event_time_range"] = dg.MetadataValue.json([times.min().isoformat(), times.max().isoformat()])
    return metadata


def record_champion_moved(context, paths, spec: ModelSpec, refused, candidate: dict) -> None:
    """Record ``rejected`` in the ledger for a version registered without an alias because the champion
    it was compared with moved meanwhile (two runs promoting at once, or a person's approval)."""
    from ml_platform.defs.monitoring import record_in_step, run_trigger
    from ml_platform.stores.ledger import Decision

    evidence = {
        "mlflow_run_id": candidate.get("mlflow_run_id"),
        "snapshot_id": candidate.get("snapshot_id"),
        "compared_with_champion": candidate.get("champion_version") or "none",
        "champion": refused.champion or "none",
        **run_trigger(context),
    }
    record_in_step(
        context, paths, Decision(spec.name, "rejected", "registry", str(refused), {}, evidence, version=refused.version)
    )
