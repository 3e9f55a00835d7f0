"""Serving: ``ml-platform serve`` against ``mlflow models serve`` on the same registered model and machine.

A platform home is prepared once (``ml-platform demo-data conversion`` and ``ml-platform run
conversion``: the shipped conversion champion, a HistGradientBoosting pipeline), ``production`` is set
on it, and a second version of the same pipeline is registered through the platform (for the alias
moves). Then, on 127.0.0.1 only:

1. ``ml-platform serve conversion`` (uvicorn, one worker; the contract check and the inference log on)
   and ``mlflow models serve -m models:/conversion@production`` (MLflow's own FastAPI scoring server,
   one worker, ``--env-manager local``) each take ``wrk`` single-row JSON POSTs (a Lua script) at 1 and
   at 8 connections, ``duration`` seconds each, one after the other (never at once);
2. ``ml-platform serve`` takes 8 connections while ``production`` moves 10 times between the two
   versions; every request must succeed.

Each server gets its natural payload for the same row: the platform's the raw contract without the
label (9 columns, typed and range-checked), MLflow's the model signature (7 features).
``wrk`` is Debian's (``apt-get install -y wrk``). The two cores are shared by the server and ``wrk``.

    python -m bench.bench_serving [--duration 20] [--moves 10] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.common import PYTHON, RESULTS, ROOT, stop_group, write_doc_section

MODEL = "conversion"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:serving:start -->", "<!-- bench:serving:end -->"
BIN = Path(PYTHON).parent
TARGETS = {"throughput_8": 10.0, "p99_8": 1 / 5, "p50_1": 0.6}


@dataclass(frozen=True)
class Load:
    """One ``wrk`` run: requests per second, latency percentiles (ms), failures."""

    connections: int
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    failed: int
    seconds: float


def _env(home: Path) -> dict[str, str]:
    clean = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "DAGSTER_HOME", "ML_PLATFORM_ARTIFACT_ROOT")
    return {k: v for k, v in os.environ.items() if k not in clean} | {
        "ML_PLATFORM_HOME": str(home),
        "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
        "GIT_PYTHON_REFRESH": "quiet",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",  # mlflow models serve execs uvicorn from here
    }


def template() -> Path:
    """A platform home with the shipped conversion champion as ``production`` and a second version, built once."""
    path = RESULTS / "homes" / "serving-champion"
    if (path / ".ready").exists():
        return path
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    cli = str(BIN / "ml-platform")
    for command in ([cli, "demo-data", MODEL], [cli, "run", MODEL]):
        subprocess.run(command, check=True, env=_env(path), cwd=ROOT)
    subprocess.run([PYTHON, "-m", "bench.bench_serving", "prepare", str(path)], check=True, env=_env(path), cwd=ROOT)
    (path / ".ready").write_text("")
    return path


def _prepare(home: Path) -> None:
    """``production`` on the champion, and the same pipeline registered again (with its own files) as version 2."""
    import mlflow
    import mlflow.sklearn
    from growth.conversion.spec import SPEC as CONVERSION

    from ml_platform.settings import PlatformPaths
    from ml_platform.stores.registry import Store, current_champion, load_version, register_candidate

    paths = PlatformPaths(home)
    store = Store(paths.tracking_uri, paths.registry_uri, paths.artifact_root)
    champion = current_champion(store, MODEL)
    pipeline = load_version(store, MODEL, champion.version)
    with mlflow.start_run(experiment_id=store.experiment_id(MODEL), run_name="bench-second-version") as run:
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            pip_requirements=["scikit-learn"],
            skops_trusted_types=list(CONVERSION.skops_trusted_types),
        )
    register_candidate(store, MODEL, run.info.run_id, info.model_uri, "bench-second-version", champion.version,
                       {"ml_platform.bench": "second version"}, promote=False)  # fmt: skip
    _put_in_production(store.client(), champion.version)


def _put_in_production(client, version: str) -> None:
    """Move ``production`` as a release does: the server follows only a version tagged ``production_at`` (or
    one its home's ledger names), never a hand move (``stores.recovery.manual_move``)."""
    from datetime import UTC, datetime

    from ml_platform.keys import PRODUCTION, REGISTRY_TAG

    now = datetime.now(UTC).isoformat(timespec="seconds")
    client.set_model_version_tag(MODEL, version, f"{REGISTRY_TAG}production_at", now)
    client.set_registered_model_alias(MODEL, PRODUCTION, version)


def _payloads(home: Path) -> tuple[bytes, bytes]:
    """One session as the platform takes it (the raw contract without the label) and as MLflow takes it."""
    from growth.conversion.demo_data import generate
    from growth.conversion.spec import SPEC as CONVERSION

    frame = generate(1, seed=11).drop(columns=[CONVERSION.label])
    frame["event_time"] = frame["event_time"].map(lambda t: t.isoformat())
    row = json.loads(frame.to_json(orient="records"))[0]
    features = {k: row[k] for k in CONVERSION.features}
    return json.dumps({"dataframe_records": [row]}).encode(), json.dumps({"dataframe_records": [features]}).encode()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(url: str, process: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the server behind {url} did not become ready (exit code {process.poll()})")
        time.sleep(0.5)


def _start(command: list[str], env: dict[str, str], ready_url: str, log: Path) -> subprocess.Popen:
    handle = log.open("w")
    process = subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    _wait(ready_url, process)
    return process


def wrk(url: str, body: bytes, connections: int, seconds: int) -> Load:
    """One ``wrk`` run posting ``body`` to ``url`` over ``connections`` connections, one thread."""
    script = RESULTS / f"wrk-post-{abs(hash(body))}.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
    )
    completed = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return _parse_wrk(completed.stdout, connections, seconds)


def _parse_wrk(text: str, connections: int, seconds: int) -> Load:
    def milliseconds(label: str) -> float:
        found = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        if not found:
            raise RuntimeError(f"wrk printed no {label} latency:\n{text}")
        return float(found[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found[2]]

    requests = int(re.search(r"(\d+) requests in", text)[1])
    failed = int(re.search(r"Non-2xx or 3xx responses: (\d+)", text)[1]) if "Non-2xx" in text else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    failed += sum(int(n) for n in errors.groups()) if errors else 0
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", text)[1])
    return Load(connections, requests, per_second, milliseconds("50%"), milliseconds("99%"), failed, seconds)


def _move_aliases(home: Path, ready_url: str, moves: int, done: list[str]) -> None:
    """Move ``production`` back and forth ``moves`` times, each time until the server reports the new version."""
    from ml_platform.settings import PlatformPaths
    from ml_platform.stores.registry import Store

    paths = PlatformPaths(home)
    client = Store(paths.tracking_uri, paths.registry_uri, paths.artifact_root).client()
    versions = sorted(v.version for v in client.search_model_versions(f"name = '{MODEL}'"))[:2]
    for move in range(moves):
        target = versions[(move + 1) % 2]
        _put_in_production(client, target)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _ready(ready_url)["models"][MODEL]["serving"] != str(target):
            time.sleep(0.1)
        done.append(str(target))
        time.sleep(1.0)
    _put_in_production(client, versions[0])


def _ready(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:  # 503 while a new version loads: its body says what serves
        return json.loads(error.read())


@dataclass
class Comparison:
    platform: dict[int, Load]
    mlflow: dict[int, Load]
    moves: Load
    moved: list[str]


def compare(duration: int = 20, moves: int = 10) -> Comparison:
    """Both servers, one after the other, at 1 and 8 connections; then the alias moves under load."""
    home = template()
    shutil.rmtree(home / "inference", ignore_errors=True)
    env = _env(home)
    ours, theirs = _payloads(home)
    logs = RESULTS / "serving"
    logs.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start([str(BIN / "ml-platform"), "serve", MODEL, "--port", str(port)], env, f"{base}/ready",
                    logs / "ml-platform-serve.log")  # fmt: skip
    try:
        url = f"{base}/v1/models/{MODEL}/predict"
        wrk(url, ours, 8, 3)  # warm-up
        platform = {c: wrk(url, ours, c, duration) for c in (1, 8)}
        moved: list[str] = []
        mover = threading.Thread(target=_move_aliases, args=(home, f"{base}/ready", moves, moved))
        mover.start()
        during = wrk(url, ours, 8, max(duration, 3 * moves))
        mover.join()
    finally:
        stop_group(server)
    port = _free_port()
    command = [str(BIN / "mlflow"), "models", "serve", "-m", f"models:/{MODEL}@production", "-h", "127.0.0.1",
               "-p", str(port), "--env-manager", "local", "--workers", "1"]  # fmt: skip
    server = _start(command, env, f"http://127.0.0.1:{port}/ping", logs / "mlflow-models-serve.log")
    try:
        url = f"http://127.0.0.1:{port}/invocations"
        wrk(url, theirs, 8, 3)
        mlflow = {c: wrk(url, theirs, c, duration) for c in (1, 8)}
    finally:
        stop_group(server)
    return Comparison(platform, mlflow, during, moved)


def verdicts(result: Comparison) -> list[tuple[str, str, str, bool]]:
    """``(target, figure, required, holds)`` for each serving target."""
    ours8, theirs8, ours1, theirs1 = result.platform[8], result.mlflow[8], result.platform[1], result.mlflow[1]
    throughput, p99, p50 = (
        ours8.per_second / theirs8.per_second,
        ours8.p99_ms / theirs8.p99_ms,
        ours1.p50_ms / theirs1.p50_ms,
    )
    return [
        ("serving: throughput at 8 connections",
         f"{throughput:.1f}× ({ours8.per_second:,.0f} vs {theirs8.per_second:,.0f} req/s)",
         "≥ 10× mlflow models serve", throughput >= TARGETS["throughput_8"]),
        ("serving: p99 at 8 connections", f"{p99:.2f}× ({ours8.p99_ms:.1f} vs {theirs8.p99_ms:.1f} ms)",
         "≤ 1/5 of mlflow models serve", p99 <= TARGETS["p99_8"]),
        ("serving: p50 at 1 connection", f"{p50:.2f}× ({ours1.p50_ms:.1f} vs {theirs1.p50_ms:.1f} ms)",
         "≤ 0.6× mlflow models serve", p50 <= TARGETS["p50_1"]),
        (f"serving: failed requests across {len(result.moved)} alias moves under load",
         f"{result.moves.failed} of {result.moves.requests:,}", "0", result.moves.failed == 0 and bool(result.moved)),
    ]  # fmt: skip


def table(result: Comparison, duration: int) -> str:
    def line(name: str, load: Load) -> str:
        return (f"| {name} | {load.connections} | {load.per_second:,.1f} | {load.p50_ms:.1f} | {load.p99_ms:.1f} | "
                f"{load.requests:,} | {load.failed} |")  # fmt: skip

    rows = [line("ml-platform serve", result.platform[c]) for c in (1, 8)]
    rows += [line("mlflow models serve", result.mlflow[c]) for c in (1, 8)]
    rows.append(line(f"ml-platform serve, {len(result.moved)} alias moves", result.moves))
    checks = "\n".join(f"| {t} | {f} | {r} | {'holds' if h else 'DOES NOT HOLD'} |" for t, f, r, h in verdicts(result))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"`python -m bench.bench_serving --duration {duration}` (or `BENCH_ONLY=serving make bench`), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at the end {load}.\n\n"
        "| server | connections | req/s | p50 ms | p99 ms | requests | failed |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n| target | figure | required | verdict |\n|---|---|---|---|\n"
        + checks
        + "\n"
    )


def write_section(text: str, doc: Path = DOC) -> None:
    """Replace this benchmark's own block in the doc, nothing else."""
    write_doc_section(doc, START, END, "Serving", text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["prepare"]:
        _prepare(Path(argv[1]))
        return 0
    parser = argparse.ArgumentParser(description="ml-platform serve against mlflow models serve, with wrk.")
    parser.add_argument("--duration", type=int, default=20, help="seconds of each wrk run")
    parser.add_argument("--moves", type=int, default=10, help="alias moves under load")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: install it with `apt-get update && apt-get install -y wrk`")
    result = compare(args.duration, args.moves)
    text = table(result, args.duration)
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
