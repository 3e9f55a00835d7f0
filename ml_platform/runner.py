"""Running a model's graph on the configured Dagster instance, and reading back what happened.

Used by the CLI; tests call ``run_model`` too, so what a user types and what CI checks are one path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ml_platform.keys import ModelKeys
from ml_platform.settings import PlatformPaths, ensure_dagster_home

CONSOLE_INFO = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


@dataclass
class GateLine:
    asset: str
    check: str
    passed: bool
    description: str


@dataclass
class RunOutcome:
    model: str
    run_id: str
    success: bool
    gates: list[GateLine] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    registry: dict = field(default_factory=dict)
    evidence_failure: bool = False

    @property
    def exit_code(self) -> int:
        from ml_platform.cli import EXIT_GATE_FAILED, EXIT_INFRASTRUCTURE, EXIT_PASSED

        if self.success:
            return EXIT_PASSED
        if any(not gate.passed for gate in self.gates) or self.evidence_failure:
            return EXIT_GATE_FAILED
        return EXIT_INFRASTRUCTURE


def run_model(model: str, paths: PlatformPaths | None = None) -> RunOutcome:
    """Materialize ``<model>_lifecycle`` in this process on the persistent instance."""
    import dagster as dg

    from ml_platform.models import get_spec

    spec = get_spec(model)
    paths = paths or PlatformPaths.from_environment()
    ensure_dagster_home(paths)
    ensure_mlflow_store(paths)
    from ml_platform.definitions import build_definitions

    job = build_definitions(paths).resolve_job_def(ModelKeys(spec.name).lifecycle_job)
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=CONSOLE_INFO)
        outcome = RunOutcome(model, result.run_id, result.success)
        for evaluation in result.get_asset_check_evaluations():
            outcome.gates.append(
                GateLine(
                    evaluation.asset_key.to_user_string(),
                    evaluation.check_name,
                    evaluation.passed,
                    evaluation.description or "",
                )
            )
        for event in result.get_step_failure_events():
            data = event.step_failure_data
            user = data.user_failure_data
            if user is not None and user.metadata and "contract" in user.metadata:
                outcome.evidence_failure = True
            message = user.description if user and user.description else data.error.message if data.error else "failed"
            outcome.failures.append(f"{event.step_key}: {message.strip()}")
        for materialization in result.get_asset_materialization_events():
            key = materialization.asset_key
            if key.path[-1] == "registry_entry":
                meta = materialization.step_materialization_data.materialization.metadata
                outcome.registry = {name: value.value for name, value in meta.items()}
    return outcome


def ensure_mlflow_store(paths: PlatformPaths) -> None:
    """Create and migrate the MLflow store once, before steps that might do it at the same time.

    Two processes migrating a fresh SQLite store at once fail with "duplicate column name".
    """
    _store(paths).client().search_experiments(max_results=1)


def print_outcome(outcome: RunOutcome) -> None:
    status = "PASSED" if outcome.success else "STOPPED"
    print(f"== {outcome.model}: {status} (dagster run {outcome.run_id})")
    for gate in outcome.gates:
        mark = "pass" if gate.passed else "FAIL"
        print(f"  [{mark}] {gate.asset}:{gate.check}")
        if not gate.passed:
            for line in gate.description.splitlines()[1:]:
                print(f"         {line.strip()}")
    for failure in outcome.failures:
        if "blocking asset check" in failure:
            continue  # the failing gates are listed above
        print(f"  [stop] {failure}")
    if outcome.registry:
        print(f"  registry: {outcome.registry.get('note')}")
    champion = _champion_line(outcome.model)
    if champion:
        print(f"  {champion}")


def _champion_line(model: str) -> str:
    from ml_platform.stores.registry import current_champion

    try:
        champion = current_champion(_store(), model)
    except Exception as error:  # the summary must not hide the run's outcome behind a registry error
        return f"champion: unknown ({type(error).__name__}: {error})"
    if champion is None:
        return "champion: none yet"
    return f"champion: version {champion.version} (snapshot {champion.tags.get('ml_platform.snapshot_id', '?')[:12]})"


def _store(paths: PlatformPaths | None = None):
    from ml_platform.stores.registry import Store

    paths = paths or PlatformPaths.from_environment()
    return Store(paths.tracking_uri, paths.registry_uri, paths.artifact_root)


def explain(model: str, version: str | None = None, paths: PlatformPaths | None = None) -> str:
    """The evidence chain of a registered version, from its alias back to the landing files' hashes."""
    from ml_platform.models import get_spec
    from ml_platform.stores.registry import version_details
    from ml_platform.stores.snapshot import SNAPSHOT_ID_PATTERN, read_manifest

    get_spec(model)
    paths = paths or PlatformPaths.from_environment()
    details = version_details(_store(paths), model, version)
    tags = details["tags"]

    def tag(name: str) -> str:
        return tags.get(f"ml_platform.{name}", "?")

    lines = [
        f"{model} version {details['version']}  aliases: {', '.join(details['aliases']) or 'none'}",
        f"  promoted at:        {tag('promoted_at')} (previous champion: {tag('previous_champion')})",
        f"  model artifact:     {details['source']}",
        f"  training run:       MLflow {details['run_id']} (dagster run {tag('training_dagster_run_id')})",
        f"  code:               git {tag('git_commit')} dirty={tag('git_dirty')}",
        f"  parameters:         {tag('params')} (digest {tag('params_digest')[:12]})",
        f"  compared with:      champion {tag('compared_with_champion')}",
        "  gates:",
    ]
    for gate, verdict in sorted(json.loads(tags.get("ml_platform.gates", "{}")).items()):
        lines.append(f"    {verdict:7} {gate}")
    metrics = {
        k: v for k, v in details["run_metrics"].items() if "." not in k or k.startswith(("baseline.", "champion."))
    }
    lines.append("  metrics (test split): " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
    snapshot_id = tags.get("ml_platform.snapshot_id", "")
    lines.append(f"  features:           {tag('features_id')}")
    lines.append(f"  snapshot:           {snapshot_id}")
    snapshot_path = paths.snapshots(model) / snapshot_id
    if not SNAPSHOT_ID_PATTERN.fullmatch(snapshot_id):  # a registry tag is data, never a path to follow
        lines.append(f"    (the tag {snapshot_id[:80]!r} is not a snapshot id)")
    elif snapshot_path.is_dir():
        snapshot = read_manifest(snapshot_path)
        lines.append(f"    {snapshot.rows:,} rows, written {snapshot.created_at}, data sha256 {snapshot.data_sha256}")
        lines.append("  source files:")
        lines += [f"    {s.name}  sha256 {s.sha256}  {s.rows:,} rows" for s in snapshot.sources]
    else:
        lines.append(f"    (snapshot folder {snapshot_path} is not on this machine)")
    return "\n".join(lines)
