"""How a step turns evidence into Dagster results and refusals (platform-owned wiring).

Every asset step and check of the platform uses these: ``check_result`` makes a ``GateResult`` an
asset check result (the table, and each rule's numbers as metadata the UI plots); ``require_gates``
refuses to build on an upstream result whose gates did not pass for that very subject;
``evidence_failures`` turns invalid evidence into a failure that is never retried, and a tracking
server that does not answer into a retried one. The scoring asset and the CLI use them as the
lifecycle assets do.

A blocking check stops downstream steps only in its own run, and Dagster still stores the checked
asset (dagster#17332). So each asset verifies, before it uses an upstream result, that the latest
evaluation of every upstream gate passed *for that very snapshot, frame or candidate*: a gate holds
across runs, whether the UI, the CLI or an automation condition asks for the downstream asset.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from urllib.parse import urlsplit

import dagster as dg

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
from ml_platform.rules.spec import ModelSpec, model_gate_names
from ml_platform.settings import redact_secrets, redacted

# Infrastructure is uncertain (a tracking server restarts, a disk stalls): retry it with backoff.
# Evidence is not: every ContractViolation or PromotionBlocked fails the step with allow_retries=False.
INFRASTRUCTURE_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

# The metadata field that names each gated subject, in the asset's materialization and in its checks.
SNAPSHOT_ID = "snapshot_id"
FEATURES_ID = "features_id"
MLFLOW_RUN_ID = "mlflow_run_id"

RequiredGate = tuple[dg.AssetCheckKey, str, str]  # (check, metadata field naming the subject, the subject's id)


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
            raise _unanswered(asset, model, server, retry_number, error) from _cause(error, server)
        raise dg.Failure(
            description=f"{asset} {model!r} crashed (not retried, not a gate result): {type(error).__name__}: {error}",
            metadata={"model": model, "asset": asset, "error": type(error).__name__},
            allow_retries=False,
        ) from error


def _unanswered(asset: str, model: str, server: str, retry_number: int, error: Exception) -> Exception:
    """A tracking server that did not answer: retried with backoff, and on the last attempt the step's failure."""
    problem = (
        f"{asset} {model!r}: the MLflow tracking server {redacted(server)} did not answer: "
        f"{_scrubbed(f'{type(error).__name__}: {error}', server)[:500]}."
    )
    attempts = INFRASTRUCTURE_RETRY.max_retries + 1
    if retry_number >= INFRASTRUCTURE_RETRY.max_retries:
        return dg.Failure(
            description=f"{problem} Gave up after {attempts} attempts with exponential backoff: check that "
            "the server is up and reachable from here, then re-execute the run from failure.",
            metadata={"model": model, "asset": asset, "server": redacted(server), "attempts": attempts},
            allow_retries=False,
        )
    return InfrastructureUnavailable(
        f"{problem} Attempt {retry_number + 1} of {attempts}; the step's RetryPolicy retries it with backoff."
    )


def _cause(error: Exception, server: str) -> Exception | None:
    """The error to chain, unless its text would carry the server URL's password unredacted."""
    return None if urlsplit(server).password is not None else error


def _scrubbed(text: str, uri: str) -> str:
    """``text`` without the URI's password: in any URL (``redact_secrets``), and also where a library
    echoed the password alone."""
    password = urlsplit(uri).password
    text = redact_secrets(text)
    return text.replace(password, "***") if password else text


def latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict:
    """The metadata of an asset's latest materialization, as plain values."""
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        raise ContractViolation(f"{key.to_user_string()} has never been materialized: materialize it first")
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def upstream_gates(spec: ModelSpec, metadata: Mapping[str, object]) -> list[RequiredGate]:
    """Every gate that must have passed before a step builds on the result ``metadata`` describes.

    The lifecycle's subjects are nested: a feature frame names its snapshot, a candidate names its
    frame and its snapshot. So the gates follow from the subjects the metadata names: the snapshot's
    data gates, the feature contract if it names a frame, the model gates if it names a candidate's
    MLflow run. One list, in the order a reader meets the gates, for every step that needs it.
    """
    keys = ModelKeys(spec.name)
    required: list[RequiredGate] = []
    if SNAPSHOT_ID in metadata:
        snapshot_id = str(metadata[SNAPSHOT_ID])
        required += [
            (dg.AssetCheckKey(keys.snapshot, name), SNAPSHOT_ID, snapshot_id)
            for name in contracts.snapshot_gate_names(spec)
        ]
    if FEATURES_ID in metadata:
        required.append((dg.AssetCheckKey(keys.features, FEATURE_GATE), FEATURES_ID, str(metadata[FEATURES_ID])))
    if MLFLOW_RUN_ID in metadata:
        run_id = str(metadata[MLFLOW_RUN_ID])
        required += [(dg.AssetCheckKey(keys.candidate, name), MLFLOW_RUN_ID, run_id) for name in model_gate_names(spec)]
    return required


def unpassed_gates(instance: dg.DagsterInstance, required: Sequence[RequiredGate]) -> list[str]:
    """Which required gates have not passed for the given subject, and why, one line each.

    A check counts only if its latest *completed* evaluation *about that subject* passed: a pass on
    yesterday's snapshot says nothing about today's, and a newer evaluation of another subject says
    nothing about this one. Both were found by the fault-injection campaign (``bench/bench_campaign.py``):
    an execution that is only planned (a racing run has just started the same step) has no verdict and
    must not hide the completed one; and two racing runs, each with its own candidate, refused each
    other when each guard read the newest evaluation, which was the other run's.
    """
    problems = []
    for key, field, subject in required:
        name = f"{key.asset_key.to_user_string()}:{key.name}"
        evaluations = _completed_evaluations(instance, key)
        if not evaluations:
            problems.append(f"{name} has no completed evaluation (it never ran, or its run stopped before it)")
            continue
        evaluation = next((e for e in evaluations if _subject(e, field) == subject), None)
        if evaluation is None:
            newest = _subject(evaluations[0], field)
            problems.append(
                f"{name} was last evaluated on {field} {str(newest)[:12] if newest else '(unknown)'}…, "
                f"not on {subject[:12]}…: run the check on this {field.removesuffix('_id')}"
            )
        elif not evaluation.passed:
            detail = textwrap.indent(evaluation.description or "see the check evidence", "    ").lstrip()
            problems.append(f"{name} FAILED: {detail}")
    return problems


# How far back a guard looks for its subject's evaluation: racing runs add one evaluation each, so a
# subject pushed out of this window by as many newer evaluations is refused (re-run its checks).
EVALUATIONS_SEARCHED = 20


def _completed_evaluations(instance: dg.DagsterInstance, key: dg.AssetCheckKey) -> list[dg.AssetCheckEvaluation]:
    """The newest completed evaluations of ``key`` (passed or failed), newest first; planned ones have no verdict."""
    from dagster._core.storage.asset_check_execution_record import COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES

    history = instance.event_log_storage.get_asset_check_execution_history(
        key, limit=EVALUATIONS_SEARCHED, status=set(COMPLETED_ASSET_CHECK_EXECUTION_RECORD_STATUSES)
    )
    found = (
        record.event.dagster_event.event_specific_data
        for record in history
        if record.event and record.event.dagster_event
    )
    return [evaluation for evaluation in found if isinstance(evaluation, dg.AssetCheckEvaluation)]


def _subject(evaluation: dg.AssetCheckEvaluation, field: str):
    value = evaluation.metadata.get(field)
    return None if value is None else value.value


def require_gates(instance: dg.DagsterInstance, asset: str, model: str, required: Sequence[RequiredGate]) -> None:
    """Refuse (``PromotionBlocked``) unless every required gate passed for its subject."""
    problems = unpassed_gates(instance, required)
    if problems:
        raise PromotionBlocked(
            f"{asset} {model!r} refuses to continue: {len(problems)} upstream gate(s) did not pass:\n  - "
            + "\n  - ".join(problems)
        )


def check_result(key: dg.AssetKey, result: GateResult, subject_field: str, subject: str) -> dg.AssetCheckResult:
    """A gate as a blocking check result: the verdict, the summary, the table, and each rule's numbers.

    The table sits behind "Show Markdown" in the UI; the numbers (``<rule>`` and ``<rule>.threshold``,
    named the same on every run) show at a glance and are plotted across runs.
    """
    metadata = {
        subject_field: subject,
        "gate": dg.MetadataValue.md(result.table()),
        "violations": len(result.violations),
        **_rule_numbers(result),
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


def _rule_numbers(result: GateResult) -> dict[str, dg.MetadataValue]:
    """Each rule's observed value and threshold as numeric metadata, where the rule has them."""
    numbers = {}
    for rule in result.rules:
        if rule.value is not None:
            numbers[rule.series] = _number(rule.value)
        if rule.threshold is not None:
            numbers[f"{rule.series}.threshold"] = _number(rule.threshold)
    return numbers


def _number(value: float) -> dg.MetadataValue:
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    return dg.MetadataValue.float(float(value))
