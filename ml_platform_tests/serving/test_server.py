"""The server, for real: uvicorn on 127.0.0.1, HTTP clients, the registry moved underneath it.

Every test starts from ``production`` on version 1 and no canary, and leaves it so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from ml_platform.errors import PromotionBlocked
from ml_platform.keys import CANARY, CHAMPION, PRODUCTION, REGISTRY_TAG
from ml_platform.rules.spec import Release
from ml_platform.serving import log as online
from ml_platform.serving.routing import goes_to_canary
from ml_platform.serving.settings import CANARY_PERCENT_TAG, RELEASE_MODE_TAG, ServerLimits
from ml_platform.settings import PlatformPaths
from ml_platform.stores.ledger import Decision, Ledger
from ml_platform.stores.recovery import followable_version
from ml_platform.stores.registry import Champion
from ml_platform.stores.release import read_online_log
from ml_platform_tests.serving.conftest import Client, free_port, running_server, server_command, session_rows

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def clean(registry):
    registry.move(PRODUCTION, "1")
    yield registry
    registry.move(PRODUCTION, "1")
    if CANARY in registry.store.client().get_registered_model(registry.spec.name).aliases:
        registry.remove(CANARY)


def _ok(client: Client, model: str, rows: list[dict], headers: dict | None = None) -> dict:
    status, body, _ = client.predict(model, {"dataframe_records": rows}, headers)
    assert status == 200, body
    return body


def test_bad_payloads_get_a_4xx_naming_the_problem_and_the_server_keeps_answering(clean, tmp_path):
    registry = clean
    model, row = registry.spec.name, session_rows(1)[0]
    limits = ServerLimits(max_body_bytes=4 << 20, max_rows=1_000, log_flush_seconds=0.2)
    many = session_rows(10_000)
    cases = [
        ({"dataframe_records": [{k: v for k, v in row.items() if k != "price"}]}, 422, "missing column(s) ['price']"),
        ({"dataframe_records": [row | {"price": "cheap"}]}, 422, "column 'price': observed ['cheap']"),
        ({"dataframe_records": [row | {"region": "mars"}]}, 422, "column 'region': observed ['mars']"),
        ({"dataframe_records": [row | {"discount": None}]}, 422, "column 'discount': observed null"),
        (b"", 400, "empty body"),
        (b"<xml/>", 400, "the body is not JSON"),
        (b"x" * (10 << 20), 413, "this server takes at most 4,194,304 (--max-body-bytes)"),
        ({"dataframe_split": {"columns": list(many[0]), "data": [list(r.values()) for r in many]}}, 413,
         "the request has 10,000 rows; this server takes at most 1,000 rows per request"),
    ]  # fmt: skip
    with running_server(registry.spec, registry.store, tmp_path, limits) as client:
        client.wait_serving(model, "1")
        for payload, status, named in cases:
            found, body, _ = client.predict(model, payload)
            assert (found, named in body["error"]) == (status, True), body
            assert _ok(client, model, [row])["version"] == "1"
        status, body, _ = client.predict("no-such-model", {"dataframe_records": [row]})
        assert status == 404 and model in body["error"]
        metrics = client.call("GET", "/metrics")[1]
        assert 'code="413"' in metrics and 'code="422"' in metrics and 'code="400"' in metrics
    log = read_online_log(PlatformPaths(tmp_path).inference(registry.spec.name))
    errors = log[log[online.STATUS] == online.FAILED]
    assert sorted(errors[online.HTTP_STATUS].astype(int)) == sorted(status for _, status, _ in cases)
    assert (log[online.STATUS] == online.OK).sum() == len(cases)


def test_an_alias_move_under_load_fails_no_request(clean, tmp_path):
    registry = clean
    model, old, new = registry.spec.name, "1", registry.versions[1]
    rows = session_rows(200, seed=4)
    versions, failures = [], []
    stop = threading.Event()

    def send(n: int):
        status, body, _ = client.predict(model, {"dataframe_records": [rows[n % len(rows)]]})
        (versions if status == 200 else failures).append(body.get("version") if status == 200 else (status, body))

    def load():  # until told to stop, however long the moves take: each one must happen under load
        with ThreadPoolExecutor(max_workers=8) as pool:
            n = 0
            while not stop.is_set() or n < 320:
                list(pool.map(send, range(n, n + 16)))
                n += 16

    with running_server(registry.spec, registry.store, tmp_path) as client:
        client.wait_serving(model, old)
        generator = threading.Thread(target=load)
        generator.start()
        try:
            for target in (new, old, new, old):
                registry.move(PRODUCTION, target)
                client.wait_serving(model, target)
                answered = len(versions) + len(failures)
                deadline = time.monotonic() + 60
                while len(versions) + len(failures) < answered + 40:  # requests keep flowing between moves
                    assert generator.is_alive() and time.monotonic() < deadline, f"no 40 answers after v{target}"
                    time.sleep(0.05)
        finally:
            stop.set()
            generator.join(timeout=300)
    assert not generator.is_alive(), "the load did not end within 300 s of the last move"
    assert failures == []
    assert len(versions) >= 320
    assert set(versions) == {old, new}


def test_canary_traffic_is_sticky_by_routing_key_and_shadow_never_changes_an_answer(clean, tmp_path):
    registry = clean
    model, canary_version = registry.spec.name, registry.versions[1]
    rows = session_rows(60, seed=6)
    keys = [f"user-{n}" for n in range(60)]
    limits = ServerLimits(log_flush_seconds=0.2)
    with running_server(registry.spec, registry.store, tmp_path, limits) as client:
        client.wait_serving(model, "1")
        baseline = [_ok(client, model, [row], {"X-Routing-Key": key}) for row, key in zip(rows, keys, strict=True)]
        registry.tag(canary_version, CANARY_PERCENT_TAG, "30")
        registry.tag(canary_version, RELEASE_MODE_TAG, "canary")
        registry.move(CANARY, canary_version)
        client.wait_until(lambda s, b: (b["models"][model]["canary"] or {}).get("serving") == canary_version)
        for _ in range(2):  # twice: the same key lands in the same cohort
            for row, key in zip(rows, keys, strict=True):
                answer = _ok(client, model, [row], {"X-Routing-Key": key})
                expected = "canary" if goes_to_canary(key, 30.0) else "production"
                assert answer["cohort"] == expected
                assert answer["version"] == (canary_version if expected == "canary" else "1")
        assert any(goes_to_canary(key, 30.0) for key in keys) and not all(goes_to_canary(key, 30.0) for key in keys)

        registry.tag(canary_version, RELEASE_MODE_TAG, "shadow")
        client.wait_until(lambda s, b: (b["models"][model]["canary"] or {}).get("mode") == "shadow")
        shadowed = [_ok(client, model, [row], {"X-Routing-Key": key}) for row, key in zip(rows, keys, strict=True)]
        strip = [{k: v for k, v in a.items() if k != "request_id"} for a in baseline]
        assert [{k: v for k, v in a.items() if k != "request_id"} for a in shadowed] == strip
        time.sleep(1.0)  # the shadow scores in the background; the log flushes every 0.2 s
    log = read_online_log(PlatformPaths(tmp_path).inference(registry.spec.name))
    shadow = log[log[online.COHORT] == online.SHADOW_COHORT]
    assert set(shadow[online.REQUEST_ID]) == {a["request_id"] for a in shadowed}
    assert set(shadow["model_version"]) == {canary_version}
    flipped = shadow.set_index(online.REQUEST_ID)["prediction"]
    answered = pd.Series({a["request_id"]: a["predictions"][0] for a in shadowed})
    assert (flipped[answered.index] != answered).mean() > 0.5  # the shadow's own answers, logged, never returned


def _flip_a_byte(registry, version: str) -> Path:
    from urllib.parse import unquote, urlsplit

    location = registry.store.client().get_model_version_download_uri(registry.spec.name, version)
    folder = Path(unquote(urlsplit(location).path))
    target = max((p for p in folder.rglob("*") if p.is_file() and p.name != "registered_model_meta"),
                 key=lambda p: p.stat().st_size)  # fmt: skip
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def test_a_tampered_or_unverifiable_version_is_refused_and_the_previous_one_keeps_serving(clean, tmp_path):
    registry = clean
    model, spare = registry.spec.name, registry.versions[2]
    changed = _flip_a_byte(registry, spare)
    client_store = registry.store.client()
    source = client_store.get_model_version(model, "1").source
    unverified = client_store.create_model_version(model, source=source).version  # no manifest recorded
    row = session_rows(1)[0]
    with running_server(registry.spec, registry.store, tmp_path) as client:
        client.wait_serving(model, "1")
        registry.move(PRODUCTION, spare)
        body = client.wait_until(lambda s, b: spare in b["models"][model]["refused"], what="the refusal")
        status, _, _ = client.call("GET", "/ready")
        assert status == 503 and body["models"][model]["serving"] == "1" and not body["ready"]
        assert f"version {spare}" in body["models"][model]["refused"][spare]
        assert changed.name in body["models"][model]["refused"][spare]
        assert _ok(client, model, [row])["version"] == "1"

        registry.move(PRODUCTION, str(unverified))
        body = client.wait_until(lambda s, b: str(unverified) in b["models"][model]["refused"], what="the refusal")
        assert "no artifact hashes were recorded" in body["models"][model]["refused"][str(unverified)]
        assert _ok(client, model, [row])["version"] == "1"

        registry.move(PRODUCTION, "1")
        client.wait_until(lambda s, b: s == 200 and b["ready"], what="ready again on v1")


def _released(home: Path, model: str, version: str) -> None:
    """The ledger record `ml-platform release` makes of a first release, in the server's home."""
    moves = {PRODUCTION: [None, version]}
    Ledger.for_home(home).record(Decision(model, "promoted", "release", "first release", {}, {"moves": moves}, version))


def test_a_production_moved_by_hand_is_not_followed_until_it_is_moved_back(clean, tmp_path):
    registry = clean
    model, by_hand, row = registry.spec.name, registry.versions[1], session_rows(1)[0]
    _released(tmp_path, model, "1")
    with running_server(registry.spec, registry.store, tmp_path) as client:
        client.wait_serving(model, "1")
        registry.move_by_hand(PRODUCTION, by_hand)
        body = client.wait_until(lambda s, b: by_hand in b["models"][model]["refused"], what="the refusal")
        why = body["models"][model]["refused"][by_hand]
        assert f"'production' points at v{by_hand}, put there outside the platform" in why and "names v1" in why
        assert body["models"][model]["problem"] == why and body["models"][model]["serving"] == "1"
        assert client.call("GET", "/ready")[0] == 503 and _ok(client, model, [row])["version"] == "1"
        with pytest.raises(PromotionBlocked, match=f"batch_predictions '{model}': refuses to follow production v"):
            followable_version(registry.store, PlatformPaths(tmp_path), registry.spec, "batch_predictions")

        with running_server(registry.spec, registry.store, tmp_path) as fresh:  # nothing verified loaded yet
            body = fresh.wait_until(lambda s, b: by_hand in b["models"][model]["refused"], what="the refusal")
            assert body["models"][model]["serving"] is None and not body["ready"]
            assert fresh.predict(model, {"dataframe_records": [row]})[0] == 503

        registry.move_by_hand(PRODUCTION, "1")  # moved back where the last release put it: followed again
        client.wait_until(lambda s, b: s == 200 and b["ready"], what="ready again on v1")
    with running_server(registry.spec, registry.store, tmp_path, accept_manual_alias_moves=True) as client:
        registry.move_by_hand(PRODUCTION, by_hand)  # the spec accepts hand moves: followed
        client.wait_serving(model, by_hand)


def test_a_production_moved_by_hand_is_recorded_once_and_so_is_the_move_back(clean, tmp_path):
    from ml_platform.stores.recovery import UNRECORDED_MOVE, reconcile

    registry, paths = clean, PlatformPaths(tmp_path)
    model, by_hand = registry.spec.name, registry.versions[1]
    released_at = "2026-01-01T00:00:00+00:00"  # a release of the past: its tag is older than any record below
    registry.store.client().set_model_version_tag(model, "1", f"{REGISTRY_TAG}production_at", released_at)
    _released(tmp_path, model, "1")
    ledger = Ledger.for_home(tmp_path)
    assert followable_version(registry.store, paths, registry.spec, "batch_predictions").version == "1"
    assert ledger.query(model, [UNRECORDED_MOVE]) == []  # where the last release put it: nothing to record

    registry.move_by_hand(PRODUCTION, by_hand)
    for _ in range(2):  # refused each time, recorded once
        with pytest.raises(PromotionBlocked, match=f"'production' was moved outside the platform: from v1 to "
                                                   f"v{by_hand}, noticed at .*Move production back to v1"):  # fmt: skip
            followable_version(registry.store, paths, registry.spec, "batch_predictions")
    (move,) = ledger.query(model, [UNRECORDED_MOVE])
    assert (move.version, move.evidence["alias"], move.evidence["from_version"]) == (by_hand, PRODUCTION, "1")
    found = reconcile(registry.store, paths, model, production=True)
    assert found.production_moved_by_hand == move and found.moved_by_hand is None and not found.recorded
    assert reconcile(registry.store, paths, model).production_moved_by_hand is None  # not asked: not looked up

    registry.move_by_hand(PRODUCTION, "1")  # back where the last release put it: followed, and the move recorded
    assert followable_version(registry.store, paths, registry.spec, "batch_predictions").version == "1"
    back = ledger.query(model, [UNRECORDED_MOVE])[-1]
    assert back.id != move.id and back.evidence["moves"] == {PRODUCTION: [by_hand, "1"]}
    assert reconcile(registry.store, paths, model, production=True).production_moved_by_hand is None


def test_a_canary_set_by_hand_gets_no_traffic_until_a_release_starts_it(clean, tmp_path):
    registry = clean
    model, spare, rows = registry.spec.name, registry.versions[1], session_rows(40, seed=12)
    registry.tag(spare, CANARY_PERCENT_TAG, "100")  # every request would go to it, were it followed
    registry.tag(spare, RELEASE_MODE_TAG, "canary")
    with running_server(registry.spec, registry.store, tmp_path) as client:
        client.wait_serving(model, "1")
        registry.move_by_hand(CANARY, spare)
        body = client.wait_until(lambda s, b: spare in b["models"][model]["refused"], what="the refusal")
        why = body["models"][model]["refused"][spare]  # never released, or its last release decided (`clean`)
        assert f"'canary' points at v{spare}, " in why and "outside the platform" in why, why
        assert body["models"][model]["canary"]["serving"] is None and not body["ready"]
        answers = [_ok(client, model, [row], {"X-Routing-Key": f"user-{n}"}) for n, row in enumerate(rows)]
        assert {(a["version"], a["cohort"]) for a in answers} == {("1", "production")}

        registry.move(CANARY, spare)  # tagged as `release start` tags it: followed
        client.wait_until(lambda s, b: (b["models"][model]["canary"] or {}).get("serving") == spare, what="canary")
        assert _ok(client, model, [rows[0]], {"X-Routing-Key": "user-0"})["version"] == spare


def test_a_champion_moved_by_hand_is_not_followed_where_champion_is_deployed(clean):
    registry = clean
    model, by_hand = registry.spec.name, registry.versions[1]
    try:
        with running_server(registry.spec, registry.store, registry.home, deployed_alias=CHAMPION) as client:
            client.wait_serving(model, "1")
            registry.move_by_hand(CHAMPION, by_hand)  # the graph's home's ledger says v1 is champion
            body = client.wait_until(lambda s, b: by_hand in b["models"][model]["refused"], what="the refusal")
            assert "'champion' points at v" in body["models"][model]["refused"][by_hand]
            assert "ml-platform approve" in body["models"][model]["problem"]
            assert body["models"][model]["serving"] == "1" and not body["ready"]
            registry.move_by_hand(CHAMPION, "1")
            client.wait_until(lambda s, b: s == 200 and b["ready"], what="ready again on v1")
    finally:
        registry.move_by_hand(CHAMPION, "1")


def test_the_production_rule_without_a_ledger_trusts_only_versions_the_platform_put_in_production(clean):
    from ml_platform.stores.recovery import manual_move

    tags = dict(clean.store.client().get_model_version(clean.spec.name, "1").tags)
    released = Champion("1", "", tags)  # `clean` put it in production as a release does
    by_hand = Champion("1", "", {k: v for k, v in tags.items() if k != f"{REGISTRY_TAG}production_at"})
    release = clean.spec.release
    assert manual_move(None, clean.spec.name, release, released) is None
    assert "carries no ml_platform.production_at tag" in manual_move(None, clean.spec.name, release, by_hand)
    accepting = release.model_copy(update={"accept_manual_alias_moves": True})
    assert manual_move(None, clean.spec.name, accepting, by_hand) is None


def test_a_release_whose_ledger_record_is_on_its_way_is_not_taken_for_a_hand_move(tmp_path):
    from ml_platform.stores.recovery import manual_move

    _released(tmp_path, "m", "1")  # the ledger's last production change names v1
    recorded = Ledger.for_home(tmp_path).latest("m").recorded_at
    tag = f"{REGISTRY_TAG}production_at"
    spec_release = Release()
    moving = Champion("2", "", {tag: datetime.now(UTC).isoformat(timespec="seconds")})  # released just now
    earlier = Champion("2", "", {tag: "2026-01-01T00:00:00+00:00"})  # once in production, moved back by hand
    assert manual_move(PlatformPaths(tmp_path), "m", spec_release, moving) is None
    why = manual_move(PlatformPaths(tmp_path), "m", spec_release, earlier)
    assert f"last production change (#1, promoted at {recorded}) names v1" in why


def test_batch_loading_refuses_a_tampered_version_too(clean):
    from ml_platform.errors import ArtifactTampered
    from ml_platform.stores.registry import load_version

    with pytest.raises(ArtifactTampered, match=f"version {clean.versions[2]}: its artifact files differ"):
        load_version(clean.store, clean.spec.name, clean.versions[2])
    assert hasattr(load_version(clean.store, clean.spec.name, "1"), "predict")


def test_a_full_log_buffer_is_written_at_once_not_at_the_next_periodic_check(clean, tmp_path, monkeypatch):
    from ml_platform.serving import app

    monkeypatch.setattr(app, "FLUSH_CHECK_SECONDS", 3600.0)  # only a full buffer can cause a write now
    registry, rows = clean, session_rows(12, seed=9)
    folder = PlatformPaths(tmp_path).inference(registry.spec.name)
    limits = ServerLimits(log_flush_rows=10, log_flush_seconds=3600.0)
    with running_server(registry.spec, registry.store, tmp_path, limits) as client:
        client.wait_serving(registry.spec.name, "1")
        for row in rows[:9]:
            _ok(client, registry.spec.name, [row])
        time.sleep(0.5)
        assert not list(folder.glob("online-*.parquet"))  # 9 of 10: nothing is due
        _ok(client, registry.spec.name, [rows[9]])
        deadline = time.monotonic() + 60  # generous for a loaded machine; the periodic check is an hour away
        while not list(folder.glob("online-*.parquet")):
            assert time.monotonic() < deadline, "a full buffer was not written within 60 s"
            time.sleep(0.05)
        assert len(read_online_log(folder)) == 10


def test_a_server_killed_while_logging_leaves_no_partial_file_and_goes_on_after_restart(clean, tmp_path):
    registry = clean
    model, rows = registry.spec.name, session_rows(50, seed=8)
    folder = PlatformPaths(tmp_path).inference(model)

    def start() -> tuple[subprocess.Popen, Client]:
        port = free_port()
        command, env = server_command(registry.spec, registry.store, tmp_path, port)
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = Client(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 120
        while True:
            try:
                client.wait_serving(model, "1", timeout=2)
                return process, client
            except (AssertionError, OSError):
                assert process.poll() is None and time.monotonic() < deadline, "the server did not become ready"
                time.sleep(0.2)

    process, client = start()
    try:
        for n in range(200):  # flushes every 20 rows: files are being written all along
            client.predict(model, {"dataframe_records": [rows[n % len(rows)]]})
        written_before = set(folder.glob("online-*.parquet"))
        with ThreadPoolExecutor(max_workers=4) as pool:
            sent = [pool.submit(client.predict, model, {"dataframe_records": [row]}) for row in rows * 2]
            time.sleep(0.3)
            os.kill(process.pid, signal.SIGKILL)
            [future.exception() for future in sent]
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert written_before
    dead_partial = folder / f".online-20261130T000000-{process.pid}-999.parquet.partial"
    dead_partial.write_bytes(b"PAR1 half a file")  # what a kill in the middle of to_parquet leaves
    visible = sorted(folder.glob("online-*.parquet"))
    for path in visible:
        pd.read_parquet(path)  # every visible file is whole
    from ml_platform.defs.scoring import read_inference_log

    # a kill loses only what was buffered: at most flush_rows (20) of the 200 answered before it
    assert len(read_inference_log(PlatformPaths(tmp_path), registry.spec)) >= 180
    before = len(read_online_log(PlatformPaths(tmp_path).inference(registry.spec.name)))

    process, client = start()
    try:
        assert not list(folder.glob(".online-*.partial"))  # cleaned on restart
        for row in rows[:30]:
            assert _ok(client, model, [row])["version"] == "1"
        deadline = time.monotonic() + 60
        while len(list(folder.glob("online-*.parquet"))) == len(visible) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(list(folder.glob("online-*.parquet"))) > len(visible)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    # the 30 answered after the restart are all there: a graceful stop flushes the buffer
    assert len(read_online_log(PlatformPaths(tmp_path).inference(registry.spec.name))) == before + 30


def test_a_version_without_a_manifest_loads_for_serving_once_its_files_are_recorded(clean):
    from ml_platform.errors import ArtifactUnverified
    from ml_platform.stores.artifacts import record_manifest
    from ml_platform.stores.registry import load_version

    model, client = clean.spec.name, clean.store.client()
    version = str(client.create_model_version(model, source=client.get_model_version(model, "1").source).version)
    with pytest.raises(ArtifactUnverified, match=f"version {version}: no artifact hashes were recorded"):
        load_version(clean.store, model, version, require_manifest=True)
    assert hasattr(load_version(clean.store, model, version), "predict")  # batch scoring still loads it
    assert "MLmodel" in record_manifest(clean.store, model, version)
    assert hasattr(load_version(clean.store, model, version, require_manifest=True), "predict")
    with pytest.raises(ValueError, match="already has an artifact manifest"):
        record_manifest(clean.store, model, version)
