"""Running a model's job in this process on the configured Dagster instance, and reading back what happened.

The one execution path of the CLI: ``run``, ``demo`` and the CI stage commands call ``execute``, and
``execute_remote`` (ml_platform/cli/remote.py) reads a run on a deployment into the same ``RunOutcome``,
so an exit code means the same thing wherever the run happened.

While a job runs, the console shows one line per log record: the step bodies' progress and Dagster's
errors, without the stack traces Dagster attaches to a failed step and again to the failed run. A gate
failure is evidence, summarized after the run; the traces stay in the run's event log
(``ml-platform logs <run id>``, or the run's page in the Dagster UI).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any

from ml_platform.cli.exit_codes import ExitCode
from ml_platform.keys import MODEL_TAG
from ml_platform.settings import PlatformPaths, ensure_dagster_home
from ml_platform.stores.registry import ensure_mlflow_store

# Materialization metadata a later command needs (a CI job's outputs, the summary's registry note).
REPORTED_METADATA = ("snapshot_id", "features_id", "mlflow_run_id", "version", "promoted", "note")
CONSOLE_FORMAT, CONSOLE_DATE_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s", "%Y-%m-%d %H:%M:%S %z"
BLOCKING_CHECK_FAILED = "blocking asset check"  # Dagster's step failure for a failed gate: the gate says more


@dataclass
class Gate:
    """One asset check's verdict: the first line of ``description`` says what, the rest observed vs required."""

    asset: str
    check: str
    passed: bool
    description: str
    table: str = ""


@dataclass
class RunOutcome:
    """What a run left behind: its gates, the failures that were not gates, and the metadata worth reporting."""

    model: str
    run_id: str
    success: bool
    gates: list[Gate] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    evidence_failure: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    full_log: str = ""  # where the run's whole event log, stack traces included, can be read

    @property
    def exit_code(self) -> ExitCode:
        """Passed; refused by a gate or by evidence a step judged (a broken contract); or failed otherwise."""
        if self.success:
            return ExitCode.PASSED
        if self.evidence_failure or any(not gate.passed for gate in self.gates):
            return ExitCode.GATE_FAILED
        return ExitCode.INFRASTRUCTURE

    @property
    def message(self) -> str:
        if self.exit_code == ExitCode.GATE_FAILED:
            return "a gate stopped the run; the evidence is above"
        if self.exit_code == ExitCode.INFRASTRUCTURE:
            return "the run failed without a gate result (infrastructure or a crash): retry it"
        return ""

    def note_step_failure(self, step: str, message: str, evidence: bool) -> None:
        self.evidence_failure = self.evidence_failure or evidence
        if BLOCKING_CHECK_FAILED not in message:
            self.failures.append(f"{step}: {message.strip()}")

    def note_metadata(self, metadata: dict[str, Any]) -> None:
        self.outputs.update({name: metadata[name] for name in REPORTED_METADATA if name in metadata})


def execute(
    spec, job_name: str, assets: tuple[str, ...] | None = None, paths: PlatformPaths | None = None
) -> RunOutcome:
    """Run ``job_name`` (or, given ``assets``, a job of that name over those assets and their checks).

    Runs in this process on the persistent instance, so the run, its checks and its logs are in the
    Dagster UI like any other run.
    """
    import dagster as dg

    from ml_platform.definitions import build_definitions
    from ml_platform.keys import ModelKeys

    paths = paths or PlatformPaths.from_environment()
    ensure_dagster_home(paths)
    ensure_mlflow_store(paths)
    defs = build_definitions(paths, [spec])
    if assets is not None:
        keys = [ModelKeys(spec.name).asset(name) for name in assets]
        selection = dg.AssetSelection.assets(*keys) | dg.AssetSelection.checks_for_assets(*keys)
        defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job(job_name, selection=selection)]))
    job = defs.resolve_job_def(job_name).with_logger_defs({"console": _one_line_console_logger()})
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance, raise_on_error=False, run_config={"loggers": {"console": {"config": {}}}}
        )
    return _outcome(spec.name, result)


def reexecute_from_failure(run_id: str, paths: PlatformPaths | None = None) -> RunOutcome:
    """Re-execute a failed run of a model's job from its failed steps, as the UI's "Re-execute from failure".

    The steps that succeeded are not run again (their outputs are read back, verified as on any read);
    the new run is a child of the failed one in the UI and is judged by the same gates. A promotion the
    failed run left half done is finished or undone by its ``registry_entry`` (``stores.recovery``).

    Raises:
        LookupError: no run has that id, or it is no run of a model's job (``ml_platform/model`` tag).
        ValueError: the run did not fail (only a failed run has failed steps to start from).
    """
    import dagster as dg

    paths = paths or PlatformPaths.from_environment()
    ensure_dagster_home(paths)
    ensure_mlflow_store(paths)
    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        if run is None:
            raise LookupError(f"rerun {run_id}: no run with that id on the instance at {instance.root_directory}")
        model = run.tags.get(MODEL_TAG)
        if model is None:
            raise LookupError(
                f"rerun {run_id}: run of {run.job_name!r} is no run of a model's job (no {MODEL_TAG} tag); re-execute "
                "it from its page in the Dagster UI"
            )
        if run.status != dg.DagsterRunStatus.FAILURE:
            raise ValueError(
                f"rerun {run_id}: the run is {run.status.value}, not FAILURE: only a failed run is re-executed from "
                "failure (a run left STARTED by a worker that died is marked failed by run monitoring, or by "
                "'Terminate' on its page in the Dagster UI)"
            )
        job = dg.build_reconstructable_job(
            __name__, job_for_reexecution.__name__, reconstructable_args=(model, run.job_name, str(paths.home))
        )
        options = dg.ReexecutionOptions.from_failure(run_id, instance)
        result = dg.execute_job(job, instance, reexecution_options=options, raise_on_error=False)
        return _outcome(model, result)


def job_for_reexecution(model: str, job_name: str, home: str):
    """The job of ``model`` named ``job_name``, as ``execute`` builds it; module-level, so that Dagster can build
    it again wherever it runs a step (``dg.build_reconstructable_job``)."""
    from pathlib import Path

    from ml_platform.definitions import build_definitions
    from ml_platform.discovery import get_spec

    defs = build_definitions(PlatformPaths(Path(home)), [get_spec(model)])
    return defs.resolve_job_def(job_name).with_logger_defs({"console": _one_line_console_logger()})


def _outcome(model: str, result) -> RunOutcome:
    outcome = RunOutcome(model, result.run_id, result.success, full_log=f"ml-platform logs {result.run_id}")
    for evaluation in result.get_asset_check_evaluations():
        table = evaluation.metadata.get("gate")
        outcome.gates.append(
            Gate(
                evaluation.asset_key.to_user_string(),
                evaluation.check_name,
                evaluation.passed,
                evaluation.description or "",
                table.value if table is not None else "",
            )
        )
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        user = data.user_failure_data
        message = user.description if user and user.description else data.error.message if data.error else "failed"
        evidence = user is not None and bool(user.metadata) and "contract" in user.metadata
        outcome.note_step_failure(event.step_key, message, evidence)
    for materialization in result.get_asset_materialization_events():
        metadata = materialization.step_materialization_data.materialization.metadata
        outcome.note_metadata({name: value.value for name, value in metadata.items()})
    return outcome


class OneLineFormatter(logging.Formatter):
    """Dagster's console format, with an event's attached error (its stack trace) left out."""

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "dagster_meta", {}).get("dagster_event")
        data = getattr(event, "event_specific_data", None)
        if getattr(data, "error", None) is not None:
            record = logging.makeLogRecord(record.__dict__)
            record.msg, record.args = record.getMessage().split("\n\n", 1)[0], None
        return super().format(record)


def _one_line_console_logger():
    import dagster as dg

    @dg.logger(
        config_schema={"log_level": dg.Field(str, is_required=False, default_value="INFO")},
        description="Dagster's console logger without stack traces: the CLI prints the gate summary instead.",
    )
    def console(init_context) -> logging.Logger:
        logger = logging.Logger("dagster", level=init_context.logger_config["log_level"])
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLineFormatter(CONSOLE_FORMAT, CONSOLE_DATE_FORMAT))
        logger.addHandler(handler)
        return logger

    return console
