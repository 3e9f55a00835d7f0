"""`ml-platform` sub-commands that CI calls, one per stage of a model's delivery (platform-owned).

    check-data <model>             the data gates on a snapshot of the landing files
    decide <model>                 whether to train a candidate: new data, drift, or --force-retrain
    train <model>                  the model's whole gated graph: a candidate, its gates, the registry;
                                   with --dagster-url, launched on a Dagster deployment and awaited
    promote <model> --to staging   move the ``staging`` alias, after checking the evidence (production
                                   moves only through ``ml-platform release``)
    ci-workflow <model>            the team workflow template rendered for a model

Each stage runs the platform's own Dagster assets and checks (or reads the registry's evidence); none
re-implements a gate. Each exits with one meaning (ml_platform/cli/exit_codes.py): 0 passed, 1 a gate
failed (the evidence is printed), 2 usage or configuration error, 3 infrastructure error worth a retry.
``--json`` prints one JSON object on stdout, for a workflow's job outputs; ``--evidence DIR`` writes the
gate table (and, after training, the model card) there, for an artifact upload.

Nothing heavy is imported at module level: ``ml-platform --help`` must stay instant.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ml_platform.cli.exit_codes import ExitCode
from ml_platform.cli.report import StageReport, run_command
from ml_platform.keys import CHAMPION, DATA_ASSETS, PRODUCTION, REGISTRY_TAG, STAGING, ModelKeys

WORKFLOW_TEMPLATE = ".github/workflow-templates/ml-model.yml"


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


def render_workflow(
    model: str, demo_rows: int = 0, team_path: str | None = None, team_module: str | None = None
) -> str:
    """The team workflow template with the model's name, its team's project (default: where the workspace
    declares it) and the demo data size filled in."""
    from ml_platform.settings import PROJECT_ROOT

    if demo_rows < 0:
        raise ValueError(f"--demo-rows must be 0 or more, got {demo_rows}")
    if team_path is None or team_module is None:
        from ml_platform.discovery import get_model

        declared = get_model(model)
        team_path, team_module = declared.project.relative_to(PROJECT_ROOT).as_posix(), declared.module
    template = (PROJECT_ROOT / WORKFLOW_TEMPLATE).read_text()
    rendered = template.replace("MODEL_NAME", model).replace("TEAM_PATH", team_path).replace("TEAM_MODULE", team_module)
    return rendered.replace('DEMO_ROWS: "0"', f'DEMO_ROWS: "{demo_rows}"', 1)


def _ci_workflow(args: argparse.Namespace) -> int:
    from ml_platform.discovery import get_spec
    from ml_platform.settings import PROJECT_ROOT

    rendered = render_workflow(get_spec(args.model).name, args.demo_rows)
    if not args.write:
        print(rendered, end="")
        return ExitCode.PASSED
    target = PROJECT_ROOT / ".github" / "workflows" / f"model-{args.model}.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(rendered)
    print(f"wrote {target}")
    return ExitCode.PASSED


def _check_data(args: argparse.Namespace) -> int:
    return _stage("check-data", args, _run_data_gates)


def _decide(args: argparse.Namespace) -> int:
    return _stage("decide", args, _decide_retraining)


def _train(args: argparse.Namespace) -> int:
    return _stage("train", args, _run_training)


def _promote(args: argparse.Namespace) -> int:
    return _stage(f"promote-{args.target}", args, _move_staging_or_production)


def _stage(stage: str, args: argparse.Namespace, body) -> int:
    """Run one stage body on the model's spec; ``run_command`` gives the exit code and prints the report."""

    def on_spec(report: StageReport) -> None:
        from ml_platform.discovery import get_spec

        body(get_spec(args.model), args, report)

    return run_command(stage, args.model, on_spec, as_json=args.json, evidence=args.evidence)


def _paths():
    from ml_platform.settings import PlatformPaths, ensure_dagster_home
    from ml_platform.stores.registry import ensure_mlflow_store

    paths = PlatformPaths.from_environment()
    ensure_dagster_home(paths)
    ensure_mlflow_store(paths)
    return paths


def _store(paths):
    from ml_platform.stores.registry import Store

    return Store.from_paths(paths)


def _run_data_gates(spec, args: argparse.Namespace, report: StageReport) -> None:
    from ml_platform.cli.execution import execute

    report.absorb(execute(spec, ModelKeys(spec.name).data_gates_job, DATA_ASSETS))


def _run_training(spec, args: argparse.Namespace, report: StageReport) -> None:
    if args.dagster_url:
        from ml_platform.cli.remote import execute_remote

        report.absorb(execute_remote(spec, args.dagster_url, args.timeout))
    else:
        from ml_platform.cli.execution import execute

        report.absorb(execute(spec, ModelKeys(spec.name).lifecycle_job))
    if report.exit_code == ExitCode.PASSED and args.evidence is not None and report.outputs.get("version"):
        from ml_platform.cli.explain import explain

        card = explain(spec.name, str(report.outputs["version"]))
        args.evidence.mkdir(parents=True, exist_ok=True)
        (args.evidence / "model-card.md").write_text(f"# Model card: {spec.name}\n\n```\n{card}\n```\n")


def _decide_retraining(spec, args: argparse.Namespace, report: StageReport) -> None:
    """Retrain when forced, when there is no champion, when the data moved on, or when it drifted.

    The rules are ``ml_platform.rules.retraining``'s, as the sensors and the schedule apply them. The
    landing files' snapshot id is computed without writing a snapshot (it is their content hash).
    Drift is measured against the champion's training snapshot when that snapshot is on this machine.
    """
    from ml_platform.rules.retraining import ChampionFacts, Observed, decide_retraining
    from ml_platform.stores.registry import current_champion
    from ml_platform.stores.snapshot import content_id, read_model_landing

    paths = _paths()
    frame, _ = read_model_landing(spec, spec.landing_path(paths.home))
    snapshot_id = content_id(frame)
    champion = current_champion(_store(paths), spec.name)
    champion_snapshot = champion.tags.get(f"{REGISTRY_TAG}snapshot_id") if champion else None
    drift, measured = _drift(spec, paths, champion_snapshot, frame)
    facts = ChampionFacts(champion.version, champion_snapshot) if champion else None
    observed = Observed(facts, forced=args.force_retrain, snapshot_id=snapshot_id, drift=measured)
    decided = decide_retraining(spec, observed)
    report.outputs.update(
        {
            "retrain": decided.retrain,
            "reasons": list(decided.reasons),
            "snapshot_id": snapshot_id,
            "champion_version": champion.version if champion else None,
            "champion_snapshot_id": champion_snapshot,
            "drift": drift,
        }
    )


def _drift(spec, paths, champion_snapshot: str | None, batch) -> tuple[dict[str, Any], Any]:
    """The drift report (``ml_platform.rules.retraining``) with its summary, or why it was not evaluated."""
    from ml_platform.rules.retraining import measure_monitored_drift
    from ml_platform.stores.snapshot import load_snapshot

    if not champion_snapshot:
        return {"evaluated": False}, None
    if not (paths.snapshots(spec.name) / champion_snapshot).is_dir():
        reason = f"the champion's snapshot {champion_snapshot[:12]} is not on this machine: decided on new data only"
        return {"evaluated": False, "reason": reason}, None
    _, reference = load_snapshot(paths.snapshots(spec.name), champion_snapshot)
    drift = measure_monitored_drift(spec, reference, batch)
    return {"evaluated": True, "drifted": drift.drifted, "reason": drift.reason, "psi": drift.scores()}, drift


def _move_staging_or_production(spec, args: argparse.Namespace, report: StageReport) -> None:
    """Point ``staging`` at the champion when its evidence allows it; ``production`` is refused here.

    Staging takes the champion: a version registered only after every gate passed, and still the one
    that beat the others; a version whose recorded gates are not all "passed" is refused. Production
    moves only through ``ml-platform release`` (a canary judged on live traffic), and the staging move
    is recorded in the ledger so that ``history`` shows it.
    """
    from ml_platform.errors import PromotionBlocked
    from ml_platform.stores.registry import current_champion, gate_problems

    if args.target == PRODUCTION:  # production only takes what a release's online gate promoted
        raise ValueError(
            f"production moves only through a release: `ml-platform release {spec.name} start` (a canary of the "
            f"champion; the first release of a model goes straight to production), then `ml-platform release "
            f"{spec.name} status --wait`"
        )
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
    tags = dict(client.get_model_version(spec.name, version).tags)
    problems = gate_problems(tags)
    if problems:
        raise PromotionBlocked(
            f"promote {spec.name!r} version {version} to {args.target}: its recorded gates do not all pass "
            f"({'; '.join(problems)}); it cannot be promoted"
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
    client.set_model_version_tag(spec.name, version, f"{REGISTRY_TAG}{args.target}_at", now)
    client.set_model_version_tag(spec.name, version, f"{REGISTRY_TAG}previous_{args.target}", previous or "none")
    _record_staging(spec, version, previous)
    champion = current_champion(store, spec.name)
    report.gates = [
        {"asset": f"{spec.name}/{name.partition(':')[0]}", "check": name.partition(":")[2], "passed": True,
         "description": f"recorded as {verdict} on version {version}"}
        for name, verdict in sorted(json.loads(tags[f"{REGISTRY_TAG}gates"]).items())
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


def _record_staging(spec, version: str, previous: str | None) -> None:
    """The staging move in the decision ledger, so that `ml-platform history` shows it."""
    from ml_platform.defs.decisions import record
    from ml_platform.defs.release import report_events
    from ml_platform.stores.ledger import Decision

    moves = {STAGING: [previous, version], **({"previous-staging": [None, previous]} if previous else {})}
    reason = f"version {version} (the champion, every gate passed) taken for staging"
    decision = Decision(spec.name, "promoted", STAGING, reason, {}, {"moves": moves}, version, "ml-platform promote")
    report_events([record(_paths(), decision)[1]])


def _alias_version(client, model: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(model, alias).version)
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
