"""Retraining triggers: a drift sensor, a new-data sensor and a hybrid schedule, per model.

A trigger only asks for a *candidate*: it requests a run of the model's whole graph
(``<model>_lifecycle``, from ``dataset_snapshot`` on), in which the blocking gates decide, as in any
other run, whether anything is registered or promoted. Every judgment -- retrain, no-op, no decision --
goes to the decision ledger and shows as an observation of ``<model>/decisions``.

- **Drift sensor**: judges the batches that landed in the model's landing folder since the champion's
  training snapshot (files not among that snapshot's sources), against that snapshot -- and, when the
  spec sets ``monitoring.drift_on_scoring``, the batches landing in its scoring folder: the traffic the
  champion serves. Its cursor records which batches it judged, so a batch is judged once; a batch too
  small to judge waits for more rows, and its "no decision" is recorded once. Each judgment's
  observation carries histograms of the reference against the batch (on samples: a picture, not a
  measure).
- **New-data sensor** (when the spec sets ``monitoring.new_data_rows``): enough new rows since the
  champion's snapshot justify a candidate without drift.
- **Hybrid schedule**: a periodic "is retraining justified now?" that weighs the champion's age, the
  new volume and the drift of everything new, and records its answer either way.

No trigger requests a run while one of the model's runs is in progress, or within the spec's
cool-down after the last ``retrain`` decision of any trigger (read from the ledger, so sensors and
schedule share it).

This module is the Dagster side: what each trigger reads, its cursor, its ledger record and its run
request. The verdicts -- retrain, no-op, no decision, and the cool-down -- come from
``ml_platform.rules.retraining``, the rules the ``decide`` stage command applies too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import dagster as dg

from ml_platform.defs.decisions import record, runless_recorder
from ml_platform.defs.location_sensors import ModelTrigger, declare
from ml_platform.defs.resources import MlflowStore, PlatformHome
from ml_platform.keys import DECISION_TAG, MODEL_TAG, REGISTRY_TAG, RUN_TAG, TRIGGER_TAG, ModelKeys
from ml_platform.rules.retraining import (
    ChampionFacts,
    Observed,
    RetrainingDecision,
    champion_age,
    cool_down_until,
    decide_retraining,
    measure_monitored_drift,
)
from ml_platform.rules.spec import ModelSpec
from ml_platform.settings import PlatformPaths
from ml_platform.stores.ledger import Decision, Ledger

FIGURE_SAMPLE_ROWS = 5_000  # rows of each side drawn in the drift histograms: enough for a shape, cheap to draw
IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]

# What an unsupported file in a folder a trigger reads is recorded as, and what it was not used for.
UNREAD = {
    "landing": ("no-decision", "new data not judged"),
    "scoring": ("rejected", "scoring batch not scored"),
    "feedback": ("no-decision", "feedback not read"),
}


@dataclass(frozen=True)
class Watched:
    """What a trigger looks at: the champion, its training snapshot, and what landed since."""

    champion_version: str
    snapshot_id: str
    promoted_at: str | None
    new_files: tuple[Path, ...]

    @property
    def champion(self) -> ChampionFacts:
        return ChampionFacts(self.champion_version, self.snapshot_id, self.promoted_at)

    @staticmethod
    def fingerprint(path: Path) -> str:
        stat = path.stat()
        return f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}"


def watch(spec: ModelSpec, paths: PlatformPaths, store, record=None) -> Watched | str:
    """The champion and the landing files that are not in its training snapshot, or why there is nothing to watch.

    It starts by reconciling the registry with the ledger (``stores.recovery.reconcile``: the champion's
    alias lookup, plus one registry query and one ledger query), so a promotion left half done by a killed
    run is finished and a champion moved by hand is recorded on the next tick; ``record`` records that.
    """
    from ml_platform.stores.recovery import reconcile
    from ml_platform.stores.snapshot import SNAPSHOT_ID_PATTERN, file_sha256, list_landing_files, read_manifest

    champion = reconcile(store, paths, spec.name, record).current
    if champion is None:
        return f"{spec.name!r} has no champion yet: there is no reference to judge new data against"
    snapshot_id = champion.tags.get(f"{REGISTRY_TAG}snapshot_id", "")
    if not SNAPSHOT_ID_PATTERN.fullmatch(snapshot_id):  # a tag is registry data, not a path to follow
        return f"the champion v{champion.version}'s snapshot tag {snapshot_id[:80]!r} is not a snapshot id"
    snapshot_path = paths.snapshots(spec.name) / snapshot_id
    if not snapshot_path.is_dir():
        return (
            f"the champion v{champion.version}'s training snapshot {snapshot_id[:12] or '(no tag)'} is not under "
            f"{paths.snapshots(spec.name)}: no reference to judge new data against"
        )
    sources = {(s.name, s.bytes): s.sha256 for s in read_manifest(snapshot_path).sources}
    new = []
    for path in list_landing_files(spec.landing_path(paths.home)):
        known = sources.get((path.name, path.stat().st_size))
        if known is None or _sha256(Watched.fingerprint(path), str(path), file_sha256) != known:
            new.append(path)
    promoted_at = champion.tags.get(f"{REGISTRY_TAG}promoted_at")
    return Watched(champion.version, snapshot_id, promoted_at, tuple(new))


_hashes: dict[str, str] = {}


def _sha256(fingerprint: str, path: str, file_sha256) -> str:
    """A landing file's hash, computed once per (name, size, modification time)."""
    if fingerprint not in _hashes:
        _hashes[fingerprint] = file_sha256(Path(path))
    return _hashes[fingerprint]


@lru_cache(maxsize=4)
def reference_for(snapshots_root: str, snapshot_id: str, features: tuple[str, ...]):
    """The champion's training snapshot prepared for drift, and a sample of it for the histograms,
    once per snapshot and process."""
    from ml_platform.rules.drift import Reference
    from ml_platform.stores.snapshot import load_snapshot

    _, frame = load_snapshot(Path(snapshots_root), snapshot_id)
    reference = Reference.from_frame(frame, features, name=f"champion's training snapshot {snapshot_id[:12]}")
    return reference, _sample(frame[list(features)])


def _sample(frame):
    return frame.sample(n=FIGURE_SAMPLE_ROWS, random_state=0) if len(frame) > FIGURE_SAMPLE_ROWS else frame


def drift_figures(reference_sample, batch, report, title: str) -> dict[str, str]:
    """The drift histograms as a Markdown image for a decision's observation, drawn on samples.

    A figure that cannot be drawn never costs the decision: the observation says why instead.
    """
    from ml_platform.rules.figures import drift_histograms_figure, markdown_image, png_bytes

    try:
        figure = drift_histograms_figure(reference_sample, _sample(batch), report, title)
    except ValueError as error:
        return {"drift_histograms": f"(no histograms: {error})"}
    return {"drift_histograms": markdown_image(png_bytes(figure), title)}


def drift_batches(spec: ModelSpec, paths: PlatformPaths, watched: Watched) -> dict[str, Path]:
    """The files the drift sensor judges, by fingerprint: new landing files, and scoring batches if the spec says so.

    Scoring batches are never in a training snapshot, so every one of them is new to the reference;
    their fingerprints carry the folder, so a scoring and a landing file of one name stay apart.
    """
    from ml_platform.stores.snapshot import list_landing_files

    batches = {Watched.fingerprint(p): p for p in watched.new_files}
    if spec.monitoring.drift_on_scoring:
        batches |= {f"scoring/{Watched.fingerprint(p)}": p for p in list_landing_files(paths.scoring(spec.name))}
    return batches


def refuse_unsupported(
    spec: ModelSpec, paths: PlatformPaths, instance: dg.DagsterInstance, folder: Path, role: str, trigger: str
) -> tuple[tuple[Path, ...], str]:
    """The files of a landing, scoring or feedback ``folder`` that are read, and the refusal of those that are
    not, or "".

    A file dropped there is meant to be read: passed over in silence, its owner would see only "nothing
    new". Each unsupported file is recorded in the ledger (``UNREAD[role]``) under a key of its name, size
    and modification time, so a sensor ticking every 30 s records it once, and a file replaced under the
    same name again; the refusal goes to the tick's skip reason for as long as the file stays.
    """
    from ml_platform.stores.landing import survey, unsupported_refusal

    entries = survey(folder)
    if not entries.unsupported:
        return entries.files, ""
    kind, what = UNREAD[role]
    keys = ModelKeys(spec.name)  # the asset that would have read the file, as its contract's refusals say
    asset = (keys.snapshot if role == "landing" else keys.batch_predictions).to_user_string()
    recorder = runless_recorder(paths, instance)
    for name in entries.unsupported:
        try:
            fingerprint = Watched.fingerprint(folder / name)
        except FileNotFoundError:  # moved out since the survey: nothing left to refuse
            continue
        reason = f"{asset}: {what}: {unsupported_refusal([name], folder, role)}"
        evidence = {f"{role}_file": name, "folder": str(folder)}
        recorder(
            Decision(spec.name, kind, trigger, reason, {}, evidence), f"unsupported:{spec.name}:{role}:{fingerprint}"
        )
    return entries.files, f"{what}: {unsupported_refusal(entries.unsupported, folder, role)}"


def with_refusal(result: dg.SensorResult | dg.SkipReason, refusal: str) -> dg.SensorResult | dg.SkipReason:
    """A tick's result whose skip reason also names the unsupported files, so "nothing new" never hides them.

    A tick that requests runs has no skip reason: the files' ledger records (and their observations of
    ``<model>/decisions``) name them then.
    """
    if not refusal:
        return result
    if isinstance(result, dg.SkipReason):
        return dg.SkipReason(f"{result.skip_message}; {refusal}")
    if result.skip_reason is None:
        return result
    return result._replace(skip_reason=dg.SkipReason(f"{result.skip_reason.skip_message}; {refusal}"))


def batch_name(paths: PlatformPaths, spec: ModelSpec, path: Path) -> str:
    """A batch file as the ledger names it: the bare name for a landing file, ``scoring/<name>`` for a scoring batch."""
    return f"scoring/{path.name}" if path.parent == paths.scoring(spec.name) else path.name


def read_batch(spec: ModelSpec, files: Sequence[Path]):
    """The new files as one frame, read as the snapshot reads them: the spec's limits and CSV delimiter.

    A file the snapshot would refuse (too large, another delimiter) is refused here too, by name, so a
    trigger never judges data the lifecycle it requests would not accept.
    """
    import pandas as pd

    from ml_platform.stores.snapshot import read_landing_file

    frames = [read_landing_file(path, spec.limits, spec.csv_delimiter) for path in files]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def hold_back(spec: ModelSpec, paths: PlatformPaths, instance: dg.DagsterInstance, now: datetime) -> str | None:
    """Why no run may be requested now (a run in progress, the cool-down), or ``None``."""
    job = ModelKeys(spec.name).lifecycle_job
    if instance.get_runs(filters=dg.RunsFilter(job_name=job, statuses=IN_PROGRESS), limit=1):
        return f"a run of {job} is in progress: its gates decide first"
    last = Ledger.for_home(paths.home).latest(spec.name, ["retrain"])
    until = cool_down_until(spec, last.recorded_at if last else None, now)
    if last is None or until is None:
        return None
    return (
        f"cool-down: the last retrain decision ({last.trigger}, ledger #{last.id}) was at {last.recorded_at}; "
        f"no new request before {until.isoformat(timespec='seconds')}"
    )


def run_request(spec: ModelSpec, decision: Decision, key_parts: Sequence[str], tags: dict[str, str]) -> dg.RunRequest:
    """A request for the model's whole graph, tagged with the trigger and the decision behind it."""
    digest = hashlib.sha256("\n".join(sorted(key_parts)).encode()).hexdigest()[:16]
    return dg.RunRequest(
        run_key=f"{decision.trigger}-{digest}",
        job_name=ModelKeys(spec.name).lifecycle_job,
        tags={
            TRIGGER_TAG: decision.trigger,
            DECISION_TAG: str(decision.id),
            MODEL_TAG: spec.name,
            f"{RUN_TAG}reason": decision.reason[:500],
            **tags,
        },
    )


def record_decision(
    paths: PlatformPaths,
    spec: ModelSpec,
    trigger: str,
    decided: RetrainingDecision,
    scores: dict,
    evidence: dict,
    figures: dict[str, str] | None = None,
) -> tuple[Decision, dg.AssetObservation]:
    """Append a trigger's verdict to the ledger; return the record and its observation of ``<model>/decisions``."""
    return record(paths, Decision(spec.name, decided.action, trigger, decided.reason, scores, evidence), figures)


def _cursor(text: str | None) -> dict:
    return json.loads(text) if text else {}


def _now() -> datetime:
    return datetime.now(UTC)


def judge_drift(
    spec: ModelSpec, paths: PlatformPaths, store, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    """One tick of the drift sensor (see the module docstring)."""
    state = _cursor(cursor)
    judged, pending = set(state.get("judged", [])), set(state.get("pending", []))
    watched = watch(spec, paths, store, runless_recorder(paths, instance))
    if isinstance(watched, str):
        return dg.SkipReason(watched)
    present = drift_batches(spec, paths, watched)
    judged &= set(present)  # forget files that left the landing folder
    unjudged = {fp: p for fp, p in present.items() if fp not in judged}
    if not unjudged:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"no new batch since the last judgment (champion v{watched.champion_version})"),
            cursor=json.dumps({"judged": sorted(judged), "pending": sorted(pending & set(present))}),
        )
    if set(unjudged) == pending:
        return dg.SkipReason(
            f"the batch {sorted(p.name for p in unjudged.values())} is still below monitoring.min_batch_rows="
            f"{spec.monitoring.min_batch_rows:,}; waiting for more rows (its 'no decision' is in the ledger)"
        )
    reason = hold_back(spec, paths, instance, _now())
    if reason:
        return dg.SkipReason(reason)
    return _judge_batches(spec, paths, watched, judged, unjudged)


def _judge_batches(
    spec: ModelSpec, paths: PlatformPaths, watched: Watched, judged: set[str], unjudged: dict[str, Path]
) -> dg.SensorResult:
    """Measure the drift of the unjudged batches together, decide, record, and request a run on ``retrain``.

    A batch too small to decide stays pending in the cursor, to be judged with the rows that follow.
    """
    files = [unjudged[fp] for fp in sorted(unjudged)]
    names = [batch_name(paths, spec, p) for p in files]
    evidence = {
        "batch_files": names,
        "champion_version": watched.champion_version,
        "reference_snapshot_id": watched.snapshot_id,
    }
    done = json.dumps({"judged": sorted(judged | set(unjudged)), "pending": []})
    try:
        reference, reference_sample = reference_for(
            str(paths.snapshots(spec.name)), watched.snapshot_id, tuple(spec.monitored_features)
        )
        batch = read_batch(spec, files)
        report = measure_monitored_drift(spec, reference, batch)
    except ValueError as error:  # an unreadable batch, a missing or empty monitored column
        unread = Observed(watched.champion, problem=f"the batch {names} cannot be judged: {error}")
        decision, event = record_decision(paths, spec, "drift", decide_retraining(spec, unread), {}, evidence)
        return dg.SensorResult(skip_reason=dg.SkipReason(decision.reason), asset_events=[event], cursor=done)

    decided = decide_retraining(spec, Observed(watched.champion, drift=report))
    scores = {
        "psi": report.scores(),
        "drifted": list(report.drifted_features),
        "batch_rows": report.batch_rows,
        "reference_rows": report.reference_rows,
        "required_drifted": report.required_drifted,
    }
    evidence["table"] = report.table()
    title = f"{spec.name}: {', '.join(names)[:80]} vs v{watched.champion_version}'s snapshot"
    figures = drift_figures(reference_sample, batch, report, title)
    decision, event = record_decision(paths, spec, "drift", decided, scores, evidence, figures)
    summary = ", ".join(f"{feature}={psi:.3f}" for feature, psi in report.scores().items())
    if decided.action == "no-decision":
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"{decided.reason} PSI: {summary}"),
            asset_events=[event],
            cursor=json.dumps({"judged": sorted(judged), "pending": sorted(unjudged)}),
        )
    if not decided.retrain:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"no-op: {decided.reason}. PSI: {summary}"), asset_events=[event], cursor=done
        )
    request = run_request(
        spec,
        decision,
        list(unjudged),
        {
            f"{RUN_TAG}psi": json.dumps(report.scores(), separators=(",", ":")),
            f"{RUN_TAG}drifted": ",".join(report.drifted_features),
            f"{RUN_TAG}batch": ",".join(names)[:500],
            f"{RUN_TAG}champion": watched.champion_version,
            f"{RUN_TAG}reference_snapshot": watched.snapshot_id,
        },
    )
    return dg.SensorResult(run_requests=[request], asset_events=[event], cursor=done)


def judge_new_data(
    spec: ModelSpec, paths: PlatformPaths, store, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    """One tick of the new-data sensor: are there enough rows that the champion never saw?"""
    watched = watch(spec, paths, store, runless_recorder(paths, instance))
    if isinstance(watched, str):
        return dg.SkipReason(watched)
    landing = spec.landing_path(paths.home)
    _, refusal = refuse_unsupported(spec, paths, instance, landing, "landing", "new-data")
    if refusal:  # dataset_snapshot refuses the whole folder while it is there: a run would fail on it
        return dg.SkipReason(f"no decision: {refusal}")
    present = sorted(Watched.fingerprint(p) for p in watched.new_files)
    if not present:
        return dg.SkipReason(f"nothing landed since champion v{watched.champion_version}'s snapshot")
    if present == _cursor(cursor).get("evaluated"):
        return dg.SkipReason("the new files are those already evaluated; waiting for more")
    reason = hold_back(spec, paths, instance, _now())
    if reason:
        return dg.SkipReason(reason)
    rows_per_file, problem = _count_rows(spec, watched.new_files, _cursor(cursor).get("rows", {}))
    rows = sum(rows_per_file.values()) if not problem else 0
    evidence = {
        "new_files": sorted(p.name for p in watched.new_files),
        "champion_version": watched.champion_version,
        "reference_snapshot_id": watched.snapshot_id,
    }
    scores = {"new_rows": rows, "required_rows": spec.monitoring.new_data_rows}
    unread = f"the new files cannot be read: {problem}" if problem else None
    decided = decide_retraining(spec, Observed(watched.champion, new_rows=rows, problem=unread))
    decision, event = record_decision(paths, spec, "new-data", decided, scores, evidence)
    # Row counts of the files present, so the next tick reads only what lands after this one: without
    # them every new file made the sensor re-read the whole pile (docs/benchmarks.md, load).
    cursor_after = json.dumps({"evaluated": present, "rows": rows_per_file})
    if not decided.retrain:
        skip = decision.reason if decided.action == "no-decision" else f"no-op: {decision.reason}"
        return dg.SensorResult(skip_reason=dg.SkipReason(skip), asset_events=[event], cursor=cursor_after)
    request = run_request(
        spec, decision, present, {f"{RUN_TAG}new_rows": str(rows), f"{RUN_TAG}champion": watched.champion_version}
    )
    return dg.SensorResult(run_requests=[request], asset_events=[event], cursor=cursor_after)


def _count_rows(spec: ModelSpec, files: Sequence[Path], counted: dict[str, int]) -> tuple[dict[str, int], str]:
    """Rows per file fingerprint, opening only the files not counted before; and the first read problem, if any."""
    rows_per_file = {}
    for path in sorted(files):
        fingerprint = Watched.fingerprint(path)
        if fingerprint not in counted:
            try:
                counted[fingerprint] = len(read_batch(spec, [path]))
            except ValueError as error:
                return rows_per_file, str(error)
        rows_per_file[fingerprint] = counted[fingerprint]
    return rows_per_file, ""


def judge_schedule(
    spec: ModelSpec, paths: PlatformPaths, store, instance: dg.DagsterInstance, now: datetime | None = None
) -> dg.RunRequest | dg.SkipReason:
    """The hybrid check: is retraining justified now, by the champion's age, the new volume or drift?

    Its answer is yes or no: a ``no-op`` is recorded whenever no rule asks for a candidate.
    """
    now = now or _now()
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    watched = watch(spec, paths, store, runless_recorder(paths, instance))
    if isinstance(watched, str):
        return dg.SkipReason(watched)
    scores: dict = {}
    evidence = {
        "new_files": sorted(p.name for p in watched.new_files),
        "champion_version": watched.champion_version,
        "reference_snapshot_id": watched.snapshot_id,
    }
    if watched.promoted_at:
        scores["champion_age_days"] = round(champion_age(watched.champion, now).total_seconds() / 86400, 2)
    report, rows, figures = _drift_of_new_files(spec, paths, watched, scores, evidence)
    scores["new_rows"] = rows
    decided = decide_retraining(spec, Observed(watched.champion, new_rows=rows, drift=report, now=now))
    held = hold_back(spec, paths, instance, now) if decided.retrain else None
    if not decided.retrain or held:
        why = held or f"not justified: {decided.reason}"
        decision, event = record(paths, Decision(spec.name, "no-op", "schedule", why, scores, evidence), figures)
        instance.report_runless_asset_event(event)
        return dg.SkipReason(f"no-op: {why}")
    decision, event = record_decision(paths, spec, "schedule", decided, scores, evidence, figures)
    instance.report_runless_asset_event(event)
    return run_request(spec, decision, [now.isoformat()], {f"{RUN_TAG}champion": watched.champion_version})


def _drift_of_new_files(spec: ModelSpec, paths: PlatformPaths, watched: Watched, scores: dict, evidence: dict):
    """The drift of everything landed since the champion's snapshot, its row count and histograms.

    A batch that cannot be measured leaves the drift out (``None``) and says why in ``evidence``.
    """
    if not watched.new_files:
        return None, 0, {}
    rows = 0
    try:
        batch = read_batch(spec, sorted(watched.new_files))
        rows = len(batch)
        reference, reference_sample = reference_for(
            str(paths.snapshots(spec.name)), watched.snapshot_id, tuple(spec.monitored_features)
        )
        report = measure_monitored_drift(spec, reference, batch)
    except ValueError as error:
        evidence["drift_error"] = str(error)
        return None, rows, {}
    scores["psi"] = report.scores()
    evidence["table"] = report.table()
    title = f"{spec.name}: new data vs v{watched.champion_version}'s snapshot"
    return report, rows, drift_figures(reference_sample, batch, report, title)


def model_sensor(spec: ModelSpec, kind: str, judge, description: str, **target) -> dg.SensorDefinition:
    """A sensor ``<model>_<kind>_sensor`` that runs ``judge(spec, paths, store, instance, cursor)`` every 30 s.

    Every trigger of the platform is this one shape, running by default (stop it in the UI); ``target``
    is the sensor's ``job_name`` or ``asset_selection``.
    """

    @dg.sensor(
        name=ModelKeys(spec.name).sensor(kind),
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=description,
        **target,
    )
    def _sensor(context: dg.SensorEvaluationContext, platform: PlatformHome, mlflow: MlflowStore):
        return judge(spec, platform.paths(), mlflow.store(), context.instance, context.cursor)

    declare(
        _sensor.name,
        ModelTrigger(spec, kind, judge, target.get("job_name"), tuple(target.get("asset_selection", ()))),
    )
    return _sensor


def trigger_definitions(spec: ModelSpec) -> dg.Definitions:
    """The model's triggers that its spec turns on, each running by default (stop them in the UI)."""
    job_name = ModelKeys(spec.name).lifecycle_job
    sensors, schedules = [], []
    if spec.monitoring.drift_sensor:
        where = "batch landing" + (" or scored" if spec.monitoring.drift_on_scoring else "")
        sensors.append(
            model_sensor(
                spec,
                "drift",
                judge_drift,
                f"Judges each {where} for {spec.name!r} against the champion's training snapshot "
                "(PSI per monitored feature); requests a candidate run when drift is significant.",
                job_name=job_name,
            )
        )
    if spec.monitoring.new_data_sensor and spec.monitoring.new_data_rows is not None:
        sensors.append(
            model_sensor(
                spec,
                "new_data",
                judge_new_data,
                f"Requests a candidate run for {spec.name!r} once {spec.monitoring.new_data_rows:,} rows "
                "landed since the champion's training snapshot, drift or not.",
                job_name=job_name,
            )
        )
    if spec.monitoring.schedule:

        @dg.schedule(
            name=ModelKeys(spec.name).retraining_check,
            cron_schedule=spec.monitoring.schedule,
            job_name=job_name,
            default_status=dg.DefaultScheduleStatus.RUNNING,
            description=f"Is retraining {spec.name!r} justified now? Weighs the champion's age, new volume and "
            "drift, and records the answer in the decision ledger either way.",
        )
        def retraining_check(context: dg.ScheduleEvaluationContext, platform: PlatformHome, mlflow: MlflowStore):
            return judge_schedule(
                spec, platform.paths(), mlflow.store(), context.instance, context.scheduled_execution_time
            )

        schedules.append(retraining_check)
    return dg.Definitions(sensors=sensors, schedules=schedules)
