"""The evidence chain of a registered version, as ``ml-platform explain`` (and ``approve``, and a CI model
card) show it: from its alias back to the landing files' hashes."""

from __future__ import annotations

import json

from ml_platform.keys import REGISTRY_TAG
from ml_platform.settings import PlatformPaths


def explain(model: str, version: str | None = None, paths: PlatformPaths | None = None) -> str:
    """The evidence chain of ``version`` (default: the champion).

    Raises:
        LookupError: the model has no such version, or no champion.
    """
    from ml_platform.discovery import get_spec
    from ml_platform.stores.registry import Store, version_details

    get_spec(model)
    paths = paths or PlatformPaths.from_environment()
    details = version_details(Store.from_paths(paths), model, version)
    tags = details["tags"]

    def tag(name: str) -> str:
        return tags.get(f"{REGISTRY_TAG}{name}", "?")

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
    for gate, verdict in sorted(json.loads(tags.get(f"{REGISTRY_TAG}gates", "{}")).items()):
        lines.append(f"    {verdict:7} {gate}")
    metrics = {
        k: v for k, v in details["run_metrics"].items() if "." not in k or k.startswith(("baseline.", "champion."))
    }
    lines.append("  metrics (test split): " + ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
    lines.append(f"  features:           {tag('features_id')}")
    lines += _snapshot_lines(paths, model, tags.get(f"{REGISTRY_TAG}snapshot_id", ""))
    return "\n".join(lines)


def _snapshot_lines(paths: PlatformPaths, model: str, snapshot_id: str) -> list[str]:
    from ml_platform.stores.snapshot import SNAPSHOT_ID_PATTERN, read_manifest

    lines = [f"  snapshot:           {snapshot_id}"]
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
    return lines
