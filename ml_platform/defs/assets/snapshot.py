"""``<model>/dataset_snapshot`` and its data gates: landing files frozen, then judged.

Dagster stores the snapshot before its checks run, so a failing gate names the very snapshot it
judged; what keeps bad data out is that every later step requires those gates to have passed for it.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from ml_platform.defs.decisions import landing_refusals_recorded, record_dropped_columns, record_gate_failures
from ml_platform.defs.gating import INFRASTRUCTURE_RETRY, SNAPSHOT_ID, check_result, evidence_failures, latest_metadata
from ml_platform.defs.resources import PlatformHome
from ml_platform.keys import SNAPSHOT, ModelKeys
from ml_platform.rules import contracts
from ml_platform.rules.spec import ModelSpec, resolve_ref

SNAPSHOT_GATE_DESCRIPTIONS = {
    "schema_holds": "The snapshot satisfies the model's pandera raw-data contract (columns, types, ranges).",
    "has_enough_rows": "The snapshot has at least the spec's min_rows rows.",
    "has_no_nulls": "No nulls in the key, label, feature, segment or event-time columns.",
    "labels_are_known": "Every label is a declared class, and every declared class occurs.",
    "keys_are_unique": "The key column has no duplicate values.",
    "has_every_segment": "Every expected segment is present with at least its minimum share: stops partial exports.",
    "is_fresh": "The newest event is no older than the spec's max_age (and not in the future).",
}


def build_snapshot(spec: ModelSpec, keys: ModelKeys) -> dg.Definitions:
    """The snapshot asset and one blocking check per data gate the spec declares."""

    @dg.asset(
        key=keys.snapshot,
        group_name=keys.group,
        kinds={"parquet"},
        description=f"An immutable, content-addressed snapshot of {spec.name!r}'s landing files, "
        "verified on every read from storage.",
        retry_policy=INFRASTRUCTURE_RETRY,
    )
    def dataset_snapshot(context: dg.AssetExecutionContext, platform: PlatformHome) -> dg.MaterializeResult:
        from ml_platform.stores.landing import survey
        from ml_platform.stores.snapshot import read_model_landing, take_snapshot

        paths = platform.paths()
        landing = spec.landing_path(paths.home)
        folder = survey(landing)
        found = {"landing": str(landing), "files": [p.name for p in folder.files], "ignored": list(folder.ignored)}
        with evidence_failures(SNAPSHOT, spec.name), landing_refusals_recorded(context, paths, spec, found):
            context.log.info(f"reading landing files in {landing}")
            frame, sources = read_model_landing(spec, landing)
            context.log.info(f"read {len(frame):,} rows from {len(sources)} file(s); hashing and writing the snapshot")
            snapshot = take_snapshot(frame, sources, paths.snapshots(spec.name), run_id=context.run_id)
        context.log.info(
            f"snapshot {snapshot.snapshot_id[:12]} {'reused' if snapshot.reused else 'written'}: "
            f"{snapshot.rows:,} rows from {len(sources)} file(s)"
        )
        record_dropped_columns(context, paths, spec, snapshot.snapshot_id, sources)
        metadata = _snapshot_metadata(spec, snapshot, frame, landing)
        return dg.MaterializeResult(
            metadata={SNAPSHOT_ID: snapshot.snapshot_id, **metadata, **_landing_metadata(sources, folder.ignored)},
            data_version=dg.DataVersion(snapshot.snapshot_id),
        )

    @dg.multi_asset_check(
        specs=[
            dg.AssetCheckSpec(name, asset=keys.snapshot, blocking=True, description=SNAPSHOT_GATE_DESCRIPTIONS[name])
            for name in contracts.snapshot_gate_names(spec)
        ],
        name=keys.snapshot_gates,
    )
    def snapshot_checks(
        context: dg.AssetCheckExecutionContext, platform: PlatformHome
    ) -> Iterator[dg.AssetCheckResult]:
        from ml_platform.stores.snapshot import keep_typed, load_snapshot

        snapshot_id = latest_metadata(context.instance, keys.snapshot)[SNAPSHOT_ID]
        root = platform.paths().snapshots(spec.name)
        with evidence_failures(SNAPSHOT, spec.name):
            snapshot, frame = load_snapshot(root, snapshot_id, run_id=context.run.run_id)
        contract = resolve_ref(spec.contract)
        subject = f"{SNAPSHOT} {spec.name!r} {snapshot_id[:12]}"
        sources = [(source.name, source.rows) for source in snapshot.sources]
        now = datetime.now(UTC)
        results, typed = contracts.typed_snapshot_gates(frame, spec, contract, subject, now=now, sources=sources)
        if typed is not None:  # validated_features builds on this very typing: no need to validate twice
            keep_typed(context.run.run_id, root, snapshot_id, spec.contract, typed)
        record_gate_failures(context, platform.paths(), spec, results, {SNAPSHOT_ID: snapshot_id})
        for result in results:
            yield check_result(keys.snapshot, result, SNAPSHOT_ID, snapshot_id)

    return dg.Definitions(assets=[dataset_snapshot], asset_checks=[snapshot_checks])


def _landing_metadata(sources, ignored) -> dict:
    """What this run read differently from the files as they landed: columns dropped, entries ignored.

    From this run's reading, not the snapshot's manifest: a reused snapshot was written by an earlier
    run, whose landing files may have carried other extra columns.
    """
    dropped = {source.name: list(source.dropped_columns) for source in sources if source.dropped_columns}
    metadata = {"ignored_files": dg.MetadataValue.json(list(ignored))}
    if dropped:
        metadata["dropped_columns"] = dg.MetadataValue.json(dropped)
    return metadata


def _snapshot_metadata(spec: ModelSpec, snapshot, frame, landing) -> dict:
    """What a reviewer wants to see about a snapshot without opening it."""
    sources = "| file | rows | bytes | sha256 |\n|---|---|---|---|\n" + "".join(
        f"| {s.name} | {s.rows:,} | {s.bytes:,} | `{s.sha256[:16]}…` |\n" for s in snapshot.sources
    )
    metadata = {
        "path": dg.MetadataValue.path(str(snapshot.path)),
        "rows": snapshot.rows,
        "columns": dg.MetadataValue.json(list(snapshot.columns)),
        "source_files": dg.MetadataValue.md(sources),
        "source_hashes": dg.MetadataValue.json({s.name: s.sha256 for s in snapshot.sources}),
        "landing": dg.MetadataValue.path(str(landing)),
        "reused": snapshot.reused,
    }
    if spec.label in frame.columns:
        metadata["label_balance"] = dg.MetadataValue.json(
            contracts.bounded_counts(frame[spec.label].astype(str).value_counts())
        )
    if spec.segments and spec.segments.column in frame.columns:
        metadata["rows_per_segment"] = dg.MetadataValue.json(
            contracts.bounded_counts(frame[spec.segments.column].astype(str).value_counts())
        )
    if spec.freshness and spec.freshness.column in frame.columns:
        times = contracts.event_time(frame, spec.freshness.column).dropna()
        if not times.empty:
            metadata["event_time_range"] = dg.MetadataValue.json([times.min().isoformat(), times.max().isoformat()])
    return metadata
