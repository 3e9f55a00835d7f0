"""The release sensor and the ``<model>/deployment`` asset: the online gate, run by Dagster (platform-owned).

Every tick, ``<model>_release_sensor`` judges the release in progress (the ``canary`` alias) with
``ml_platform.rules.release`` over the online inference log of its baking window and, when outcomes
have landed in ``<home>/feedback/<model>/``, over both versions' predictions of the same labelled rows
(each row's served prediction, and the other version's re-score of the logged inputs). A ``promote``
moves production to the canary (and keeps the old one as ``previous-production``); a ``rollback``
removes the canary and leaves production as it was. Exactly one of them happens, under the registry
lock and only while the canary carries the release id that was judged (``stores.release``).

Each move is a ledger record (``<model>/decisions``) and an observation of ``<model>/deployment``
with the gate's table and a figure of the two cohorts side by side; ``ml-platform release``'s manual
``promote`` and ``abort`` go through the same functions with the same evidence. While the gate says
``wait`` the tick records nothing: the sensor's skip reason says what it waits for.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import dagster as dg

from ml_platform.defs.decisions import record
from ml_platform.defs.scoring import load_model
from ml_platform.defs.triggers import model_sensor, refuse_unsupported, with_refusal
from ml_platform.keys import CANARY, ModelKeys
from ml_platform.rules.spec import ModelSpec
from ml_platform.settings import PlatformPaths
from ml_platform.stores.ledger import Decision
from ml_platform.stores.release import (
    RELEASE_TRIGGER,
    ActiveRelease,
    ReleaseMove,
    conclude_release,
    read_online_log,
)

ACTOR = "release-gate"


def evaluate(spec: ModelSpec, paths: PlatformPaths, store, active: ActiveRelease, now: datetime | None = None):
    """The online gate's judgment of the release in progress, from the log and the feedback so far."""
    import pandas as pd

    from ml_platform.rules.release import judge_release, utc, window_rows

    if active.production is None:
        raise ValueError(f"release {spec.name!r}: canary v{active.version} has no production to be compared with")
    try:
        started = utc(active.started_at)
    except ValueError as error:
        raise ValueError(
            f"release {spec.name!r}: canary v{active.version}'s tag release_started_at is {active.started_at!r}, "
            "not an ISO-8601 time; abort the release and start it again"
        ) from error
    log = read_online_log(paths.inference(spec.name), started.to_pydatetime())
    production_rows, canary_rows = window_rows(
        log,
        production=active.production,
        canary=active.version,
        mode=active.mode,
        started_at=started,
        window=spec.release.window,
    )
    labelled = labelled_pairs(spec, paths, store, pd.concat([production_rows, canary_rows]), active)
    return judge_release(
        production_rows,
        canary_rows,
        release=spec.release,
        classes=spec.label_values,
        metric=spec.policy.comparison_metric,
        production=active.production,
        canary=active.version,
        started_at=started,
        now=now or datetime.now(UTC),
        labelled=labelled,
    )


def labelled_pairs(spec: ModelSpec, paths: PlatformPaths, store, rows, active: ActiveRelease):
    """The window's answered requests that have an outcome, with both versions' predictions of each.

    A row's served prediction is taken from the log; the other version re-scores the logged inputs
    (in shadow mode both are usually logged already). Feedback files that break their contract are
    left out here: the performance sensor refuses them and records why. A file of a format the platform
    does not read is never listed here: the release sensor names it in its skip reason and the ledger.
    """
    import pandas as pd

    from ml_platform.errors import ContractViolation
    from ml_platform.rules.performance import MODEL_VERSION, OUTCOME, PREDICTION, join_outcomes, read_feedback
    from ml_platform.rules.release import CANARY_PREDICTION, OK, PRODUCTION_PREDICTION, STATUS
    from ml_platform.stores.snapshot import list_landing_files, read_landing_file

    key = spec.key_column
    files = list_landing_files(paths.feedback(spec.name))
    if key is None or not files or rows.empty:
        return None
    asset = ModelKeys(spec.name).deployment.to_user_string()
    outcomes = []
    for path in files:
        try:
            frame = read_landing_file(path, spec.limits, spec.csv_delimiter)
            outcomes.append(
                read_feedback(
                    frame, key=key, label=spec.label, label_values=spec.label_values, source=path.name, asset=asset
                )
            )
        except ContractViolation:
            continue
    answered = rows[(rows[STATUS] == OK).to_numpy()]
    if not outcomes or answered.empty:
        return None
    everything = pd.concat(outcomes, ignore_index=True).drop_duplicates(key, keep="last")
    everything = everything[everything[key].isin(set(answered[key].astype(str)))]
    if everything.empty:
        return None
    joined = join_outcomes(answered, everything, key=key, source="feedback", asset=asset)
    inputs = joined.drop_duplicates(key, keep="last").set_index(key)
    pairs = pd.DataFrame({OUTCOME: inputs[OUTCOME]})
    for version, column in ((active.version, CANARY_PREDICTION), (active.production, PRODUCTION_PREDICTION)):
        served = joined[joined[MODEL_VERSION].astype(str) == version].set_index(key)[PREDICTION]
        pairs[column] = served.reindex(pairs.index)
        missing = pairs[column].isna().to_numpy()
        if missing.any():
            model = load_model(store, spec.name, version)
            pairs.loc[missing, column] = model.predict(inputs.loc[missing, list(spec.features)])
    return pairs.reset_index(drop=True)


def release_decision(spec: ModelSpec, move: ReleaseMove, reason: str, actor: str, judgment=None) -> Decision:
    """The ledger record of a release move, with the gate's evidence when there is a judgment."""
    if move.kind == "no-op":
        raise ValueError(f"release {spec.name!r}: a no-op ({move.note}) moved nothing and is not recorded")
    kind = "promoted" if move.kind == "first-release" else move.kind
    evidence = {"release_id": move.release_id, "moves": move.moves, "release": move.kind}
    scores = {}
    if judgment is not None:
        evidence["gate_table"] = judgment.table()
        scores = judgment.scores()
    return Decision(spec.name, kind, RELEASE_TRIGGER, f"{reason}; {move.note}", scores, evidence, move.version, actor)


def deployment_observation(spec: ModelSpec, recorded: Decision, judgment=None) -> dg.AssetObservation:
    """A release move as an observation of ``<model>/deployment``: the verdict, its table and its figure."""
    metadata = {
        "decision": recorded.decision,
        "release": recorded.evidence.get("release", ""),
        "reason": recorded.reason,
        "version": recorded.version or "",
        "release_id": recorded.evidence.get("release_id") or "",
        "ledger_id": recorded.id if recorded.id is not None else -1,
        "moves": dg.MetadataValue.json(recorded.evidence.get("moves", {})),
    }
    if judgment is not None:
        from ml_platform.rules.figures import markdown_image, png_bytes
        from ml_platform.rules.release import release_figure

        metadata["verdict"] = judgment.verdict
        metadata["gate"] = dg.MetadataValue.md(judgment.table())
        title = f"{spec.name}: canary v{judgment.canary.version} vs production v{judgment.production.version}"
        metadata["cohorts"] = dg.MetadataValue.md(markdown_image(png_bytes(release_figure(judgment, title)), title))
    return dg.AssetObservation(asset_key=ModelKeys(spec.name).deployment, metadata=metadata)


def record_release(paths: PlatformPaths, spec: ModelSpec, decision: Decision, judgment=None) -> list:
    """Append a release move to the ledger; its observations of ``decisions`` and ``deployment``."""
    recorded, event = record(paths, decision)
    return [event, deployment_observation(spec, recorded, judgment)]


def report_events(events: list) -> None:
    """Show events recorded outside a run (a command's release moves) on the configured Dagster instance."""
    with dg.DagsterInstance.get() as instance:
        for event in events:
            instance.report_runless_asset_event(event)


def apply_verdict(spec: ModelSpec, paths: PlatformPaths, store, active: ActiveRelease, judgment, actor: str) -> list:
    """Promote or roll back as ``judgment`` says; the events to report. Nothing on ``wait``.

    Raises:
        PromotionBlocked: the release was decided meanwhile (by a person or another judge).
    """
    if judgment.verdict == "wait":
        return []
    move = conclude_release(store, spec.name, active.release_id, judgment.verdict, judgment.reason)
    return record_release(paths, spec, release_decision(spec, move, judgment.reason, actor, judgment), judgment)


def judge_release_tick(
    spec: ModelSpec, paths: PlatformPaths, store, instance: dg.DagsterInstance, cursor: str | None
) -> dg.SensorResult | dg.SkipReason:
    """One tick of the release sensor (see the module docstring)."""
    from ml_platform.errors import PromotionBlocked
    from ml_platform.stores.release import active_release

    active = active_release(store, spec.name)
    if active is None:
        return dg.SkipReason(f"no release of {spec.name!r} in progress (no {spec.name}@canary)")
    if active.problem is not None:  # no release of the platform's: nothing to judge, the server routes nothing to it
        _record_hand_set_canary(spec, paths, instance, active)
        return dg.SkipReason(f"canary v{active.version} not judged: {active.problem}")
    _, refusal = refuse_unsupported(spec, paths, instance, paths.feedback(spec.name), "feedback", RELEASE_TRIGGER)
    judgment = evaluate(spec, paths, store, active)
    if judgment.verdict == "wait":
        return with_refusal(dg.SkipReason(f"canary v{active.version}: {judgment.reason}"), refusal)
    try:
        events = apply_verdict(spec, paths, store, active, judgment, ACTOR)
    except PromotionBlocked as error:
        return with_refusal(
            dg.SkipReason(f"canary v{active.version}: {judgment.verdict} not applied: {error}"), refusal
        )
    return dg.SensorResult(asset_events=events)


def _record_hand_set_canary(spec: ModelSpec, paths: PlatformPaths, instance: dg.DagsterInstance, active) -> None:
    """Record a ``canary`` set outside ``release start`` once, as an ``unrecorded-move`` (``history`` shows it)."""
    from ml_platform.defs.decisions import runless_recorder
    from ml_platform.stores.recovery import UNRECORDED_MOVE

    evidence = {"alias": CANARY, "to_version": active.version, "moves": {CANARY: [None, active.version]}}
    decision = Decision(spec.name, UNRECORDED_MOVE, RELEASE_TRIGGER, active.problem, {}, evidence, active.version)
    key = f"{UNRECORDED_MOVE}:{spec.name}:{CANARY}:{hashlib.sha256(active.problem.encode()).hexdigest()[:16]}"
    runless_recorder(paths, instance)(decision, key)


def release_definitions(spec: ModelSpec) -> dg.Definitions:
    """The model's ``deployment`` asset (observed: its records are release moves) and its release sensor."""
    keys = ModelKeys(spec.name)
    release = spec.release
    deployment = dg.AssetSpec(
        keys.deployment,
        deps=[dg.AssetKey([spec.name, "registry_entry"])],
        group_name=keys.serving_group,
        kinds={"mlflow"},
        description=f"What users of {spec.name!r} are served: the {release.deployed_alias!r} alias, moved only by "
        "releases. Each observation is one release move (first release, canary started, promoted, rolled back) "
        "with the online gate's table and a figure of the two cohorts.",
    )
    sensor = model_sensor(
        spec,
        "release",
        judge_release_tick,
        f"Judges the canary of {spec.name!r} against production over a baking window of {release.window} "
        f"(error rate <= {release.max_error_rate:g}, p99 ratio <= {release.max_p99_ratio:g}, prediction shift "
        f"<= {release.max_prediction_shift:g}, live {spec.policy.comparison_metric} within "
        f"{release.metric_tolerance:g}); promotes or rolls back.",
    )
    return dg.Definitions(assets=[deployment], sensors=[sensor])
