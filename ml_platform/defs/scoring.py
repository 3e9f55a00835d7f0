"""Scoring and the performance trigger, per model: ``<model>/batch_predictions``, the inference log, live metrics.

- **Scoring**: each file landing in ``<home>/scoring/<model>/`` (CSV or Parquet, the raw contract
  without the label) becomes a partition of ``<model>/batch_predictions`` -- the scoring sensor adds it
  and requests its run -- and is predicted by the version ``spec.release.deployed_alias`` (``production``
  or ``champion``) points at when the run starts.
  The partition is the file name, so the UI lists the batches a user dropped in. A file of a format
  the platform does not read (``batch.xlsx``) is not scored and not passed over: the sensor names it,
  with what to do, in its skip reason and records it once as ``rejected`` (trigger ``scoring``).
- **The inference log**: every scored batch is kept as
  ``<home>/inference/<model>/<batch sha256[:16]>-v<version>.parquet``: the logged inputs, the
  prediction and its confidence, the model version, the batch file and its SHA-256, and when it was
  scored. Addressed by what was predicted and by whom, it is written once and
  never overwritten: scoring the same bytes with the same version again reuses it (and says so).
- **The performance sensor** (when the spec sets ``monitoring.performance_tolerance``): when outcomes
  land in ``<home>/feedback/<model>/`` (the key and the label), it joins them with the inference log
  and judges the live metric of the version that served them -- the deployed alias's -- per event-time
  window (``ml_platform.rules.performance``).
  Every evaluation is recorded in the decision ledger and observed on ``<model>/decisions``: ``no-op``
  (no drop), ``no-decision`` (too few labelled rows, or a broken feedback file, named), or an ``alert``
  followed by a ``retrain`` request (unless a run is in progress or the cool-down holds) and, where the
  spec allows it and the alias's previous holder (``previous-production`` or ``previous-champion``) did
  measurably better on the same rows, a ``rolled-back`` of that alias alone, named in the record.
  Its cursor holds the feedback files judged, so a file is judged once. A feedback file of a format
  the platform does not read is named in the skip reason and recorded once as ``no-decision``.

``batch_predictions`` lives in its own group, ``<model>_serving``: the model's lifecycle job and the
UI's "Materialize all" select the model's group, and a retraining run must not score batches (nor a
per-batch partitioned asset run without a batch).
"""

import json
from dataclasses import asdict
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import dagster as dg

from ml_platform.defs.decisions import record, step_recorder
from ml_platform.defs.gating import INFRASTRUCTURE_RETRY, evidence_failures
from ml_platform.defs.resources import MlflowStore, PlatformHome
from ml_platform.defs.triggers import Watched, hold_back, model_sensor, refuse_unsupported, run_request, with_refusal
from ml_platform.keys import (
    BATCH_PREDICTIONS,
    MODEL_TAG,
    PREVIOUS_CHAMPION,
    PREVIOUS_PRODUCTION,
    PRODUCTION,
    REGISTRY_TAG,
    RUN_TAG,
    ModelKeys,
)
from ml_platform.rules.spec import ModelSpec, resolve_ref
from ml_platform.settings import PlatformPaths
from ml_platform.stores.ledger import Decision

ACTOR = "performance-trigger"
INVALID_KEY_PARTS = ("...", "\n", "\r", "\t", "\0")  # what Dagster refuses in a partition key


def batches_partitions(spec: ModelSpec) -> dg.DynamicPartitionsDefinition:
    """One partition per scoring batch file, named by the file."""
    return dg.DynamicPartitionsDefinition(name=ModelKeys(spec.name).scoring_partitions)


def logged_columns(spec: ModelSpec) -> list[str]:
    """What the inference log keeps of each input row: the key, segment and event time, and the features."""
    return [c for c in spec.required_columns if c != spec.label]


def time_column(spec: ModelSpec) -> str:
    """The event time the live metric's windows are cut on: the spec's freshness column, else the scoring time."""
    from ml_platform.rules.performance import SCORED_AT

    return spec.freshness.column if spec.freshness else SCORED_AT


@lru_cache(maxsize=8)
def _loaded(tracking_uri: str, registry_uri: str, artifact_root: str, model: str, version: str):
    from ml_platform.stores.registry import Store, load_version

    return load_version(Store(tracking_uri, registry_uri, artifact_root), model, version)


def load_model(store, model: str, version: str):
    """A registered version's pipeline, loaded once per process (a version never changes)."""
    return _loaded(store.tracking_uri, store.registry_uri, store.artifact_root, model, str(version))


def validate_batch(spec: ModelSpec, frame, source: str):
    """The batch typed by the model's raw contract without the label, or a ``ContractViolation`` naming every problem.

    A label column in a scoring batch is dropped (it would only be there by accident) and said so.
    """
    from pandera.errors import SchemaErrors

    from ml_platform.errors import ContractViolation
    from ml_platform.rules.evidence import capped

    contract = resolve_ref(spec.contract)
    notes = []
    if spec.label in frame.columns:
        frame = frame.drop(columns=[spec.label])
        notes.append(f"the label column {spec.label!r} was in the batch and is ignored")
    schema = contract.to_schema().remove_columns([spec.label])
    try:
        return schema.validate(frame, lazy=True), notes
    except SchemaErrors as errors:
        cases = errors.failure_cases
        problems = [
            f"{column if column == column else 'frame'}: {check} "
            f"(e.g. {capped(group['failure_case'].astype(str).unique().tolist(), 3)})"
            for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False)
        ]
        raise ContractViolation(
            f"{BATCH_PREDICTIONS} {spec.name!r}: scoring batch {source!r} breaks {contract.__name__} without "
            f"{spec.label!r}: {len(problems)} problem(s): "
            + "; ".join(problems[:8])
            + f". Expected the columns {capped(list(schema.columns), 12)} with their types and ranges."
        ) from errors


def score_batch(spec: ModelSpec, paths: PlatformPaths, store, batch_file: str, record=None) -> dict:
    """Predict one scoring batch with the deployed version and write its inference log; what happened, as metadata.

    The version is the one ``stores.recovery.followable_version`` allows after reconciling the registry
    with the ledger (``record`` records what that finds): one moved outside the platform is refused
    unless the spec accepts such moves.
    """
    import pandas as pd

    from ml_platform.errors import ContractViolation
    from ml_platform.rules.performance import PREDICTION, inference_log_frame
    from ml_platform.stores.recovery import followable_version
    from ml_platform.stores.snapshot import file_sha256, read_landing_file

    folder = paths.scoring(spec.name)
    path = folder / batch_file
    if not path.is_file():
        raise ContractViolation(
            f"{BATCH_PREDICTIONS} {spec.name!r}: the scoring batch {batch_file!r} is not in {folder} (expected the "
            "file this partition is named after). Was it moved or renamed? Land it again under that name."
        )
    champion = followable_version(store, paths, spec, BATCH_PREDICTIONS, record)
    if champion is None:
        raise ContractViolation(
            f"{BATCH_PREDICTIONS} {spec.name!r}: nothing to score {batch_file!r} with (expected the alias "
            f"{spec.release.deployed_alias!r} on the registered model {spec.name!r}). Run the model's graph, then "
            f"`ml-platform release {spec.name} start`."
        )
    sha256 = file_sha256(path)
    batch, notes = validate_batch(spec, read_landing_file(path, spec.limits, spec.csv_delimiter), batch_file)
    if batch.empty:
        raise ContractViolation(f"{BATCH_PREDICTIONS} {spec.name!r}: scoring batch {batch_file!r} has no rows")
    log_dir = paths.inference(spec.name)
    target = log_dir / f"{sha256[:16]}-v{champion.version}.parquet"
    reused = target.exists()
    if not reused:
        pipeline = load_model(store, spec.name, champion.version)
        inputs = batch[list(spec.features)]
        predicted = pipeline.predict(inputs)
        confidence = pipeline.predict_proba(inputs).max(axis=1) if hasattr(pipeline, "predict_proba") else None
        log = inference_log_frame(
            batch,
            logged_columns(spec),
            predicted,
            confidence,
            version=champion.version,
            batch_file=batch_file,
            batch_sha256=sha256,
            scored_at=pd.Timestamp(datetime.now(UTC)),
        )
        reused = not _write_once(log, target)
    log = pd.read_parquet(target, columns=[PREDICTION, "scored_at"])
    shares = log[PREDICTION].astype(str).value_counts(normalize=True).round(4)
    return {
        "model_version": champion.version,
        "batch_file": batch_file,
        "batch_sha256": sha256,
        "rows": len(log),
        "scored_at": log["scored_at"].iloc[0].isoformat(),
        "inference_log": dg.MetadataValue.path(str(target)),
        "reused": reused,
        "prediction_shares": dg.MetadataValue.json({str(k): float(v) for k, v in shares.items()}),
        "notes": dg.MetadataValue.json(notes
            + ([f"already scored by v{champion.version}: the log written then is kept"] if reused else [])),
    }  # fmt: skip


def _write_once(frame, target: Path) -> bool:
    """Write ``target`` if it does not exist yet, atomically; ``False`` if someone else wrote it first."""
    import os

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    frame.to_parquet(partial, index=False)
    try:
        os.link(partial, target)  # fails if the target exists: the log is never overwritten
        return True
    except FileExistsError:
        return False
    finally:
        partial.unlink(missing_ok=True)


def read_inference_log(paths: PlatformPaths, spec: ModelSpec):
    """Every logged prediction of the model, with its inputs (online shadow and error rows are no answers)."""
    import pandas as pd

    from ml_platform.serving.log import serving_rows

    frames = [serving_rows(pd.read_parquet(f)) for f in sorted(paths.inference(spec.name).glob("*.parquet"))]
    frames = [frame for frame in frames if not frame.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def judge_scoring_folder(
    spec: ModelSpec, paths: PlatformPaths, store, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    """One tick of the scoring sensor: a partition and a run for each batch file not requested yet, and every
    file it cannot score named (``refuse_unsupported``)."""
    folder = paths.scoring(spec.name)
    files, refusal = refuse_unsupported(spec, paths, instance, folder, "scoring", "scoring")
    return with_refusal(_request_batches(spec, store, instance, cursor, folder, files), refusal)


def _request_batches(
    spec: ModelSpec, store, instance: dg.DagsterInstance, cursor: str | None, folder: Path, files
) -> dg.SensorResult | dg.SkipReason:
    from ml_platform.stores.release import deployed_version

    present = {Watched.fingerprint(p): p for p in files}
    requested = set(json.loads(cursor).get("requested", [])) if cursor else set()
    requested &= set(present)
    new = {fp: p for fp, p in present.items() if fp not in requested}
    if not new:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"no new scoring batch in {folder}"),
            cursor=json.dumps({"requested": sorted(requested)}),
        )
    if deployed_version(store, spec) is None:
        return dg.SkipReason(
            f"{len(new)} scoring batch(es) wait in {folder}: {spec.name!r} has no {spec.release.deployed_alias} yet"
        )
    unusable = sorted(p.name for p in new.values() if any(part in p.name for part in INVALID_KEY_PARTS))
    usable = {fp: p for fp, p in new.items() if p.name not in unusable}
    partitions = batches_partitions(spec)
    known = set(instance.get_dynamic_partitions(partitions.name))
    add = sorted({p.name for p in usable.values()} - known)
    requests = [
        dg.RunRequest(
            run_key=f"{p.name}|{fp}",
            partition_key=p.name,
            asset_selection=[ModelKeys(spec.name).batch_predictions],
            tags={MODEL_TAG: spec.name, f"{RUN_TAG}scoring_batch": p.name},
        )
        for fp, p in sorted(usable.items())
    ]
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[partitions.build_add_request(add)] if add else [],
        skip_reason=dg.SkipReason(f"file names Dagster cannot use as partition keys: {unusable}")
        if not requests
        else None,
        cursor=json.dumps({"requested": sorted(requested | set(new))}),
    )


def judge_performance(
    spec: ModelSpec, paths: PlatformPaths, store, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    """One tick of the performance sensor (see the module docstring)."""
    folder = paths.feedback(spec.name)
    files, refusal = refuse_unsupported(spec, paths, instance, folder, "feedback", "performance")
    return with_refusal(_judge_feedback(spec, paths, store, instance, cursor, folder, files), refusal)


def _judge_feedback(
    spec: ModelSpec, paths: PlatformPaths, store, instance: dg.DagsterInstance, cursor: str | None, folder: Path, files
) -> dg.SensorResult | dg.SkipReason:
    from ml_platform.stores.release import deployed_version

    state = json.loads(cursor) if cursor else {}
    files = {Watched.fingerprint(p): p for p in files}
    judged = set(state.get("judged", [])) & set(files)
    refused = set(state.get("refused", [])) & set(files)
    new = {fp: p for fp, p in sorted(files.items(), key=lambda item: item[1].name) if fp not in judged}
    if not new:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"no new feedback in {folder} since the last judgment"),
            cursor=json.dumps({"judged": sorted(judged), "refused": sorted(refused)}),
        )
    alias = spec.release.deployed_alias  # what scored the logged predictions: the version judged, and rolled back
    champion = deployed_version(store, spec)
    if champion is None:
        return dg.SkipReason(
            f"feedback waits in {folder}: {spec.name!r} has no {alias} whose predictions it could judge"
        )

    log = read_inference_log(paths, spec)
    outcomes, new_keys, events = _read_outcomes(spec, paths, champion.version, log, files, new, refused)
    cursor_after = json.dumps({"judged": sorted(judged | set(new)), "refused": sorted(refused)})
    good_new = sorted(p.name for fp, p in new.items() if fp not in refused)
    if not good_new:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"feedback refused, see the ledger: {[p.name for p in new.values()]}"),
            asset_events=events,
            cursor=cursor_after,
        )
    evidence = {
        "feedback_files": good_new,
        "alias": alias,
        "champion_version": champion.version,
        "inference_logs": sorted(set(log["batch_file"])) if not log.empty else [],
        "window_on": time_column(spec),
    }
    report, joined = _judge_live(spec, champion, log, outcomes, new_keys)
    if isinstance(report, str):  # nothing recorded to compare the live metric with
        _, event = record(paths, Decision(spec.name, "no-decision", "performance", report, {}, evidence))
        return dg.SensorResult(skip_reason=dg.SkipReason(report), asset_events=[*events, event], cursor=cursor_after)
    evidence["performance_table"] = report.table()
    scores = report.scores()
    if report.verdict != "drop":
        kind = "no-op" if report.verdict == "no-drop" else "no-decision"
        _, event = record(paths, Decision(spec.name, kind, "performance", report.reason, scores, evidence))
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"{kind}: {report.reason}"), asset_events=[*events, event], cursor=cursor_after
        )

    alert, alerted = _alert(spec, paths, store, champion.version, joined, report, scores, evidence)
    events += alerted
    held = hold_back(spec, paths, instance, datetime.now(UTC))
    if held:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"alert #{alert.id} recorded; no candidate requested: {held}"),
            asset_events=events,
            cursor=cursor_after,
        )
    metric = spec.policy.comparison_metric
    reason = f"the {alias}'s live {metric} dropped (alert #{alert.id}): a candidate on the latest data; {report.reason}"
    decision, event = record(
        paths, Decision(spec.name, "retrain", "performance", reason, scores, {**evidence, "alert_id": alert.id})
    )
    events.append(event)
    request = run_request(spec, decision, list(new), _drop_tags(champion.version, alert.id, report, good_new))
    return dg.SensorResult(run_requests=[request], asset_events=events, cursor=cursor_after)


def _drop_tags(champion: str, alert_id: int, report, feedback: list[str]) -> dict[str, str]:
    """The run tags of a candidate requested for a drop: what dropped, by how much, on which feedback."""
    live = {w.start[:10]: round(w.live, 4) for w in report.windows if w.live is not None}
    return {
        f"{RUN_TAG}champion": champion,
        f"{RUN_TAG}alert_id": str(alert_id),
        f"{RUN_TAG}metric": report.metric,
        f"{RUN_TAG}live": json.dumps(live, separators=(",", ":"))[:500],
        f"{RUN_TAG}reference": f"{report.reference:.4f}",
        f"{RUN_TAG}feedback": ",".join(feedback)[:500],
    }


def _read_outcomes(spec: ModelSpec, paths: PlatformPaths, champion: str, log, files: dict, new: dict, refused: set):
    """Every feedback file's outcomes that read and join, by file name; the keys of the new ones; the refusals.

    A new file that breaks the feedback contract is added to ``refused`` and recorded as ``no-decision``
    once; an older one that no longer reads is left out.
    """
    from ml_platform.errors import ContractViolation
    from ml_platform.rules.performance import join_outcomes, read_feedback
    from ml_platform.stores.snapshot import read_landing_file

    asset = ModelKeys(spec.name).batch_predictions.to_user_string()
    outcomes, new_keys, events = {}, set(), []
    for fp, path in files.items():
        if fp in refused:
            continue
        try:
            frame = read_feedback(
                read_landing_file(path, spec.limits, spec.csv_delimiter),
                key=spec.key_column,
                label=spec.label,
                label_values=spec.label_values,
                source=path.name,
                asset=asset,
            )
            join_outcomes(log, frame, key=spec.key_column, source=path.name, asset=asset)
        except ContractViolation as error:
            if fp not in new:
                continue
            refused.add(fp)
            evidence = {"feedback_file": path.name, "champion_version": champion}
            _, event = record(paths, Decision(spec.name, "no-decision", "performance", str(error), {}, evidence))
            events.append(event)
            continue
        outcomes[path.name] = frame
        if fp in new:
            new_keys |= set(frame[spec.key_column])
    return outcomes, new_keys, events


def _judge_live(spec: ModelSpec, champion, log, outcomes: dict, new_keys: set):
    """The champion's live metric judged in the windows the new outcomes touched, with the joined rows; or,
    as text, why there is nothing to judge it against."""
    import pandas as pd

    from ml_platform.rules.performance import MODEL_VERSION, join_outcomes, judge_windows, window_starts

    monitoring, asset = spec.monitoring, ModelKeys(spec.name).batch_predictions.to_user_string()
    everything = pd.concat([outcomes[name] for name in sorted(outcomes)], ignore_index=True)
    everything = everything.drop_duplicates(spec.key_column, keep="last")  # a later file corrects an earlier one
    joined = join_outcomes(log, everything, key=spec.key_column, source="all feedback", asset=asset)
    metric = spec.policy.comparison_metric
    reference = json.loads(champion.tags.get(f"{REGISTRY_TAG}metrics", "{}")).get(metric)
    if reference is None:
        reason = (
            f"champion v{champion.version} has no recorded {metric} (tag {REGISTRY_TAG}metrics): "
            "nothing to compare with"
        )
        return reason, joined
    mine = joined[joined[MODEL_VERSION].astype(str) == champion.version]
    touched = set(
        window_starts(mine[mine[spec.key_column].isin(new_keys)][time_column(spec)], monitoring.performance_window)
    )
    report = judge_windows(
        joined,
        version=champion.version,
        metric=metric,
        classes=spec.label_values,
        reference=float(reference),
        tolerance=monitoring.performance_tolerance,
        min_rows=monitoring.min_feedback_rows,
        width=monitoring.performance_window,
        time_column=time_column(spec),
        touched=touched,
        alias=spec.release.deployed_alias,
    )
    return report, joined


def _alert(spec: ModelSpec, paths: PlatformPaths, store, champion: str, joined, report, scores: dict, evidence: dict):
    """Record the drop as an ``alert`` and, where the spec allows it, roll the deployed alias back to its
    ``previous-*`` when that version did measurably better on the same rows; the alert and the events of both
    records.

    The version judged is the deployed alias's (``champion``, here, whichever alias that is); the
    comparison joins ``scores`` (as ``previous_champion`` or ``previous_production``), which the
    ``retrain`` record that follows the alert carries too.
    """
    comparison = None
    if spec.monitoring.rollback_on_drop:
        comparison = _compare_with_previous(spec, store, champion, joined, report)
        scores[_previous_alias(spec).replace("-", "_")] = (
            comparison if isinstance(comparison, str) else asdict(comparison)
        )
    alert, event = record(
        paths, Decision(spec.name, "alert", "performance", report.reason, scores, evidence, version=champion)
    )
    events = [event]
    if comparison is not None and not isinstance(comparison, str) and comparison.better:
        events.append(_roll_back(spec, paths, store, champion, comparison, alert))
    return alert, events


def _previous_alias(spec: ModelSpec) -> str:
    """Where the deployed alias's last holder is kept for rollback: ``previous-champion`` or ``previous-production``."""
    return PREVIOUS_PRODUCTION if spec.release.deployed_alias == PRODUCTION else PREVIOUS_CHAMPION


def _compare_with_previous(spec: ModelSpec, store, champion: str, joined, report):
    """The deployed alias's previous holder re-scored on the logged inputs of the windows that dropped, against
    the version that served them."""
    from ml_platform.rules.performance import (
        MODEL_VERSION,
        OUTCOME,
        PREDICTION,
        compare_on_same_rows,
        window_starts,
    )
    from ml_platform.stores.release import alias_version

    previous = alias_version(store, spec.name, _previous_alias(spec))
    if previous is None or previous == champion:
        return f"no {_previous_alias(spec)} to roll back to"
    mine = joined[joined[MODEL_VERSION].astype(str) == champion]
    starts = window_starts(mine[time_column(spec)], spec.monitoring.performance_window)
    dropped = {w.start for w in report.dropped_windows}
    rows = mine[starts.map(lambda s: s.isoformat()).isin(dropped).to_numpy()]
    predicted = load_model(store, spec.name, previous).predict(rows[list(spec.features)])
    return compare_on_same_rows(
        rows[OUTCOME].to_numpy(),
        rows[PREDICTION].to_numpy(),
        predicted,
        metric=spec.policy.comparison_metric,
        classes=spec.label_values,
        margin=spec.monitoring.rollback_margin,
        champion=champion,
        previous=previous,
        names=(spec.release.deployed_alias, _previous_alias(spec)),
    )


def _roll_back(spec: ModelSpec, paths: PlatformPaths, store, champion: str, comparison, alert) -> dg.AssetObservation:
    """Move the alias judged (``spec.release.deployed_alias``) back to the version that did better, and record it.

    Only that alias moves: a drop of ``production`` never moves ``champion``, nor the reverse. The
    registry may refuse (the previous version's gates did not all pass, or an alias moved meanwhile):
    that refusal is recorded, not raised, so the sensor's cursor still advances and the alert is not
    raised again on the next tick.
    """
    from ml_platform.errors import PromotionBlocked
    from ml_platform.stores.registry import rollback
    from ml_platform.stores.release import rollback_production

    alias, previous = spec.release.deployed_alias, _previous_alias(spec)
    reason = f"live performance of {alias} dropped (alert #{alert.id}); {comparison.reason}"
    events = []

    def record_move(move) -> None:  # under the registry lock: no reconciliation sees the move unrecorded
        evidence = {"alias": alias, "rolled_back_from": move.replaced, "restored": move.version, "alert_id": alert.id}
        if alias == PRODUCTION:
            evidence["moves"] = {alias: [move.replaced, move.version], previous: [move.version, move.replaced]}
        decision = Decision(spec.name, "rolled-back", "performance", f"{reason} ({alias} from v{move.replaced} to "
                            f"v{move.version})", {"comparison": asdict(comparison)}, evidence, version=move.version,
                            actor=ACTOR)  # fmt: skip
        events.append(record(paths, decision)[1])

    try:
        if alias == PRODUCTION:
            rollback_production(store, spec.name, ACTOR, reason, on_moved=record_move)
        else:
            rollback(store, spec.name, ACTOR, reason, to=comparison.previous_version, on_moved=record_move)
    except (PromotionBlocked, LookupError) as error:
        refusal = f"no rollback of {alias} to v{comparison.previous_version}, the registry refused: {error}"
        evidence = {"alert_id": alert.id, "alias": alias, "champion_version": champion}
        _, event = record(paths, Decision(spec.name, "no-decision", "performance", refusal, {}, evidence))
        return event
    return events[0]


def scoring_definitions(spec: ModelSpec) -> dg.Definitions:
    """The model's ``batch_predictions`` asset and scoring sensor, and its performance sensor when the spec
    turns it on."""
    partitions = batches_partitions(spec)
    names = ModelKeys(spec.name)
    key = names.batch_predictions

    @dg.asset(
        key=key,
        deps=[names.registry],
        partitions_def=partitions,
        group_name=names.serving_group,
        kinds={"mlflow", "parquet"},
        retry_policy=INFRASTRUCTURE_RETRY,
        description=f"One scoring batch of {spec.name!r} (a file in <home>/scoring/{spec.name}/) predicted by the "
        "champion, kept in the inference log with the model version, the batch's SHA-256 and the time.",
    )
    def batch_predictions(context: dg.AssetExecutionContext, platform: PlatformHome, mlflow: MlflowStore):
        record = step_recorder(context, platform.paths())
        with evidence_failures(BATCH_PREDICTIONS, spec.name, mlflow.tracking_uri, context.retry_number):
            metadata = score_batch(spec, platform.paths(), mlflow.store(), context.partition_key, record)
        context.log.info(
            f"{metadata['rows']:,} rows of {metadata['batch_file']} scored by v{metadata['model_version']}"
            + (" (reused)" if metadata["reused"] else "")
        )
        return dg.MaterializeResult(
            metadata=metadata,
            data_version=dg.DataVersion(f"{metadata['batch_sha256']}-v{metadata['model_version']}"),
        )

    sensors = [
        model_sensor(
            spec,
            "scoring",
            judge_scoring_folder,
            f"Adds a partition of {key.to_user_string()} for each file landing in <home>/scoring/{spec.name}/ "
            "and requests its scoring by the champion.",
            asset_selection=[key],
        )
    ]
    if spec.monitoring.performance_tolerance is not None:
        rollback = (
            ", and rolls back when the previous champion did measurably better"
            if spec.monitoring.rollback_on_drop
            else ""
        )
        sensors.append(
            model_sensor(
                spec,
                "performance",
                judge_performance,
                f"Joins outcomes landing in <home>/feedback/{spec.name}/ with the inference log and judges the "
                f"champion's live {spec.policy.comparison_metric} per window; a drop beyond "
                f"{spec.monitoring.performance_tolerance:g} raises an alert and requests a candidate run{rollback}.",
                job_name=names.lifecycle_job,
            )
        )
    return dg.Definitions(assets=[batch_predictions], sensors=sensors)
