"""One sensor per trigger kind for every model of a code location (platform-owned).

Each model's triggers are written as per-model sensors (``triggers.model_sensor``: drift, new data,
scoring, performance), and a single model's definitions keep them. A code location serves them as one
sensor per kind instead: at 100 models, 300 per-model sensors are 300 daemon evaluations every 30 s,
each a gRPC round trip to the code server and a tick record, and the daemon evaluated only half of them
in three minutes (docs/benchmarks.md, "Scale"). The location's sensor calls the same judge function for
each model, with that model's cursor, so decisions, ledger records and run requests (each for that
model's own job or asset) are exactly the per-model sensor's; its cursor is the JSON dict
``{"models": {model: that model's cursor}, "resume_after": model or null}``.

One tick stops starting new models after ``TICK_BUDGET_S``: when many batches land for many models at
once, a tick must end well within Dagster's 60 s limit for an evaluation, or no cursor would ever be
saved. The next tick resumes after the last model judged, so every model gets its turn. A model whose
judge raises keeps its cursor (it is judged again next tick), is named in the tick's log and skip
message, and does not stop the others.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from ml_platform.defs.resources import MlflowStore, PlatformHome
from ml_platform.keys import location_sensor
from ml_platform.rules.spec import ModelSpec

TICK_BUDGET_S = 20.0
INTERVAL_S = 30


@dataclass(frozen=True)
class ModelTrigger:
    """One model's trigger of one kind: what a per-model sensor judges, and what its run requests target."""

    spec: ModelSpec
    kind: str
    judge: Callable
    job_name: str | None = None
    asset_selection: tuple[dg.AssetKey, ...] = ()


_declared: dict[str, ModelTrigger] = {}


def declare(sensor_name: str, trigger: ModelTrigger) -> None:
    """Record what the per-model sensor ``sensor_name`` judges, so a location can serve it in one sensor."""
    _declared[sensor_name] = trigger


def one_sensor_per_kind(defs: dg.Definitions) -> dg.Definitions:
    """``defs`` with its per-model trigger sensors replaced by one sensor per kind over all their models."""
    sensors = list(defs.sensors or [])
    by_kind: dict[str, list[ModelTrigger]] = {}
    for sensor in sensors:
        if sensor.name in _declared:
            trigger = _declared[sensor.name]
            by_kind.setdefault(trigger.kind, []).append(trigger)
    if not by_kind:
        return defs
    jobs = {job.name: job for job in defs.jobs or []}
    kept = [sensor for sensor in sensors if sensor.name not in _declared]
    combined = [location_trigger_sensor(kind, triggers, jobs) for kind, triggers in sorted(by_kind.items())]
    return dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        schedules=defs.schedules,
        sensors=kept + combined,
        jobs=defs.jobs,
        resources=defs.resources,
        executor=defs.executor,
        loggers=defs.loggers,
        metadata=defs.metadata,
        component_tree=defs.component_tree,
    )


def location_trigger_sensor(kind: str, triggers: Sequence[ModelTrigger], jobs: dict) -> dg.SensorDefinition:
    """The ``kind`` sensor of a location: every model of ``triggers`` judged in one evaluation.

    A sensor that requests runs of several jobs must declare them all (``jobs=[...]``), and each
    request then names its own; a scoring sensor targets the union of the models' assets instead, and a
    sensor that only records (the release sensor) targets nothing.
    """
    triggers = sorted(triggers, key=lambda t: t.spec.name)
    job_names = sorted({t.job_name for t in triggers if t.job_name})
    keys = [key for t in triggers for key in t.asset_selection]
    target = {"jobs": [jobs[name] for name in job_names]} if job_names else {"asset_selection": keys} if keys else {}
    models = ", ".join(repr(t.spec.name) for t in triggers[:5]) + (" …" if len(triggers) > 5 else "")

    @dg.sensor(
        name=location_sensor(kind),
        minimum_interval_seconds=INTERVAL_S,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"The {kind} trigger of every model of this code location ({len(triggers)}: {models}), "
        "each judged with its own cursor as its own sensor would.",
        **target,
    )
    def _sensor(context: dg.SensorEvaluationContext, platform: PlatformHome, mlflow: MlflowStore):
        return judge_models(triggers, context, platform.paths(), mlflow.store())

    return _sensor


def judge_models(triggers: Sequence[ModelTrigger], context, paths, store) -> dg.SensorResult:
    """One tick over ``triggers``, within ``TICK_BUDGET_S``, resuming after the model the last tick ended on."""
    state = json.loads(context.cursor) if context.cursor else {}
    cursors: dict[str, str | None] = state.get("models", {})
    order = _resume_order([t.spec.name for t in triggers], state.get("resume_after"))
    by_name = {t.spec.name: t for t in triggers}
    outcome = _Outcome()
    started, resume_after = time.monotonic(), None
    for position, name in enumerate(order):
        if position and time.monotonic() - started > TICK_BUDGET_S:  # every tick judges at least one model
            outcome.waiting = len(order) - position
            resume_after = order[position - 1]
            break
        trigger = by_name[name]
        try:
            result = trigger.judge(trigger.spec, paths, store, context.instance, cursors.get(name))
        except Exception as error:  # one model's fault must not silence every other model's trigger
            context.log.exception(f"{location_sensor(trigger.kind)}: judging {name!r} failed")
            outcome.skip(name, f"FAILED ({type(error).__name__}: {str(error)[:200]})")
        else:
            cursors[name] = outcome.add(name, result, cursors.get(name))
    return outcome.result({"models": cursors, "resume_after": resume_after})


def _resume_order(names: list[str], resume_after: str | None) -> list[str]:
    if resume_after not in names:
        return names
    at = names.index(resume_after) + 1
    return names[at:] + names[:at]


@dataclass
class _Outcome:
    """What the models' results add up to in one tick."""

    run_requests: list = field(default_factory=list)
    events: list = field(default_factory=list)
    partition_requests: list = field(default_factory=list)
    skipped: dict[str, list[str]] = field(default_factory=dict)  # message (model name as <model>) -> models
    waiting: int = 0

    def skip(self, name: str, message: str) -> None:
        self.skipped.setdefault(message.replace(name, "<model>"), []).append(name)

    def add(self, name: str, result, cursor: str | None) -> str | None:
        """Take one model's ``SensorResult``, ``SkipReason`` or ``RunRequest``; return its next cursor."""
        if isinstance(result, dg.SkipReason):
            self.skip(name, result.skip_message or "skipped")
            return cursor
        if isinstance(result, dg.RunRequest):
            self.run_requests.append(result)
            return cursor
        self.run_requests += list(result.run_requests or [])
        self.events += list(result.asset_events or [])
        self.partition_requests += list(result.dynamic_partitions_requests or [])
        if result.skip_reason is not None and not result.run_requests:
            self.skip(name, result.skip_reason.skip_message or "skipped")
        return result.cursor if result.cursor is not None else cursor

    def summary(self) -> str:
        """One line per distinct reason: a reason most models share is said once, with how many."""
        lines = []
        for message, names in self.skipped.items():
            if len(names) == 1:
                lines.append(f"{names[0]}: {message.replace('<model>', names[0])}")
            else:
                lines.append(
                    f"{len(names)} models ({', '.join(names[:3])}{', …' if len(names) > 3 else ''}): {message}"
                )
        if self.waiting:
            lines.append(f"{self.waiting} model(s) wait for the next tick (time budget of {TICK_BUDGET_S:g} s)")
        return "\n".join(lines)[:4000] or "nothing to judge"

    def result(self, cursor: dict) -> dg.SensorResult:
        return dg.SensorResult(
            run_requests=self.run_requests,
            asset_events=self.events,
            dynamic_partitions_requests=self.partition_requests,
            skip_reason=None if self.run_requests else dg.SkipReason(self.summary()),
            cursor=json.dumps(cursor, sort_keys=True),
        )
