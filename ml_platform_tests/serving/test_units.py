"""Unit tests of the server's pure parts and adapters: routing hash, payloads, the contract's fast path,
micro-batching, the artifact manifest and the online log."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from growth.conversion.demo_data import generate

from ml_platform.errors import ArtifactTampered, ArtifactUnverified, RequestRefused
from ml_platform.serving import log as online
from ml_platform.serving.batching import MicroBatcher, Retired
from ml_platform.serving.payload import parse_payload
from ml_platform.serving.routing import BUCKETS, goes_to_canary, routing_bucket, shadow_sampled
from ml_platform.serving.validation import ScoringContract
from ml_platform.stores.artifacts import (
    MANIFEST_DIGEST_TAG,
    MANIFEST_TAG,
    folder_manifest,
    manifest_tags,
    recorded_manifest,
    require_manifest,
    verify,
)
from ml_platform_tests.models import CONVERSION, IRIS
from ml_platform_tests.serving.conftest import session_rows

# -- routing -----------------------------------------------------------------------------------------


def test_routing_bucket_is_sha256_mod_10000():
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"user-42").digest()[:8], "big") % BUCKETS
    assert routing_bucket("user-42") == expected
    assert all(routing_bucket(f"user-{n}") == routing_bucket(f"user-{n}") for n in range(100))


def test_canary_share_holds_over_2000_keys_and_is_sticky():
    keys = [f"user-{n}" for n in range(2000)]
    share = sum(goes_to_canary(key, 10.0) for key in keys) / len(keys)
    assert 0.08 <= share <= 0.12, share  # binomial sd at n=2000 is 0.0067: 3 sd
    assert [goes_to_canary(key, 10.0) for key in keys] == [goes_to_canary(key, 10.0) for key in keys]
    # raising the share only adds keys: nobody already in the canary leaves it
    assert {k for k in keys if goes_to_canary(k, 10.0)} <= {k for k in keys if goes_to_canary(k, 25.0)}


def test_canary_bounds_and_shadow_sample_is_independent():
    keys = [f"user-{n}" for n in range(2000)]
    assert not any(goes_to_canary(key, 0.0) for key in keys)
    assert all(goes_to_canary(key, 100.0) for key in keys)
    canary = {k for k in keys if goes_to_canary(k, 50.0)}
    shadow = {k for k in keys if shadow_sampled(k, 0.5)}
    assert 0.4 <= len(canary & shadow) / len(canary) <= 0.6  # the shadow's sample is not the canary's half


# -- payloads ----------------------------------------------------------------------------------------

COLUMNS = ("a", "b")


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        (b"", 400, "empty body"),
        (b"{not json", 400, "not JSON"),
        (b"[1, 2]", 422, "dataframe_split"),
        (b'{"inputs": [1]}', 422, "['inputs']"),
        (b'{"dataframe_split": {"columns": ["a"], "data": [[1]]}}', 422, "missing column(s) ['b']"),
        (b'{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}}', 422, "unexpected column(s) ['c']"),
        (b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1]]}}', 422, "row 0 has 1 values; expected 2"),
        (b'{"dataframe_records": [{"a": 1, "b": 2}, {"a": 1}]}', 422, "row 1 has different columns"),
        (b'{"dataframe_records": []}', 422, "0 rows"),
        (json.dumps({"dataframe_records": [{"a": 1, "b": 2}] * 11}).encode(), 413, "at most 10 rows"),
    ],
)
def test_a_bad_payload_is_refused_by_name(body, status, named):
    with pytest.raises(RequestRefused, match=None) as refused:
        parse_payload(body, COLUMNS, "label", max_rows=10)
    assert refused.value.status == status
    assert named in str(refused.value)


def test_payload_formats_give_rows_in_contract_order_and_drop_the_label():
    split = {"dataframe_split": {"columns": ["b", "label", "a"], "data": [[2, 0, 1]], "index": [7]}}
    records = {"dataframe_records": [{"label": 0, "b": 2, "a": 1}]}
    for payload in (split, records):
        rows = parse_payload(json.dumps(payload).encode(), COLUMNS, "label", max_rows=10)
        assert rows.columns == COLUMNS and rows.rows == [[1, 2]]


# -- the contract: the fast path and pandera agree -----------------------------------------------------


def _rows(contract, records):
    return parse_payload(json.dumps({"dataframe_records": records}).encode(), contract.columns, contract.label, 100)


def test_the_fast_path_types_rows_exactly_as_pandera_does():
    contract = ScoringContract(CONVERSION)
    assert contract.plans is not None
    rows = _rows(contract, session_rows(20))
    fast = pd.DataFrame(contract._fast(rows.rows))
    slow = contract.schema.validate(pd.DataFrame(rows.rows, columns=list(contract.columns)), lazy=True)
    pd.testing.assert_frame_equal(fast, slow.reset_index(drop=True))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"price": "abc"}, "column 'price': observed ['abc'] in row(s) [0], expected a value of type float64"),
        ({"price": -3.0}, "column 'price': observed ['-3.0'] in row(s) [0], expected greater_than(0)"),
        ({"region": "mars"}, "column 'region': observed ['mars'] in row(s) [0], expected one of"),
        ({"returning_customer": None}, "column 'returning_customer': observed null"),
        ({"returning_customer": "yes"}, "column 'returning_customer'"),
        ({"event_time": "yesterday"}, "column 'event_time': observed ['yesterday']"),
        ({"pages_viewed": 0}, "column 'pages_viewed': observed ['0'] in row(s) [0], expected greater_than_or_equal_to"),
    ],
)
def test_a_row_breaking_the_contract_is_refused_naming_column_value_and_expectation(change, named):
    contract = ScoringContract(CONVERSION)
    rows = _rows(contract, [session_rows(1)[0] | change])
    assert contract._fast(rows.rows) is None
    with pytest.raises(RequestRefused, match="breaks ConversionRecord") as refused:
        contract.validate(rows.rows)
    assert named in str(refused.value)
    assert refused.value.status == 422


def test_what_only_pandera_accepts_is_still_accepted():
    """Coercible values the fast path leaves alone (a number as text) are pandera's to accept."""
    contract = ScoringContract(CONVERSION)
    rows = _rows(contract, [session_rows(1)[0] | {"price": "12.5", "session_id": 7}])
    assert contract._fast(rows.rows) is None
    typed = contract.validate(rows.rows)
    assert typed["price"].iloc[0] == 12.5 and typed["session_id"].iloc[0] == "7"


def test_one_bad_request_in_a_batch_does_not_refuse_the_others():
    contract = ScoringContract(CONVERSION)
    good, bad = _rows(contract, session_rows(2)), _rows(contract, [session_rows(1)[0] | {"device": "toaster"}])
    validated = contract.validate_many([good, bad, good])
    assert validated.outcomes[0] == slice(0, 2) and validated.outcomes[2] == slice(2, 4)
    assert isinstance(validated.outcomes[1], RequestRefused) and "toaster" in str(validated.outcomes[1])
    assert validated.rows == 4 and len(validated.frame()) == 4
    pd.testing.assert_frame_equal(validated.frame(), contract.validate([*good.rows, *good.rows]))


def test_iris_contract_with_a_frame_wide_coerce_has_a_fast_path():
    contract = ScoringContract(IRIS)
    assert contract.plans is not None
    rows = _rows(contract, [{"sample_id": "s1", "sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4,
                             "petal_width": 0.2}])  # fmt: skip
    assert contract._fast(rows.rows) is not None


# -- micro-batching ----------------------------------------------------------------------------------


def test_concurrent_requests_share_one_call_and_a_lone_one_does_not_wait():
    calls: list[list[int]] = []

    def handle(items):
        calls.append(list(items))
        time.sleep(0.05)
        return [item * 10 for item in items]

    async def scenario():
        lone = MicroBatcher(handle, max_rows=4, wait_seconds=120.0).start()
        # Had the lone request sat out the 120 s wait, this would time out; no guess at how fast a machine is.
        alone = await asyncio.wait_for(lone.submit(1), timeout=60)
        lone.close()
        await lone.wait_closed()
        batcher = MicroBatcher(handle, max_rows=4, wait_seconds=0.5).start()
        results = await asyncio.gather(*(batcher.submit(n) for n in range(2, 12)))
        batcher.close()
        await batcher.wait_closed()
        return alone, results

    alone, results = asyncio.run(scenario())
    assert alone == 10 and calls[0] == [1]
    assert results == [n * 10 for n in range(2, 12)]
    assert all(len(call) <= 4 for call in calls)
    assert len(calls) < 1 + 10  # the ten concurrent requests were batched


def test_a_failing_batch_fails_its_requests_and_the_worker_goes_on():
    def handle(items):
        if "boom" in items:
            raise ValueError("model crashed")
        return items

    async def scenario():
        batcher = MicroBatcher(handle, max_rows=8, wait_seconds=0.0).start()
        with pytest.raises(ValueError, match="model crashed"):
            await batcher.submit("boom")
        answer = await batcher.submit("fine")
        batcher.close()
        with pytest.raises(Retired):
            await batcher.submit("late")
        await batcher.wait_closed()
        return answer

    assert asyncio.run(scenario()) == "fine"


def test_a_closed_batcher_still_answers_what_it_had_queued():
    async def scenario():
        batcher = MicroBatcher(lambda items: items, max_rows=2, wait_seconds=0.0).start()
        pending = [asyncio.ensure_future(batcher.submit(n)) for n in range(5)]
        await asyncio.sleep(0)
        batcher.close()
        results = await asyncio.gather(*pending)
        await batcher.wait_closed()
        return results

    assert asyncio.run(scenario()) == [0, 1, 2, 3, 4]


# -- the artifact manifest -----------------------------------------------------------------------------


def test_a_changed_missing_or_added_file_is_refused_by_name(tmp_path):
    (tmp_path / "MLmodel").write_text("flavors: {}")
    (tmp_path / "model.skops").write_bytes(b"\x00" * 64)
    manifest = folder_manifest(tmp_path)
    verify(tmp_path, manifest, "m", "3")  # unchanged: passes
    (tmp_path / "registered_model_meta").write_text("model_name: m")  # MLflow writes it at registration
    verify(tmp_path, manifest, "m", "3")
    (tmp_path / "model.skops").write_bytes(b"\x01" + b"\x00" * 63)
    with pytest.raises(ArtifactTampered, match=r"model 'm' version 3: .*model\.skops: sha256"):
        verify(tmp_path, manifest, "m", "3")
    (tmp_path / "model.skops").unlink()
    (tmp_path / "extra.pkl").write_bytes(b"x")
    with pytest.raises(ArtifactTampered, match=r"missing \['model\.skops'\].*not recorded \['extra\.pkl'\]"):
        verify(tmp_path, manifest, "m", "3")


def test_an_edited_manifest_tag_and_a_missing_one_are_refused():
    tags = manifest_tags({"MLmodel": "a" * 64}, "m")
    assert recorded_manifest(tags, "m", "1") == {"MLmodel": "a" * 64}
    edited = tags | {MANIFEST_TAG: json.dumps({"MLmodel": "b" * 64})}
    with pytest.raises(ArtifactTampered, match=MANIFEST_DIGEST_TAG):
        recorded_manifest(edited, "m", "1")
    assert recorded_manifest({}, "m", "1") is None
    with pytest.raises(ArtifactUnverified, match="no artifact hashes were recorded.*record-manifest"):
        require_manifest(None, "m", "1")


# -- the online log ------------------------------------------------------------------------------------


def _log_rows(cohort: str, status: str, count: int = 3) -> tuple[pd.DataFrame, dict, bool]:
    inputs = pd.DataFrame({"session_id": [f"s{n}" for n in range(count)]})
    columns = {"prediction": [1] * count, online.COHORT: cohort, online.STATUS: status,
               "scored_at": pd.Timestamp.now(tz="UTC")}  # fmt: skip
    return inputs, columns, status == online.OK


def test_each_flush_writes_new_files_once_and_readers_skip_shadow_and_error_rows(tmp_path):
    from ml_platform.defs.scoring import read_inference_log
    from ml_platform.settings import PlatformPaths
    from ml_platform.stores.release import read_online_log

    paths, spec = PlatformPaths(tmp_path), CONVERSION
    log = online.OnlineLog(paths.inference(spec.name), flush_rows=1000, flush_seconds=60)
    log.append(*_log_rows("production", online.OK))
    log.append(*_log_rows("shadow", online.OK))
    log.append(*_log_rows("canary", online.OK))
    log.append(*_log_rows("production", online.FAILED, 1))
    first = log.flush()
    log.append(*_log_rows("production", online.OK))
    second = log.flush()
    assert len(first) == 2 and len(second) == 1  # answered rows and error rows in files of their own
    assert len({*first, *second}) == 3 and all(p.name.startswith("online-") for p in first + second)
    assert not list(paths.inference(spec.name).glob(".*"))  # no partial left behind
    served = read_inference_log(paths, spec)
    assert len(served) == 9 and set(served[online.COHORT]) == {"production", "canary"}
    everything = read_online_log(paths.inference(spec.name))
    assert len(everything) == 13 and set(everything[online.STATUS]) == {online.OK, online.FAILED}


def test_the_append_that_fills_the_buffer_calls_on_full_once(tmp_path):
    log = online.OnlineLog(tmp_path, flush_rows=5, flush_seconds=60)
    calls: list[int] = []
    log.on_full = lambda: calls.append(log._rows)
    log.append(*_log_rows("production", online.OK, 3))
    assert calls == [] and not log.due()
    log.append(*_log_rows("production", online.OK, 3))  # 6 >= 5: full
    log.append(*_log_rows("production", online.OK, 3))  # still full: no second call before a flush
    assert calls == [6] and log.due()
    log.flush()
    log.append(*_log_rows("production", online.FAILED, 5))  # error rows fill it too
    assert calls == [6, 5]


def test_partials_of_dead_writers_are_removed_and_a_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    dead_partial = tmp_path / f".online-20261130T101010-{dead_pid}-1.parquet.partial"
    live_partial = tmp_path / f".online-20261130T101010-{os.getppid()}-1.parquet.partial"
    for path in (dead_partial, live_partial):
        path.write_bytes(b"PAR1 half")
    assert online.remove_partials(tmp_path) == [dead_partial]
    assert live_partial.exists() and not dead_partial.exists()


def test_frames_from_demo_rows_keep_their_types_in_the_log(tmp_path):
    contract = ScoringContract(CONVERSION)
    typed = contract.validate(_rows(contract, session_rows(3)).rows)
    reference = generate(3, seed=3).drop(columns=["converted"])
    assert list(typed.columns) == list(reference.columns)
    assert typed["pages_viewed"].dtype == "int64" and typed["returning_customer"].dtype == bool
