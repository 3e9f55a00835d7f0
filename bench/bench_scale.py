"""Scale: 1, 10 and 100 declared models in one code location, loaded, served and watched by the daemon.

The models are N copies of the conversion spec under distinct names (``conversion_000`` …), generated
here and never committed; ``bench/scale_location.py`` is the code location that declares them, N from
``ML_PLATFORM_BENCH_MODELS``. For each N:

1. **Load in process**: a fresh process imports everything first (untimed), then times building the
   definitions and resolving them into a repository, as a code server does; it also serializes the
   repository snapshot a code server sends the webserver and the daemon (``RepositorySnap``, with every
   job's snapshot, and deferred as the webserver asks for it) and reports its size.
2. **`dagster definitions validate -m bench.scale_location`**: the whole process, under GNU time.
3. **The webserver's asset graph**: ``dagster-webserver`` on 127.0.0.1 on that code location; the time
   until GraphQL reports the location loaded, then the ``assetNodes`` query the asset graph page runs.
4. **The daemon** (with ``--daemon-window`` seconds): ``dagster-daemon run`` on a temporary
   ``DAGSTER_HOME`` with the project's instance config and every sensor running, on a platform home where
   every model has a champion (one trained conversion champion, registered again under each name, its
   snapshot and landing files linked) and nothing new lands. Twice: with a code server of its own that
   the daemon reaches over gRPC (a ``grpc_server`` workspace: the Kubernetes topology), and with the code
   server the daemon starts and replaces itself (``-m``: what ``dagster dev`` does). From the instance's
   tick records: ticks per sensor, tick duration, and the lag of each tick behind its interval (the gap
   since the sensor's previous tick minus the interval); from /proc: CPU of the daemon and the code
   servers together.

    python -m bench.bench_scale [--models 1,10,100] [--daemon-window 600] [--small-window 180]
        [--code-servers deployed,managed] [--daemon-only] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import PYTHON, RESULTS, ROOT, measure, stop_group, write_doc_section

MODELS = (1, 10, 100)
VARIABLE = "ML_PLATFORM_BENCH_MODELS"
LOCATION = "bench.scale_location"
DAEMON_WINDOW_S = 600
# The daemon's first minute and a half, left out: code server start-up and the first round of ticks.
WARM_UP_S = int(os.environ.get("BENCH_SCALE_WARM_UP_S", "90"))
SENSOR_INTERVAL_S = 30
CODE_SERVERS = ("deployed", "managed")
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:scale:start -->", "<!-- bench:scale:end -->"
BIN = Path(PYTHON).parent
FAST = {"max_iter": 60, "learning_rate": 0.15, "max_leaf_nodes": 31, "early_stopping": False, "random_state": 42}
ASSET_GRAPH_QUERY = """
query AssetGraph {
  assetNodes {
    id
    assetKey { path }
    groupName
    jobNames
    opNames
    description
    isExecutable
    isObservable
    isPartitioned
    kinds
    dependencyKeys { path }
    dependedByKeys { path }
    repository { name location { name } }
    assetChecksOrError { ... on AssetChecks { checks { name blocking } } }
  }
}
"""
LOADED_QUERY = """
query { workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def model_specs(count: int) -> list:
    """``count`` copies of the conversion spec, ``conversion_000`` …: each its own registry entry and folders."""
    from growth.conversion.spec import SPEC as CONVERSION

    return [CONVERSION.model_copy(update={"name": f"conversion_{i:03d}", "params": FAST}) for i in range(count)]


def _env(count: int, home: Path, dagster_home: Path | None = None) -> dict[str, str]:
    clean = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "DAGSTER_HOME", "ML_PLATFORM_ARTIFACT_ROOT")
    env = {k: v for k, v in os.environ.items() if k not in clean} | {
        VARIABLE: str(count),
        "ML_PLATFORM_HOME": str(home),
        "GIT_PYTHON_REFRESH": "quiet",
        "PYTHONPATH": str(ROOT),
        "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
    }
    if dagster_home is not None:
        env["DAGSTER_HOME"] = str(dagster_home)
    return env


def _fresh_dagster_home(path: Path) -> Path:
    subprocess.run(["rm", "-rf", str(path)], check=True)
    path.mkdir(parents=True)
    (path / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    return path


# --- 1. load in process -------------------------------------------------------------------------------


def _load(count: int, out: Path) -> None:
    """One process: imports first, then the timed build, resolution and snapshot of ``count`` models."""
    from dagster._core.remote_representation.external_data import RepositorySnap
    from dagster._serdes import serialize_value

    from ml_platform.definitions import build_definitions

    specs = model_specs(count)
    started = time.perf_counter()
    defs = build_definitions(specs=specs)
    built = time.perf_counter()
    repository = defs.get_repository_def()
    repository.get_all_jobs()
    resolved = time.perf_counter()
    full = serialize_value(RepositorySnap.from_def(repository))
    snapshotted = time.perf_counter()
    deferred = serialize_value(RepositorySnap.from_def(repository, defer_snapshots=True))
    graph = repository.asset_graph
    figures = {
        "build_s": built - started,
        "resolve_s": resolved - built,
        "load_s": resolved - started,
        "snapshot_s": snapshotted - resolved,
        "snapshot_bytes": len(full),
        "deferred_snapshot_bytes": len(deferred),
        "assets": len(graph.get_all_asset_keys()),
        "checks": len(graph.asset_check_keys),
        "jobs": len(repository.get_all_jobs()),
        "sensors": len(repository.sensor_defs),
        "schedules": len(repository.schedule_defs),
    }
    out.write_text(json.dumps(figures, indent=2))


def load_in_process(count: int, repeats: int) -> dict:
    """The median of ``repeats`` fresh processes (the figures of the median ``load_s``)."""
    runs = []
    for index in range(repeats):
        out = RESULTS / f"scale-load-{count}-{index}.json"
        command = [PYTHON, "-m", "bench.bench_scale", "load", str(count), str(out)]
        completed = subprocess.run(command, env=_env(count, RESULTS / "homes" / "scale-empty"), cwd=ROOT)
        if completed.returncode != 0:
            raise SystemExit(f"loading {count} models in process failed (exit {completed.returncode})")
        runs.append(json.loads(out.read_text()))
    runs.sort(key=lambda r: r["load_s"])
    return runs[len(runs) // 2]


def validate(count: int, repeats: int) -> float:
    """Median wall seconds of ``dagster definitions validate -m bench.scale_location``."""
    walls = []
    log = RESULTS / "logs" / f"scale-validate-{count}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(repeats):
        env = _env(count, RESULTS / "homes" / "scale-empty")
        sample = measure([str(BIN / "dagster"), "definitions", "validate", "-m", LOCATION], env=env, log=log)
        if sample.exit_code != 0:
            raise SystemExit(f"`dagster definitions validate` of {count} models failed: see {log}")
        walls.append(sample.wall_s)
    return statistics.median(walls)


# --- 3. the webserver's asset graph -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str, timeout: float = 120.0) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """A server in its own process group, through ``env --default-signal`` so that SIGTERM stops it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    sink = log.open("w")
    return subprocess.Popen(
        ["env", "--default-signal=INT,TERM", *command],
        env=env,
        cwd=ROOT,
        stdout=sink,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_loaded(port: int, process: subprocess.Popen, log: Path, limit_s: float = 300.0) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the webserver exited ({process.returncode}): see {log}")
        try:
            entries = graphql(port, LOADED_QUERY, timeout=10)["data"]["workspaceOrError"]["locationEntries"]
        except (OSError, KeyError, TypeError, ValueError):
            time.sleep(0.5)
            continue
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            error = entries[0]["locationOrLoadError"]
            if error and error["__typename"] == "PythonError":
                raise SystemExit(f"the code location failed to load: {error['message'][:500]}")
            return
        time.sleep(0.5)
    raise SystemExit(f"the webserver did not load the code location within {limit_s:.0f} s: see {log}")


def webserver(count: int, repeats: int) -> dict:
    """Seconds until the location is loaded, and the ``assetNodes`` query: first call and median of the rest."""
    port = _free_port()
    dagster_home = _fresh_dagster_home(RESULTS / "work" / f"scale-webserver-{count}")
    log = RESULTS / "logs" / f"scale-webserver-{count}.log"
    command = [str(BIN / "dagster-webserver"), "-m", LOCATION, "-h", "127.0.0.1", "-p", str(port)]
    started = time.monotonic()
    process = _start(command, _env(count, RESULTS / "homes" / "scale-empty", dagster_home), log)
    try:
        _wait_loaded(port, process, log)
        loaded = time.monotonic() - started
        walls, size = [], 0
        for _ in range(repeats + 1):
            wall = time.perf_counter()
            answer = graphql(port, ASSET_GRAPH_QUERY)
            walls.append(time.perf_counter() - wall)
            if "errors" in answer:
                raise SystemExit(f"assetNodes failed: {answer['errors'][:1]}")
            size = len(answer["data"]["assetNodes"])
    finally:
        stop_group(process)
    return {"loaded_s": loaded, "first_query_s": walls[0], "query_s": statistics.median(walls[1:]), "nodes": size}


# --- 4. the daemon --------------------------------------------------------------------------------------


def champions_home(count: int) -> Path:
    """A platform home where ``conversion_000`` … ``conversion_<count-1>`` each have a champion.

    Built once (one training run, then registrations), reused by every daemon measurement.
    """
    path = RESULTS / "homes" / f"scale-champions-{count}"
    if (path / ".ready").exists():
        return path
    subprocess.run(["rm", "-rf", str(path)], check=True)
    path.mkdir(parents=True)
    command = [PYTHON, "-m", "bench.bench_scale", "prepare", str(count), str(path)]
    subprocess.run(command, check=True, env=_env(count, path), cwd=ROOT)
    (path / ".ready").write_text("")
    return path


def _prepare(count: int, home: Path) -> None:
    """Train ``conversion_000`` once, then register its champion again under every other name."""
    import dagster as dg
    from growth.conversion.demo_data import generate

    from ml_platform.definitions import build_definitions
    from ml_platform.keys import CHAMPION, ModelKeys
    from ml_platform.settings import PlatformPaths, ensure_mlflow_store
    from ml_platform.stores.registry import Store

    paths = PlatformPaths(home)
    ensure_mlflow_store(paths)
    first, *others = model_specs(count)
    landing = first.landing_path(home)
    landing.mkdir(parents=True)
    generate(3000, seed=1).to_csv(landing / "export.csv", index=False)
    defs = build_definitions(paths, [first])
    (home / "dagster-prepare").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster-prepare")) as instance:
        result = defs.resolve_job_def(ModelKeys(first.name).lifecycle_job).execute_in_process(
            instance=instance, raise_on_error=False
        )
    if not result.success:
        raise SystemExit("the template champion's run failed: see the log above")
    client = Store.from_paths(paths).client()
    champion = client.get_model_version_by_alias(first.name, CHAMPION)
    for spec in others:
        subprocess.run(["cp", "-al", str(landing), str(spec.landing_path(home))], check=True)
        subprocess.run(["cp", "-al", str(paths.snapshots(first.name)), str(paths.snapshots(spec.name))], check=True)
        client.create_registered_model(spec.name)
        version = client.create_model_version(
            spec.name, champion.source, run_id=champion.run_id, tags=dict(champion.tags)
        )
        client.set_registered_model_alias(spec.name, CHAMPION, version.version)


def _tree(root: int) -> list[int]:
    """``root`` and every process descending from it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue += children.get(pid, [])
    return found


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuMeter:
    """CPU seconds of process trees between the first and the last ``sample``, per process, summed."""

    roots: list[int]
    first: dict[int, float] = field(default_factory=dict)
    last: dict[int, float] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)

    def sample(self) -> None:
        for pid in (pid for root in self.roots for pid in _tree(root)):
            seconds = _cpu_seconds(pid)
            if seconds is None:
                continue
            self.first.setdefault(pid, seconds)
            self.last[pid] = seconds
            if pid not in self.names:
                try:
                    self.names[pid] = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:120]
                except OSError:
                    self.names[pid] = "?"

    def total(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)

    def by_process(self) -> dict[str, float]:
        used = {self.names[pid]: self.last[pid] - self.first[pid] for pid in self.last}
        return {name: seconds for name, seconds in used.items() if seconds > 0.05}


def sensor_ticks(dagster_home: Path, since: float, until: float) -> dict[str, list[tuple[float, float | None, str]]]:
    """(start, end, status) of every sensor tick that started and ended within [since, until], by sensor name.

    A tick still running when the window closes is left out: stopping the daemon ends it, not the sensor.
    """
    from dagster._core.scheduler.instigation import TickData
    from dagster._serdes import deserialize_value

    ticks: dict[str, list] = {}
    with sqlite3.connect(dagster_home / "schedules" / "schedules.db") as connection:
        rows = connection.execute("SELECT tick_body FROM job_ticks WHERE type = 'SENSOR'").fetchall()
    for (body,) in rows:
        tick = deserialize_value(body, TickData)
        if since <= tick.timestamp and tick.end_timestamp is not None and tick.end_timestamp <= until:
            ticks.setdefault(tick.instigator_name, []).append((tick.timestamp, tick.end_timestamp, tick.status.value))
    return {name: sorted(found) for name, found in ticks.items()}


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


def summarize_ticks(ticks: dict[str, list], sensors: int, window_s: float) -> dict:
    """Tick duration and lag figures over every sensor; a sensor with no tick counts as never evaluated."""
    durations = [end - start for found in ticks.values() for start, end, _ in found if end is not None]
    gaps = [b[0] - a[0] for found in ticks.values() for a, b in zip(found, found[1:], strict=False)]
    lags = [max(0.0, gap - SENSOR_INTERVAL_S) for gap in gaps]
    counts = [len(ticks.get(name, [])) for name in ticks] + [0] * max(0, sensors - len(ticks))
    failed = sum(1 for found in ticks.values() for *_, status in found if status == "FAILURE")
    return {
        "sensors_ticked": len(ticks),
        "ticks": sum(counts),
        "ticks_per_sensor_min": min(counts) if counts else 0,
        "ticks_expected_per_sensor": window_s / SENSOR_INTERVAL_S,
        "failed_ticks": failed,
        "duration_p50_s": _percentile(durations, 0.5),
        "duration_p95_s": _percentile(durations, 0.95),
        "duration_max_s": max(durations, default=float("nan")),
        "gap_p50_s": _percentile(gaps, 0.5),
        "lag_p95_s": _percentile(lags, 0.95),
        "lag_max_s": max(lags, default=float("nan")),
    }


def _serve(count: int, env: dict[str, str], dagster_home: Path) -> tuple[list[subprocess.Popen], list[str]]:
    """A code server of its own, as a deployment runs one (Helm's user code), and the daemon's arguments
    that point at it through a ``grpc_server`` workspace."""
    from dagster._grpc.client import DagsterGrpcClient

    port = _free_port()
    log = RESULTS / "logs" / f"scale-code-server-{count}.log"
    command = [str(BIN / "dagster"), "api", "grpc", "-m", LOCATION, "-h", "127.0.0.1", "-p", str(port)]
    server = _start(command, env, log)
    client, deadline = DagsterGrpcClient(host="127.0.0.1", port=port), time.monotonic() + 300
    while True:
        try:
            if client.health_check_query() == "SERVING":
                break
        except Exception:  # not listening yet
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop_group(server)
            raise SystemExit(f"the code server did not start: see {log}")
        time.sleep(1)
    workspace = dagster_home / "workspace.yaml"
    entry = f"  - grpc_server:\n      host: 127.0.0.1\n      port: {port}\n      location_name: scale\n"
    workspace.write_text("load_from:\n" + entry)
    return [server], ["-w", str(workspace)]


def daemon(count: int, window_s: float, sensors: int, code_server: str = "managed") -> dict:
    """Run the daemon for a warm-up plus ``window_s`` with nothing new landing; ticks and CPU over the window.

    ``code_server``: "managed" (``dagster-daemon run -m``: the daemon starts and replaces its own code
    server, as ``dagster dev`` and ``ml-platform dev`` do) or "deployed" (a code server of its own that the
    daemon reaches over gRPC, as on Kubernetes).
    """
    home = champions_home(max(MODELS))
    dagster_home = _fresh_dagster_home(RESULTS / "work" / f"scale-daemon-{count}")
    log = RESULTS / "logs" / f"scale-daemon-{count}-{code_server}.log"
    env = _env(count, home, dagster_home)
    servers, target = ([], ["-m", LOCATION]) if code_server == "managed" else _serve(count, env, dagster_home)
    process = _start([str(BIN / "dagster-daemon"), "run", *target], env, log)
    meter = CpuMeter([process.pid, *(server.pid for server in servers)])
    try:
        time.sleep(WARM_UP_S)
        if process.poll() is not None:
            raise SystemExit(f"the daemon exited ({process.returncode}): see {log}")
        meter.sample()
        since, started = time.time(), time.monotonic()
        while time.monotonic() - started < window_s:
            time.sleep(5)
            meter.sample()
        until, elapsed = time.time(), time.monotonic() - started
    finally:
        for each in (process, *servers):
            stop_group(each)
    figures = summarize_ticks(sensor_ticks(dagster_home, since, until), sensors, elapsed)
    figures |= {"window_s": elapsed, "cpu_s": meter.total(), "cpu_share": meter.total() / elapsed}
    figures |= {"code_server": code_server, "cpu_by_process": meter.by_process()}
    figures["code_server_restarts"] = log.read_text().count("No heartbeat received") if log.exists() else 0
    return figures


# --- the whole section ----------------------------------------------------------------------------------


def compare(
    models=MODELS,
    repeats: int = 3,
    window_s: float = DAEMON_WINDOW_S,
    small_window_s: float | None = None,
    code_servers: tuple[str, ...] = CODE_SERVERS,
    daemon_only: bool = False,
    echo=print,
) -> dict[int, dict]:
    """Every figure for each count of models; the daemon runs ``window_s`` for the largest count and
    ``small_window_s`` (default: the same) for the others, once per kind of code server. With
    ``daemon_only``, the other figures are those of the last run (``bench/results/scale-<N>.json``)."""
    (RESULTS / "homes" / "scale-empty").mkdir(parents=True, exist_ok=True)
    measured = {}
    for count in models:
        window = window_s if count == max(models) or small_window_s is None else small_window_s
        saved = RESULTS / f"scale-{count}.json"
        figures = json.loads(saved.read_text()) if daemon_only and saved.exists() else {}
        if not daemon_only:
            figures["load"] = load_in_process(count, repeats)
            echo(f"  {count:>3} models: in process {figures['load']['load_s']:.2f} s, {figures['load']}")
            figures["validate_s"] = validate(count, repeats)
            echo(f"  {count:>3} models: definitions validate {figures['validate_s']:.2f} s")
            figures["webserver"] = webserver(count, repeats)
            echo(f"  {count:>3} models: webserver {figures['webserver']}")
        for code_server in code_servers if window > 0 else ():
            sensors = figures["load"]["sensors"] if "load" in figures else 3
            figures[f"daemon_{code_server}"] = daemon(count, window, sensors, code_server)
            echo(f"  {count:>3} models: daemon, {code_server} code server: {figures[f'daemon_{code_server}']}")
        measured[count] = figures
        saved.write_text(json.dumps(figures, indent=2))
    return measured


def table(measured: dict[int, dict]) -> str:
    """The results as Markdown: one row per model count, then the daemon's figures."""
    head = (
        "| models | assets / checks / jobs / sensors / schedules | in-process load s (build + resolve) | "
        "`definitions validate` s | snapshot MB (deferred) | snapshot s | webserver loaded s | "
        "`assetNodes` s (first / median) |\n|---|---|---|---|---|---|---|---|\n"
    )
    rows = ""
    for count, f in measured.items():
        load, web = f["load"], f["webserver"]
        shape = " / ".join(str(load[k]) for k in ("assets", "checks", "jobs", "sensors", "schedules"))
        rows += (
            f"| {count} | {shape} | {load['load_s']:.2f} ({load['build_s']:.2f} + {load['resolve_s']:.2f}) | "
            f"{f['validate_s']:.1f} | {load['snapshot_bytes'] / 1e6:.2f} ({load['deferred_snapshot_bytes'] / 1e6:.2f})"
            f" | {load['snapshot_s']:.2f} | {web['loaded_s']:.1f} | "
            f"{web['first_query_s']:.2f} / {web['query_s']:.2f} |\n"
        )
    daemon_rows = ""
    for count, f in measured.items():
        for key in sorted(k for k in f if k.startswith("daemon")):
            d = f[key]
            kind = d.get("code_server", "managed")
            daemon_rows += (
                f"| {count} | {kind} ({d.get('code_server_restarts', 0)}) | {d['window_s'] / 60:.1f} | "
                f"{d['sensors_ticked']} | {d['ticks']} | "
                f"{d['ticks_per_sensor_min']} / {d['ticks_expected_per_sensor']:.1f} | {d['failed_ticks']} | "
                f"{d['duration_p50_s']:.2f} / {d['duration_p95_s']:.2f} / {d['duration_max_s']:.2f} | "
                f"{d['gap_p50_s']:.1f} | {d['lag_p95_s']:.1f} / {d['lag_max_s']:.1f} | "
                f"{d['cpu_s']:.1f} ({100 * d['cpu_share']:.1f}% of a core) |\n"
            )
    if daemon_rows:
        daemon_rows = (
            "\n| models | code server (times replaced for a missed heartbeat, warm-up included) | window min | "
            "sensors that ticked | ticks | "
            "ticks per sensor: fewest / expected | failed | tick s: p50 / p95 / max | "
            "gap between a sensor's ticks s (p50) | lag s: p95 / max | CPU s, daemon + code servers |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|\n" + daemon_rows
        )
    return head + rows + daemon_rows


def write_section(text: str, doc: Path = DOC) -> None:
    """Replace this benchmark's own block in the doc, nothing else."""
    write_doc_section(doc, START, END, "Scale: 1, 10 and 100 models in one code location", text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["load"]:
        _load(int(argv[1]), Path(argv[2]))
        return 0
    if argv[:1] == ["prepare"]:
        _prepare(int(argv[1]), Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(map(str, MODELS)))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--daemon-window", type=float, default=DAEMON_WINDOW_S)
    parser.add_argument("--small-window", type=float, default=None, help="daemon seconds below the largest count")
    parser.add_argument("--code-servers", default=",".join(CODE_SERVERS), help="deployed, managed or both")
    parser.add_argument("--daemon-only", action="store_true", help="keep the last run's load figures")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    models = tuple(int(m) for m in args.models.split(","))
    servers = tuple(args.code_servers.split(","))
    measured = compare(models, args.repeats, args.daemon_window, args.small_window, servers, args.daemon_only)
    text = table(measured)
    print(text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
