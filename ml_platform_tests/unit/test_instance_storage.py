"""The embedded instance's storage: Dagster's SQLite storage with engines kept per event-log shard."""

from __future__ import annotations

import dagster as dg

from ml_platform.instance_storage import KEPT_ENGINES, EngineKeepingSqliteEventLogStorage


@dg.asset
def numbers() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"rows": 3})


@dg.asset_check(asset=numbers, blocking=True)
def numbers_are_few() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


def _kept_engines_config(base_dir) -> dict:
    return {
        "storage": {
            "custom": {
                "module": "ml_platform.instance_storage",
                "class": "SqliteStorage",
                "config": {"base_dir": str(base_dir)},
            }
        }
    }


def test_the_instance_uses_it_and_a_home_it_wrote_reads_back_with_dagsters_own_storage(tmp_path):
    home = tmp_path / "dagster"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home), overrides=_kept_engines_config(home)) as instance:
        assert isinstance(instance.event_log_storage, EngineKeepingSqliteEventLogStorage)
        result = dg.materialize([numbers, numbers_are_few], instance=instance)
        run_id = result.run_id
        written = len(instance.all_logs(run_id))

    with dg.instance_for_test(temp_dir=str(home), overrides={"storage": {"sqlite": {"base_dir": str(home)}}}) as stock:
        assert type(stock.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert len(stock.all_logs(run_id)) == written > 0
        latest = stock.get_latest_materialization_event(numbers.key)
        assert latest is not None and latest.asset_materialization.metadata["rows"].value == 3
        check = stock.event_log_storage.get_latest_asset_check_execution_by_key([numbers_are_few.check_key])
        assert check[numbers_are_few.check_key].run_id == run_id


def test_it_keeps_at_most_a_bounded_number_of_engines(tmp_path):
    storage = EngineKeepingSqliteEventLogStorage(str(tmp_path))
    for run in range(KEPT_ENGINES + 5):
        with storage.run_connection(f"run-{run}"):
            pass
    with storage.index_connection():
        pass

    assert len(storage._engines) == KEPT_ENGINES  # noqa: SLF001 - the bound is the point of the test
    assert next(reversed(storage._engines)) == "index"  # noqa: SLF001 - most recently used is kept
    assert "run-0" not in storage._engines  # noqa: SLF001


def test_without_a_base_dir_it_stores_under_dagster_home(tmp_path, monkeypatch):
    from ml_platform.instance_storage import SqliteStorage

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    storage = SqliteStorage.from_config_value(None, {})

    assert storage.base_dir == str(tmp_path)
    assert (tmp_path / "history" / "runs").is_dir()  # Dagster's own layout: a stock instance reads it
