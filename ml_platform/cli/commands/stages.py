"""`ml-platform` sub-commands that CI calls, one per stage of a model's delivery (platform-owned).

    check-data <model>             the data gates on a snapshot of the landing files
    decide <model>                 whether to train a candidate: new data, drift, or --force-retrain
    train <model>                  the model's whole gated graph: a candidate, its gates, the registry;
                                   with --dagster-url, launched on a Dagster deployment and awaited
    promote <model> --to STAGE     move the ``staging`` or ``production`` alias, after checking the evidence
    ci-workflow <model>            the team workflow template rendered for a model

Each stage runs the platform's own Dagster assets and checks (or reads the registry's evidence); none
re-implements a gate. Each exits with one meaning: 0 passed, 1 a gate failed (the evidence is printed),
2 usage or configuration error, 3 infrastructure error worth a retry. ``--json`` prints one JSON
object on stdout, for a workflow's job outputs; ``--evidence DIR`` writes the gate table (and, after
training, the model card) there, for an artifact upload.

Nothing heavy is imported at module level: ``ml-platform --help`` must stay instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ml_platform.cli import EXIT_GATE_FAILED, EXIT_INFRASTRUCTURE, EXIT_PASSED, EXIT_USAGE
from ml_platform.keys import ModelKeys

STATUS = {
    EXIT_PASSED: "passed",
    EXIT_GATE_FAILED: "gate_failed",
    EXIT_USAGE: "usage_error",
    EXIT_INFRASTRUCTURE: "infrastructure_error",
}

STAGING, PRODUCTION = "staging", "production"
DATA_ASSETS = ("dataset_snapshot", "validated_features")
REPORTED_METADATA = ("snapshot_id", "features_id", "mlflow_run_id", "version", "promoted", "note")
WORKFLOW_TEMPLATE = ".github/workflow-templates/ml-model.yml"


@dataclass
class StageReport:
    """What one stage found: the verdict, the gates it judged, and the facts a later job needs."""

    stage: str
    model: str
    exit_code: int = EXIT_PASSED
    message: str = ""
    gates: list[dict[str, Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        return STATUS[self.exit_code]

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, **asdict(self)}


def register(commands) -> None:
    """Add the CI stage sub-commands to ``commands``."""
    check_data = commands.add_parser(
        "check-data", help="CI stage: snapshot the landing files and run the data gates on the snapshot"
    )
    check_data.set_defaults(handler=_check_data)

    decide = commands.add_parser(
        "decide", help="CI stage: decide whether to train a candidate (new data, drift, or --force-retrain)"
    )
    decide.add_argument("--force-retrain", action="store_true", help="train even without new data or drift")
    decide.set_defaults(handler=_decide)

    train = commands.add_parser(
        "train", help="CI stage: run the model's gated graph (candidate, model gates, registry) on the platform"
    )
    train.add_argument(
        "--dagster-url",
        default=None,
        metavar="URL",
        help="launch the run on this Dagster deployment (its webserver) and wait for it, instead of in this process",
    )
    train.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait for a launched run")
    train.set_defaults(handler=_train)

    promote = commands.add_parser(
        "promote", help="CI stage: move the staging or production alias after checking the version's evidence"
    )
    promote.add_argument("--to", required=True, choices=(STAGING, PRODUCTION), dest="target")
    promote.add_argument(
        "--version",
        default=None,
        help="the version to promote (default: the champion to staging, staging to production)",
    )
    promote.set_defaults(handler=_promote)

    workflow = commands.add_parser(
        "ci-workflow", help="render the CI/CD workflow template for a model (.github/workflow-templates/ml-model.yml)"
    )
    workflow.add_argument("model")
    workflow.add_argument("--demo-rows", type=int, default=0, help="seeded demo rows per job (0: real landing data)")
    workflow.add_argument("--write", action="store_true", help="write .github/workflows/model-<model>.yml")
    workflow.set_defaults(handler=_ci_workflow)

    for parser in (check_data, decide, train, promote):
        parser.add_argument("model")
        parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        parser.add_argument("--evidence", type=Path, default=None, metavar="DIR", help="write the evidence files here")


def render_workflow(model: str, demo_rows: int = 0) -> str:
    """The team workflow template with the model's name (and demo data size) filled in."""
    from ml_platform.settings import PROJECT_ROOT

    if demo_rows < 0:
        raise ValueError(f"--demo-rows must be 0 or more, got {demo_rows}")
    template = (PROJECT_ROOT / WORKFLOW_TEMPLATE).read_text()
    return template.replace("MODEL_NAME", model).replace('DEMO_ROWS: "0"', f'DEMO_ROWS: "{demo_rows}"', 1)


def _ci_workflow(args: argparse.Namespace) -> int:
    from ml_platform.models import get_spec
    from ml_platform.settings import PROJECT_ROOT

    rendered = render_workflow(get_spec(args.model).name, args.demo_rows)
    if not args.write:
        print(rendered, end="")
        return EXIT_PASSED
    target = PROJECT_ROOT / ".github" / "workflows" / f"model-{args.model}.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(rendered)
    print(f"wrote {target}")
    return EXIT_PASSED


def _check_data(args: argparse.Namespace) -> int:
    return _stage("check-data", args, _run_data_gates)


def _decide(args: argparse.Namespace) -> int:
    return _stage("decide", args, _decide_retraining)


def _train(args: argparse.Namespace) -> int:
    return _stage("train", args, _run_training)


def _promote(args: argparse.Namespace) -> int:
    return _stage(f"promote-{args.target}", args, _move_alias)


def _stage(stage: str, args: argparse.Namespace, body) -> int:
    """Run one stage body and turn whatever happened into one exit code and one report."""
    report = StageReport(stage, args.model)
    try:
        from ml_platform.models import get_spec

        spec = get_spec(args.model)
        body(spec, args, report)
    except Exception as error:  # every outcome, crashes included, becomes a report with one exit code
        report.exit_code, report.message = _classify(error)
    _emit(report, args)
    return report.exit_code


def _classify(error: Exception) -> tuple[int, str]:
    """Which exit code an exception means: evidence (1), configuration (2) or infrastructure (3)."""
    from ml_platform.errors import ContractViolation, PromotionBlocked, is_transient
    from ml_platform.settings import redact_secrets

    text = redact_secrets(f"{type(error).__name__}: {error}")  # clients echo URLs with their passwords
    if isinstance(error, (ContractViolation, PromotionBlocked)):
        return EXIT_GATE_FAILED, str(error)
    if is_transient(error):
        return EXIT_INFRASTRUCTURE, f"infrastructure error, worth a retry: {text}"
    if isinstance(error, (ValueError, ImportError, LookupError)):
        return EXIT_USAGE, f"configuration error: {text}"
    return EXIT_INFRASTRUCTURE, f"crashed (not a gate result; retry once, then report it): {text}"


def _emit(report: StageReport, args: argparse.Namespace) -> None:
    if args.evidence is not None:
        args.evidence.mkdir(parents=True, exist_ok=True)
        (args.evidence / f"{report.stage}.json").write_text(json.dumps(report.as_dict(), indent=2, default=str))
        if report.gates:
            (args.evidence / f"{report.stage}-gates.md").write_text(_gate_tables(report))
    if args.json:
        print(json.dumps(report.as_dict(), default=str, separators=(",", ":")))
        return
    print(f"== {report.stage} {report.model}: {report.status.upper()}")
    for gate in report.gates:
        print(f"  [{'pass' if gate['passed'] else 'FAIL'}] {gate['asset']}:{gate['check']}")
        if not gate["passed"]:
            for line in gate["description"].splitlines()[1:]:
                print(f"         {line.strip()}")
    for failure in report.failures:
        print(f"  [stop] {failure}")
    for name, value in report.outputs.items():
        print(f"  {name}: {value}")
    if report.message:
        print(f"  {report.message}", file=sys.stderr if report.exit_code else sys.stdout)


def _gate_tables(report: StageReport) -> str:
    lines = [f"# {report.stage} {report.model}: {report.status}\n"]
    for gate in report.gates:
        lines.append(f"## {gate['asset']}:{gate['check']} — {'passed' if gate['passed'] else 'FAILED'}\n")
        lines.append((gate.get("table") or gate["description"]) + "\n")
    return "\n".join(lines)


def _paths():
    from ml_platform.runner import ensure_mlflow_store
    from ml_platform.settings import PlatformPaths, ensure_dagster_home

    paths = PlatformPaths.from_environment()
    ensure_dagster_home(paths)
    ensure_mlflow_store(paths)
    return paths


def _store(paths):
    from ml_platform.stores.registry import Store

    return Store(paths.tracking_uri, paths.registry_uri, paths.artifact_root)


def _execute(spec, job_name: str, assets: tuple[str, ...] | None, report: StageReport) -> None:
    """Run the model's job (or a job over some of its assets) in process on the configured instance."""
    import dagster as dg

    from ml_platform.definitions import build_definitions
    from ml_platform.runner import CONSOLE_INFO

    paths = _paths()
    defs = build_definitions(paths)
    if assets is not None:
        keys = [dg.AssetKey([spec.name, name]) for name in assets]
        selection = dg.AssetSelection.assets(*keys) | dg.AssetSelection.checks_for_assets(*keys)
        defs = dg.Definitions.merge(defs, dg.Definitions(jobs=[dg.define_asset_job(job_name, selection=selection)]))
    job = defs.resolve_job_def(job_name)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=CONSOLE_INFO)
    report.outputs["dagster_run_id"] = result.run_id
    evidence_failure = False
    for evaluation in result.get_asset_check_evaluations():
        table = evaluation.metadata.get("gate")
        report.gates.append(
            {
                "asset": evaluation.asset_key.to_user_string(),
                "check": evaluation.check_name,
                "passed": evaluation.passed,
                "description": evaluation.description or "",
                "table": table.value if table is not None else "",
            }
        )
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        user = data.user_failure_data
        if user is not None and user.metadata and "contract" in user.metadata:
            evidence_failure = True
        message = user.description if user and user.description else data.error.message if data.error else "failed"
        if "blocking asset check" not in message:
            report.failures.append(f"{event.step_key}: {message.strip()}")
    for materialization in result.get_asset_materialization_events():
        metadata = materialization.step_materialization_data.materialization.metadata
        for name in REPORTED_METADATA:
            if name in metadata:
                report.outputs[name] = metadata[name].value
    _judge(report, result.success, evidence_failure)


def _judge(report: StageReport, success: bool, evidence_failure: bool) -> None:
    """A run's exit code: passed, stopped by a gate (or refused evidence), or failed otherwise."""
    if success:
        report.exit_code = EXIT_PASSED
    elif evidence_failure or any(not gate["passed"] for gate in report.gates):
        report.exit_code = EXIT_GATE_FAILED
        report.message = "a gate stopped the run; the evidence is above"
    else:
        report.exit_code = EXIT_INFRASTRUCTURE
        report.message = "the run failed without a gate result (infrastructure or a crash): retry it"


def _run_data_gates(spec, args: argparse.Namespace, report: StageReport) -> None:
    _execute(spec, f"{spec.dagster_name}_data_gates", DATA_ASSETS, report)


def _run_training(spec, args: argparse.Namespace, report: StageReport) -> None:
    if args.dagster_url:
        _launch_remote(spec, args.dagster_url, args.timeout, report)
    else:
        _execute(spec, ModelKeys(spec.name).lifecycle_job, None, report)
    if report.exit_code == EXIT_PASSED and args.evidence is not None and report.outputs.get("version"):
        from ml_platform.runner import explain

        card = explain(spec.name, str(report.outputs["version"]))
        args.evidence.mkdir(parents=True, exist_ok=True)
        (args.evidence / "model-card.md").write_text(f"# Model card: {spec.name}\n\n```\n{card}\n```\n")


RUN_EVENTS_QUERY = """
query RunEvents($runId: ID!, $cursor: String) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: 1000) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on AssetCheckEvaluationEvent {
          evaluation {
            checkName
            success
            description
            assetKey { path }
            metadataEntries { label ... on MarkdownMetadataEntry { mdStr } ... on TextMetadataEntry { text } }
          }
        }
        ... on ExecutionStepFailureEvent {
          stepKey
          message
          error { message }
          failureMetadata { metadataEntries { label } }
        }
        ... on MaterializationEvent {
          assetKey { path }
          metadataEntries {
            label
            ... on TextMetadataEntry { text }
            ... on IntMetadataEntry { intValue }
            ... on BoolMetadataEntry { boolValue }
          }
        }
      }
    }
    ... on PythonError { message }
    ... on RunNotFoundError { message }
  }
}
"""
TERMINAL_STATUSES = ("SUCCESS", "FAILURE", "CANCELED")


def _launch_remote(spec, url: str, timeout: float, report: StageReport) -> None:
    """Launch ``<model>_lifecycle`` on a Dagster deployment and judge the run from its event log.

    The deployment runs the graph where it runs everything (on Kubernetes: a pod with the spec's
    compute); this process only submits, waits, and reads the gates back over GraphQL.
    """
    import time
    from urllib.parse import urlparse

    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"--dagster-url {url!r} is not an http(s) URL of a Dagster webserver")
    client = DagsterGraphQLClient(
        parsed.hostname, port_number=parsed.port, use_https=parsed.scheme == "https", timeout=60
    )
    try:
        run_id = client.submit_job_execution(ModelKeys(spec.name).lifecycle_job, tags={"ml_platform/trigger": "ci"})
        report.outputs["dagster_run_id"] = run_id
        deadline = time.monotonic() + timeout
        status = client.get_run_status(run_id).value
        while status not in TERMINAL_STATUSES:
            if time.monotonic() > deadline:
                raise TimeoutError(f"dagster run {run_id} is still {status} after {timeout:.0f} s")
            time.sleep(3)
            status = client.get_run_status(run_id).value
    except DagsterGraphQLClientError as error:
        if "connecting" in str(error).lower() or "connection" in str(error.__cause__ or "").lower():
            raise ConnectionError(f"the Dagster webserver at {url} is unreachable: {error}") from error
        raise ValueError(f"the Dagster deployment at {url} refused the run: {error}") from error
    report.outputs["dagster_status"] = status
    evidence_failure = _read_remote_events(f"{url.rstrip('/')}/graphql", run_id, report)
    _judge(report, status == "SUCCESS", evidence_failure)


def _read_remote_events(endpoint: str, run_id: str, report: StageReport) -> bool:
    import requests

    cursor, evidence_failure = None, False
    while True:
        response = requests.post(
            endpoint, json={"query": RUN_EVENTS_QUERY, "variables": {"runId": run_id, "cursor": cursor}}, timeout=60
        )
        response.raise_for_status()
        logs = response.json()["data"]["logsForRun"]
        if logs["__typename"] != "EventConnection":
            raise RuntimeError(f"dagster run {run_id}: its event log cannot be read: {logs.get('message')}")
        for event in logs["events"]:
            kind = event["__typename"]
            if kind == "AssetCheckEvaluationEvent":
                evaluation = event["evaluation"]
                entries = {e["label"]: e.get("mdStr") or e.get("text") for e in evaluation["metadataEntries"]}
                report.gates.append(
                    {
                        "asset": "/".join(evaluation["assetKey"]["path"]),
                        "check": evaluation["checkName"],
                        "passed": evaluation["success"],
                        "description": evaluation["description"] or "",
                        "table": entries.get("gate") or "",
                    }
                )
            elif kind == "ExecutionStepFailureEvent":
                labels = {e["label"] for e in (event["failureMetadata"] or {}).get("metadataEntries", [])}
                evidence_failure = evidence_failure or "contract" in labels
                message = (event["error"] or {}).get("message") or event["message"]
                if "blocking asset check" not in message:
                    report.failures.append(f"{event['stepKey']}: {message.strip()}")
            elif kind == "MaterializationEvent":
                for entry in event["metadataEntries"]:
                    value = next(
                        (entry[k] for k in ("text", "intValue", "boolValue") if entry.get(k) is not None), None
                    )
                    if entry["label"] in REPORTED_METADATA and value is not None:
                        report.outputs[entry["label"]] = value
        cursor = logs["cursor"]
        if not logs["hasMore"]:
            return evidence_failure


def _decide_retraining(spec, args: argparse.Namespace, report: StageReport) -> None:
    """Retrain when forced, when there is no champion, when the data moved on, or when it drifted.

    The landing files' snapshot id is computed without writing a snapshot (it is their content hash).
    Drift is measured against the champion's training snapshot when that snapshot is on this machine.
    """
    from ml_platform.stores.registry import current_champion
    from ml_platform.stores.snapshot import content_id, read_landing

    paths = _paths()
    frame, _ = read_landing(spec.landing_path(paths.home), spec.name)
    snapshot_id = content_id(frame)
    champion = current_champion(_store(paths), spec.name)
    champion_snapshot = champion.tags.get("ml_platform.snapshot_id") if champion else None
    reasons = []
    if args.force_retrain:
        reasons.append("forced (force_retrain)")
    if champion is None:
        reasons.append("there is no champion yet")
    elif champion_snapshot != snapshot_id:
        reasons.append(
            f"new data: snapshot {snapshot_id[:12]} differs from the champion's {str(champion_snapshot)[:12]}"
        )
    drift = _drift(spec, paths, champion_snapshot, frame) if champion_snapshot else {"evaluated": False}
    if drift.get("drifted"):
        reasons.append(f"drift: {drift['reason']}")
    report.outputs.update(
        {
            "retrain": bool(reasons),
            "reasons": reasons or ["the champion was trained on this very snapshot and nothing drifted"],
            "snapshot_id": snapshot_id,
            "champion_version": champion.version if champion else None,
            "champion_snapshot_id": champion_snapshot,
            "drift": drift,
        }
    )


def _drift(spec, paths, champion_snapshot: str, batch) -> dict[str, Any]:
    """The drift verdict from ``ml_platform.rules.drift``, or why it was not evaluated."""
    from ml_platform.stores.snapshot import load_snapshot

    monitoring = getattr(spec, "monitoring", None)
    if monitoring is None:
        return {"evaluated": False, "reason": "the spec declares no monitoring rules"}
    if not (paths.snapshots(spec.name) / champion_snapshot).is_dir():
        return {
            "evaluated": False,
            "reason": f"the champion's snapshot {champion_snapshot[:12]} is not on this machine: "
            "decided on new data only",
        }
    from ml_platform.rules.drift import measure_drift

    _, reference = load_snapshot(paths.snapshots(spec.name), champion_snapshot)
    drift = measure_drift(
        reference,
        batch,
        list(spec.monitored_features),
        thresholds=monitoring.feature_thresholds,
        default_threshold=monitoring.psi_threshold,
        min_batch_rows=monitoring.min_batch_rows,
        drift_share=monitoring.drift_share,
    )
    return {"evaluated": True, "drifted": drift.drifted, "reason": drift.reason, "psi": drift.scores()}


def _move_alias(spec, args: argparse.Namespace, report: StageReport) -> None:
    """Point ``staging`` (or ``production``) at a version whose evidence allows it.

    Staging takes the champion: a version registered only after every gate passed, and still the one
    that beat the others. Production takes the version that is in staging, so production always
    waited for staging. Either refuses a version whose recorded gates are not all "passed".
    """
    from ml_platform.errors import PromotionBlocked
    from ml_platform.stores.registry import CHAMPION, TAG, current_champion

    store = _store(_paths())
    client = store.client()
    source_alias = CHAMPION if args.target == STAGING else STAGING
    holder = _alias_version(client, spec.name, source_alias)
    version = args.version or holder
    if version is None:
        raise PromotionBlocked(
            f"promote {spec.name!r} to {args.target}: no version holds the {source_alias!r} alias"
            + (": nothing has passed every gate yet" if source_alias == CHAMPION else ": promote to staging first")
        )
    if version != holder:
        raise PromotionBlocked(
            f"promote {spec.name!r} to {args.target}: version {version} does not hold the {source_alias!r} alias "
            f"(version {holder or 'none'} does); only the {source_alias} may move to {args.target}"
        )
    details = client.get_model_version(spec.name, version)
    gates = json.loads(details.tags.get(f"{TAG}gates", "{}"))
    unpassed = sorted(name for name, verdict in gates.items() if verdict != "passed")
    if not gates or unpassed:
        raise PromotionBlocked(
            f"promote {spec.name!r} version {version} to {args.target}: its recorded gates are "
            f"{'missing' if not gates else 'not all passed: ' + ', '.join(unpassed)}; it cannot be promoted"
        )
    previous = _alias_version(client, spec.name, args.target)
    if previous == version:
        report.outputs.update(
            {"version": version, "alias": args.target, "note": f"no-op: version {version} is already {args.target}"}
        )
        return
    from datetime import UTC, datetime

    now = datetime.now(UTC).isoformat(timespec="seconds")
    if previous is not None:
        client.set_registered_model_alias(spec.name, f"previous-{args.target}", previous)
    client.set_registered_model_alias(spec.name, args.target, version)
    client.set_model_version_tag(spec.name, version, f"{TAG}{args.target}_at", now)
    client.set_model_version_tag(spec.name, version, f"{TAG}previous_{args.target}", previous or "none")
    champion = current_champion(store, spec.name)
    report.gates = [
        {"asset": f"{spec.name}/{name.partition(':')[0]}", "check": name.partition(":")[2], "passed": True,
         "description": f"recorded as {verdict} on version {version}"}
        for name, verdict in sorted(gates.items())
    ]  # fmt: skip
    report.outputs.update(
        {
            "version": version,
            "alias": args.target,
            "previous": previous,
            "champion_version": champion.version if champion else None,
            "model_uri": f"models:/{spec.name}@{args.target}",
            "note": f"version {version} is now {args.target}"
            + (f"; version {previous} is previous-{args.target}" if previous else ""),
        }
    )


def _alias_version(client, model: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
