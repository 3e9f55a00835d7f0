"""The fault-injection campaign: lifecycle runs on PostgreSQL, one random fault each, then recovery.

    source .ci/setup-postgres.sh
    python -m bench.bench_campaign --runs 200 --deadline 12:20 [--seed 16] [--out bench/results/campaign.jsonl]
        [--logs bench/results/campaign-logs-16/]

Each run lands a fresh iris batch (150 rows, a new seed) and runs ``ml-platform run iris`` as a
subprocess against a private PostgreSQL database (Dagster's runs and events) and a real ``mlflow server``
(registry and tracking on the same database, artifacts proxied into the platform home), with one fault
drawn by a seeded RNG:

- ``kill``: SIGKILL of the run's process group when its output shows a chosen step starting or
  succeeding (a step boundary);
- ``server_down``: the MLflow server's process group SIGKILLed a random while into the run, restarted
  (a cold start) after a random while;
- ``server_silent``: the MLflow server SIGSTOPped (accepts connections, never answers) for a random while;
- ``disk_full``: the platform home is a small tmpfs, filled to the last byte before the run and freed after
  (skipped, loudly, when this is not root or ``mount -t tmpfs`` fails);
- ``damaged_file``: one byte of the newest snapshot's Parquet file flipped, the landing unchanged;
- ``race``: a second ``ml-platform run iris`` started beside the first.

Recovery is what a user does: a run left STARTED by a dead worker is marked failed (what Dagster's run
monitoring does) and re-executed from failure (the UI's button, here ``dagster.execute_job`` with
``ReexecutionOptions.from_failure``); if that fails, the next run (``ml-platform run iris``, as a trigger
would request). Only when that still fails does a person act (the manual repair the error names), and a
promotion left half-done is finished with ``ml-platform approve``. Then the wrong states are looked for:
an alias (champion, production) on a version whose recorded gates did not all pass, partial or temporary
files left under the home's snapshots/features/inference folders, and the ledger's last champion move
disagreeing with the registry's ``champion`` alias. Every run's fault, recovery and verdict is one JSON line.
A run that did not run through, or showed a wrong state, keeps its whole output (the run, its re-execution,
the next run, the approve) in one file under ``--logs``, because the JSON line keeps only the last lines and
the home, the server and the database are removed when the campaign ends.

This is a benchmark, not a test: nothing here runs in ``make test``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bench.common import RESULTS, ROOT

PYTHON = sys.executable
ML_PLATFORM = str(Path(PYTHON).with_name("ml-platform"))
MLFLOW = str(Path(PYTHON).with_name("mlflow"))
MODEL = "iris"
KINDS = ("kill", "server_down", "server_silent", "disk_full", "damaged_file", "race")
STEPS = ("dataset_snapshot", "validated_features", "candidate_model", "registry_entry")
RUN_TIMEOUT_S = 420.0
# The home's tmpfs. An iris run leaves about 2.4 MiB of MLflow artifacts in the home (measured: `du` of a
# fresh home after two runs), recoveries add runs: 256 MiB filled up after about 85 campaign runs (2026-11-30),
# failing every later run as a real full disk would. 2 GiB holds a 200-run stream; disk_full fills it all anyway.
TMPFS_MIB = 2048
STEP_EVENT = re.compile(r"(STEP_START|STEP_SUCCESS)")
# MLflow's HTTP client retries 7 times with exponential backoff (minutes) by default; shorter here, so a
# dead server fails the step within a minute and the step's own RetryPolicy (ml_platform/defs/gating.py)
# and the recovery are what is exercised.
MLFLOW_CLIENT_ENVIRONMENT = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "20",
}


def lifecycle_job():
    """The iris lifecycle job as ``ml-platform run`` builds it (same console logger), for re-execution."""
    from ml_platform.cli.execution import _one_line_console_logger
    from ml_platform.definitions import build_definitions
    from ml_platform.keys import ModelKeys
    from ml_platform.settings import PlatformPaths

    defs = build_definitions(PlatformPaths.from_environment())
    job = defs.resolve_job_def(ModelKeys(MODEL).lifecycle_job)
    return job.with_logger_defs({"console": _one_line_console_logger()})


def reexecute_from_failure(run_id: str) -> int:
    """What the UI's "Re-execute from failure" does, in this process: 0 when the new run succeeded."""
    import dagster as dg

    from ml_platform.settings import PlatformPaths, ensure_dagster_home

    ensure_dagster_home(PlatformPaths.from_environment())
    with dg.DagsterInstance.get() as instance:
        options = dg.ReexecutionOptions.from_failure(run_id, instance)
        result = dg.execute_job(dg.reconstructable(lifecycle_job), instance, reexecution_options=options)
        print(f"re-execution {result.run_id}: {'success' if result.success else 'failure'}")
        return 0 if result.success else 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Process:
    """A subprocess in its own process group, its output collected line by line."""

    argv: list[str]
    environment: dict[str, str]
    watch: re.Pattern | None = None
    lines: list[str] = field(default_factory=list)
    matched: threading.Event = field(default_factory=threading.Event)
    match_text: str = ""

    def start(self) -> Process:
        self.process = subprocess.Popen(
            self.argv, env=self.environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True, cwd=ROOT,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        return self

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.watch is not None and not self.matched.is_set() and self.watch.search(line):
                self.match_text = line.strip()
                self.matched.set()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def wait(self, timeout: float = RUN_TIMEOUT_S) -> int | str:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait()
            code = "timeout"
        self.reader.join(timeout=10)
        return code

    def tail(self, n: int = 6) -> list[str]:
        return [line[-300:] for line in self.lines[-n:]]


class Server:
    """``mlflow server`` on 127.0.0.1, its registry and tracking in PostgreSQL, artifacts in the home."""

    def __init__(self, backend_uri: str, artifacts: Path, log: Path):
        self.backend_uri, self.artifacts, self.log = backend_uri, artifacts, log
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        started = time.monotonic()
        self.process = subprocess.Popen(
            [MLFLOW, "server", "--backend-store-uri", self.backend_uri, "--artifacts-destination",
             str(self.artifacts), "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=self.log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        while not self.healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.process.returncode}; see {self.log}")
            if time.monotonic() - started > 300:
                raise TimeoutError(f"mlflow server not healthy within 300 s; see {self.log}")
            time.sleep(0.5)
        return time.monotonic() - started

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=3) as response:
                return response.status == 200
        except OSError:
            return False

    def signal(self, number: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, number)

    def stop(self) -> None:
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait()


class Campaign:
    """One platform home, one Postgres database, one MLflow server; runs with faults, one at a time."""

    def __init__(self, postgres_url: str, root: Path, seed: int, out: Path, logs: Path):
        self.rng = random.Random(seed)
        self.root, self.out, self.logs = root, out, logs
        self.transcript: list[str] = []
        self.home = root / "home"
        self.home.mkdir(parents=True)
        self.tmpfs = self._mount_tmpfs()
        self.database = f"campaign_{uuid.uuid4().hex[:10]}"
        self.admin_url = postgres_url
        self._sql(f'CREATE DATABASE "{self.database}"')
        self.url = urlunsplit(urlsplit(postgres_url)._replace(path=f"/{self.database}"))
        from ml_platform.settings import MLFLOW_SCHEMA, ensure_postgres_schema, sqlalchemy_url, with_search_path

        ensure_postgres_schema(self.url, MLFLOW_SCHEMA)
        self.server = Server(
            with_search_path(sqlalchemy_url(self.url), MLFLOW_SCHEMA), self.home / "mlartifacts", root / "mlflow.log"
        )
        self.environment = {
            **os.environ,
            **MLFLOW_CLIENT_ENVIRONMENT,
            "ML_PLATFORM_HOME": str(self.home),
            "ML_PLATFORM_POSTGRES_URL": self.url,
            "MLFLOW_TRACKING_URI": self.server.url,
            "ML_PLATFORM_ARTIFACT_ROOT": "mlflow-artifacts:/",
            "PYTHONUNBUFFERED": "1",
        }
        for inherited in ("DAGSTER_HOME", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_URI"):
            os.environ.pop(inherited, None)
        self.environment.pop("DAGSTER_HOME", None)
        self.environment.pop("MLFLOW_REGISTRY_URI", None)
        os.environ.update(self.environment)
        self.known_problems: set[str] = set()
        self.seed_counter = 1000

    def _mount_tmpfs(self) -> bool:
        """The home on a small tmpfs, so a full disk can be made for real; False (and said) when it cannot."""
        if os.geteuid() != 0:
            print("LOUD SKIP: disk_full needs root to mount a tmpfs; that fault kind will not run", flush=True)
            return False
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MIB}m", "tmpfs", str(self.home)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(f"LOUD SKIP: mount -t tmpfs failed ({done.stderr.strip()}); disk_full will not run", flush=True)
            return False
        return True

    def _sql(self, statement: str) -> None:
        import psycopg2

        connection = psycopg2.connect(urlunsplit(urlsplit(self.admin_url)._replace(scheme="postgresql")))
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement)
        finally:
            connection.close()

    def close(self) -> None:
        self.server.stop()
        if self.tmpfs:
            subprocess.run(["umount", "-l", str(self.home)], check=False)
        self._sql(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')

    # -- the platform, as a user drives it ---------------------------------------------------------

    def run(self, watch: re.Pattern | None = None) -> Process:
        return Process([ML_PLATFORM, "run", MODEL], self.environment, watch).start()

    def keep(self, title: str, code: object, lines: list[str]) -> None:
        """One process's whole output, for the run's log (written only if the run needs explaining)."""
        self.transcript += [f"===== {title} (exit {code}) [{_now()}]", *lines]

    def land_new_batch(self) -> int:
        """Replace the landing folder's demo file with a new seed's: a new snapshot, a new candidate."""
        from ml_platform.demo import write_demo_data
        from ml_platform.discovery import get_spec

        landing = get_spec(MODEL).landing_path(self.home)
        for old in landing.glob("demo-seed*"):
            old.unlink()
        self.seed_counter += 1
        write_demo_data(MODEL, seed=self.seed_counter)
        return self.seed_counter

    def instance(self):
        import dagster as dg

        from ml_platform.settings import PlatformPaths, ensure_dagster_home

        ensure_dagster_home(PlatformPaths(self.home))
        return dg.DagsterInstance.get()

    def fail_orphaned_runs(self) -> list[str]:
        """Runs left STARTED by a dead worker, marked failed as Dagster's run monitoring would."""
        import dagster as dg

        with self.instance() as instance:
            orphans = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            for run in orphans:
                instance.report_run_failed(run)
            return [run.run_id for run in orphans]

    def latest_failed_run(self) -> str | None:
        import dagster as dg

        with self.instance() as instance:
            runs = instance.get_runs(limit=1)
            if runs and runs[0].status == dg.DagsterRunStatus.FAILURE:
                return runs[0].run_id
            return None

    def reexecute(self, run_id: str) -> tuple[int | str, list[str]]:
        process = Process([PYTHON, "-m", "bench.bench_campaign", "--reexecute", run_id], self.environment).start()
        code = process.wait()
        self.keep(f"re-execution from failure of {run_id}", code, process.lines)
        return code, process.tail()

    # -- the checks ---------------------------------------------------------------------------------

    def store(self):
        from ml_platform.settings import PlatformPaths
        from ml_platform.stores.registry import Store

        return Store.from_paths(PlatformPaths(self.home))

    def wrong_states(self) -> dict[str, list[str]]:
        """Aliases on versions with unpassed gates, partial files, the ledger disagreeing with the registry."""
        from mlflow.exceptions import MlflowException

        from ml_platform.keys import CHAMPION, PRODUCTION
        from ml_platform.stores.ledger import Ledger, champion_history
        from ml_platform.stores.registry import gate_problems
        from ml_platform.stores.release import RELEASE_TRIGGER

        client = self.store().client()
        found: dict[str, list[str]] = {"gates": [], "partial": [], "ledger": []}
        holders: dict[str, str | None] = {}
        for alias in (CHAMPION, PRODUCTION):
            try:
                version = client.get_model_version_by_alias(MODEL, alias)
            except MlflowException:
                holders[alias] = None
                continue
            holders[alias] = str(version.version)
            problems = gate_problems(dict(version.tags))
            if problems:
                found["gates"].append(f"{alias} -> v{version.version}: {'; '.join(problems)}")
        for folder in ("snapshots", "features", "inference"):
            for path in sorted((self.home / folder).rglob("*")):
                if is_partial(path.relative_to(self.home)):
                    found["partial"].append(str(path.relative_to(self.home)))
        moves = [
            record
            for record in champion_history(Ledger.for_home(self.home), MODEL)
            if record.trigger not in (RELEASE_TRIGGER, "staging")
        ]
        recorded = moves[-1].version if moves else None
        if recorded != holders[CHAMPION]:
            found["ledger"].append(
                f"ledger's last champion move: {recorded or 'none'} ({moves[-1].decision if moves else '-'}); "
                f"registry champion: {holders[CHAMPION] or 'none'}"
            )
        return found

    def stranded_promotion(self) -> str | None:
        """A version tagged promoted, compared with the current champion, that never got the alias."""
        from ml_platform.keys import REGISTRY_TAG
        from ml_platform.stores.registry import NOT_PROMOTED, current_champion, gate_problems

        champion = current_champion(self.store(), MODEL)
        current = champion.version if champion else None
        client = self.store().client()
        versions = client.search_model_versions(f"name = '{MODEL}'")
        newer = [v for v in versions if current is None or int(v.version) > int(current)]
        for version in sorted(newer, key=lambda v: int(v.version), reverse=True):
            tags = dict(version.tags)
            if (
                f"{REGISTRY_TAG}promoted_at" in tags
                and NOT_PROMOTED not in tags
                and tags.get(f"{REGISTRY_TAG}compared_with_champion", "none") == (current or "none")
                and not gate_problems(tags)
            ):
                return str(version.version)
        return None

    # -- faults -------------------------------------------------------------------------------------

    def fault_kill(self, record: dict) -> list[Process]:
        """SIGKILL when Dagster's event log (in Postgres) shows the chosen step starting or succeeding.

        The CLI's console prints at INFO, and step events are DEBUG, so the event log is what is watched.
        """
        step, edge = self.rng.choice(STEPS), self.rng.choice(("STEP_START", "STEP_SUCCESS"))
        record["fault"].update(step=step, edge=edge)
        connection = self._connect()
        try:
            base = self._last_event_id(connection)
            process = self.run()
            seen = None
            while process.process.poll() is None and seen is None:
                seen = self._step_event(connection, base, f"{MODEL}__{step}", edge)
                time.sleep(0.05)
            if seen is not None:
                process.kill()
                record["fault"]["event_id"] = seen
            record["fault"]["killed"] = seen is not None  # False: the run ended before that boundary
        finally:
            connection.close()
        return [process]

    def _connect(self):
        import psycopg2

        connection = psycopg2.connect(urlunsplit(urlsplit(self.url)._replace(scheme="postgresql")))
        connection.autocommit = True
        return connection

    @staticmethod
    def _last_event_id(connection) -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(id), 0) FROM event_logs")
            return cursor.fetchone()[0]

    @staticmethod
    def _step_event(connection, after: int, step_key: str, kind: str) -> int | None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM event_logs WHERE id > %s AND step_key = %s AND dagster_event_type = %s LIMIT 1",
                (after, step_key, kind),
            )
            row = cursor.fetchone()
            return row[0] if row else None

    def fault_server(self, record: dict, silent: bool) -> list[Process]:
        into, outage = round(self.rng.uniform(2, 30), 1), round(self.rng.uniform(5, 60), 1)
        record["fault"].update(after_s=into, outage_s=outage)
        process = self.run()
        time.sleep(into)
        self.server.signal(signal.SIGSTOP if silent else signal.SIGKILL)
        time.sleep(outage)
        if silent:
            self.server.signal(signal.SIGCONT)
        else:
            self.server.process.wait()
            record["fault"]["restart_s"] = round(self.server.start(), 1)
        return [process]

    def fault_disk_full(self, record: dict) -> list[Process]:
        """The home's tmpfs filled to the last byte for the whole run, then freed (a person cleans the disk)."""
        ballast = self.home / "ballast"
        descriptor = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for block in (1 << 20, 4096, 1):  # unbuffered writes: the last one fails with ENOSPC, nothing pending
                with contextlib.suppress(OSError):
                    while os.write(descriptor, b"\0" * block):
                        pass
        finally:
            os.close(descriptor)
        try:
            record["fault"]["ballast_mib"] = round(ballast.stat().st_size / 2**20, 1)
            process = self.run()
            process.wait()
        finally:
            ballast.unlink(missing_ok=True)
        return [process]

    def fault_damaged_file(self, record: dict) -> list[Process]:
        files = sorted((self.home / "snapshots" / MODEL).glob("*/*.parquet"), key=lambda p: p.stat().st_mtime)
        if not files:
            record["fault"]["damaged"] = None
            return [self.run()]
        target = files[-1]
        data = bytearray(target.read_bytes())
        offset = self.rng.randrange(4, len(data) - 4)  # not the magic bytes: a damage a reader may not notice
        data[offset] ^= 0xFF
        target.chmod(0o644)
        target.write_bytes(bytes(data))
        target.chmod(0o444)
        record["fault"].update(damaged=str(target.relative_to(self.home)), offset=offset)
        return [self.run()]

    def fault_race(self, record: dict) -> list[Process]:
        gap = round(self.rng.uniform(0, 5), 1)
        record["fault"]["second_after_s"] = gap
        first = self.run()
        time.sleep(gap)
        return [first, self.run()]

    # -- one run ------------------------------------------------------------------------------------

    def one(self, index: int, kind: str) -> dict:
        record: dict = {"run": index, "kind": kind, "fault": {}, "recovery": [], "started": _now()}
        started = time.monotonic()
        self.transcript = []
        if kind != "damaged_file":
            record["landing_seed"] = self.land_new_batch()
        faulted = getattr(self, f"fault_{kind}")(record) if kind not in ("server_down", "server_silent") else (
            self.fault_server(record, silent=kind == "server_silent")
        )  # fmt: skip
        record["exit"] = [process.wait() for process in faulted]
        record["output"] = [process.tail() for process in faulted]
        for number, (process, code) in enumerate(zip(faulted, record["exit"], strict=True), start=1):
            self.keep(f"faulted run {number} of {len(faulted)}: {' '.join(process.argv[-2:])}", code, process.lines)
        if not self.server.healthy():  # a server left dead or stopped is part of no recovery a user does
            self.server.signal(signal.SIGCONT)
        record["before_recovery"] = self.wrong_states()
        self.recover(record, clean=all(code == 0 for code in record["exit"]))
        record["after"] = found = self.wrong_states()
        new = {key: [p for p in problems if p not in self.known_problems] for key, problems in found.items()}
        self.known_problems.update(p for problems in found.values() for p in problems)
        self._clean_partial_files(found["partial"])
        record["wrong"] = new
        record["wall_s"] = round(time.monotonic() - started, 1)
        self.keep_log(record)
        return record

    def keep_log(self, record: dict) -> None:
        """The run's whole transcript in ``<logs>/run-NNN-<kind>.log`` unless it ran through with no wrong state."""
        wrong = any(record.get("wrong", {}).values()) or any(record.get("after", {}).values())
        wrong = wrong or any(record.get("before_recovery", {}).values())
        if record["outcome"] == "ran through" and not wrong:
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        header = {
            key: record.get(key) for key in ("run", "kind", "fault", "exit", "outcome", "before_recovery", "after")
        }
        lines = [json.dumps(header, default=str), *self.transcript]
        if "error" in record:
            lines += ["===== campaign error", record["error"]]
        path = self.logs / f"run-{record['run']:03d}-{record['kind']}.log"
        path.write_text("\n".join(lines) + "\n")

    def broken(self, index: int, kind: str, error: Exception) -> dict:
        """A run the campaign itself could not finish (not a platform verdict); the server is made healthy."""
        import traceback

        (self.home / "ballast").unlink(missing_ok=True)
        if not self.server.healthy():
            self.server.stop()
            self.server.start()
        self.fail_orphaned_runs()
        record = {
            "run": index, "kind": kind, "outcome": "campaign error", "error": traceback.format_exc()[-3000:],
            "wrong": {"gates": [], "partial": [], "ledger": []}, "exit": [repr(error)], "wall_s": 0.0,
        }  # fmt: skip
        self.keep_log(record)
        return record

    def recover(self, record: dict, clean: bool) -> None:
        """Re-execute from failure, else the next run; then a person only if that did not do it."""
        orphans = self.fail_orphaned_runs()
        if orphans:
            record["recovery"].append({"marked_failed": orphans})
        outcome = "ran through" if clean and not orphans else None
        if outcome is None:
            failed = self.latest_failed_run()
            if failed is not None:
                code, tail = self.reexecute(failed)
                record["recovery"].append({"reexecute_from_failure": failed, "exit": code, "output": tail})
                outcome = "re-executed" if code == 0 else None
            if outcome is None:
                code, tail = self._next_run()
                record["recovery"].append({"next_run": True, "exit": code, "output": tail})
                outcome = "next run" if code == 0 else None
        if outcome is None and record["kind"] == "damaged_file" and record["fault"].get("damaged"):
            damaged = (self.home / record["fault"]["damaged"]).parent
            shutil.rmtree(damaged, ignore_errors=True)  # "Take a new snapshot": the person removes the damaged one
            code, tail = self._next_run()
            record["recovery"].append({"person_removed": str(damaged.name), "exit": code, "output": tail})
            outcome = "person: removed the damaged snapshot" if code == 0 else None
        stranded = self.stranded_promotion()
        if stranded is not None:
            done = subprocess.run(
                [ML_PLATFORM, "approve", MODEL, stranded, "--by", "campaign", "--note", "promotion left half-done"],
                env=self.environment, capture_output=True, text=True, cwd=ROOT,
            )  # fmt: skip
            record["recovery"].append({"approve": stranded, "exit": done.returncode, "output": done.stdout[-500:]})
            self.keep(f"ml-platform approve {MODEL} {stranded}", done.returncode, [done.stdout, done.stderr])
            outcome = f"approve ({outcome or 'run failed'})" if done.returncode == 0 else outcome
        record["outcome"] = outcome or "not recovered"

    def _next_run(self) -> tuple[int | str, list[str]]:
        process = self.run()
        code = process.wait()
        self.keep("next run: ml-platform run iris", code, process.lines)
        return code, process.tail()

    def _clean_partial_files(self, partial: list[str]) -> None:
        for name in partial:
            path = self.home / name
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


def is_partial(relative: Path) -> bool:
    """A hidden, partial or temporary file or folder; a damaged snapshot moved aside (``.corrupt-…``, kept for
    inspection on purpose, ml_platform/stores/snapshot.py) is not one."""
    if any(part.startswith(".corrupt-") for part in relative.parts):
        return False
    name = relative.name
    return name.startswith(".") or "partial" in name or name.endswith((".tmp", ".temp")) or "tmp" in name


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def deadline_at(text: str) -> float:
    """``HH:MM`` today (UTC) as a wall-clock timestamp."""
    hour, minute = (int(part) for part in text.split(":"))
    moment = datetime.now(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return moment.timestamp()


def campaign(
    runs: int, deadline: float, seed: int, out: Path, kinds: tuple[str, ...] = KINDS, logs: Path | None = None
) -> list[dict]:
    postgres = os.environ.get("ML_PLATFORM_TEST_POSTGRES_URL")
    if not postgres:
        raise SystemExit("ML_PLATFORM_TEST_POSTGRES_URL is not set: `source .ci/setup-postgres.sh` first")
    root = Path(tempfile.mkdtemp(prefix="ml-platform-campaign-"))
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Campaign(postgres, root, seed, out, logs or RESULTS / f"campaign-logs-{seed}")
    if not work.tmpfs:
        kinds = tuple(kind for kind in kinds if kind != "disk_full")
    records: list[dict] = []
    try:
        started = work.server.start()
        print(f"mlflow server: {started:.1f} s to start; home {work.home} (tmpfs: {work.tmpfs})", flush=True)
        work.land_new_batch()
        first = work.run()  # a champion to defend before the first fault
        print(f"first run (no fault): exit {first.wait()}", *first.tail(), sep="\n  ", flush=True)
        with out.open("w") as sink:
            for index in range(1, runs + 1):
                if time.time() + 150 > deadline:
                    print(f"deadline: stopping after {index - 1} runs", flush=True)
                    break
                kind = work.rng.choice(kinds)
                try:
                    record = work.one(index, kind)
                except Exception as error:  # the campaign's own failure: recorded, counted, never a pass
                    record = work.broken(index, kind, error)
                records.append(record)
                sink.write(json.dumps(record, default=str) + "\n")
                sink.flush()
                wrong = sum(len(v) for v in record["wrong"].values())
                print(f"[{_now()}] run {index} {record['kind']}: exit {record['exit']} -> {record['outcome']}; "
                      f"wrong states {wrong} ({record['wall_s']} s)", flush=True)  # fmt: skip
    finally:
        if work.logs.exists() and work.server.log.exists():  # the server's side of the kept runs
            shutil.copy(work.server.log, work.logs / "mlflow-server.log")
        work.close()
        shutil.rmtree(root, ignore_errors=True)
    return records


def table(records: list[dict], asked: int, kinds: tuple[str, ...] = KINDS) -> str:
    """Per fault kind: runs, how they recovered, and the wrong states found (new ones only)."""
    lines = [
        "| fault | runs | ran through | re-executed from failure | next run | approve/rollback | other manual repair "
        "| not recovered | campaign error | alias on ungated version | partial files | ledger ≠ registry |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    totals: Counter = Counter()
    for kind in kinds:
        mine = [r for r in records if r["kind"] == kind]
        counts = Counter()
        for r in mine:
            outcome = r["outcome"]
            counts["approve" if outcome.startswith("approve") else outcome] += 1
            counts["wrong_gates"] += len(r["wrong"]["gates"])
            counts["wrong_partial"] += sum(is_partial(Path(path)) for path in r["wrong"]["partial"])
            counts["wrong_ledger"] += len(r["wrong"]["ledger"])
        counts["runs"] = len(mine)
        totals.update(counts)
        lines.append(_row(kind, counts))
    lines.append(_row(f"**all** ({len(records)} of {asked} asked)", totals))
    return "\n".join(lines)


def _row(label: str, c: Counter) -> str:
    manual = sum(v for k, v in c.items() if k.startswith("person"))
    return (
        f"| {label} | {c['runs']} | {c['ran through']} | {c['re-executed']} | {c['next run']} | {c['approve']} | "
        f"{manual} | {c['not recovered']} | {c['campaign error']} | "
        f"{c['wrong_gates']} | {c['wrong_partial']} | {c['wrong_ledger']} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Lifecycle runs with one random fault each, then recovery.")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--deadline", default=None, help="HH:MM UTC: start no run that could end after it")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--out", type=Path, default=RESULTS / "campaign.jsonl")
    parser.add_argument(
        "--logs",
        type=Path,
        default=None,
        help="whole output of runs needing explanation (default bench/results/campaign-logs-<seed>/)",
    )
    parser.add_argument("--reexecute", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.reexecute:
        return reexecute_from_failure(args.reexecute)
    deadline = deadline_at(args.deadline) if args.deadline else float("inf")
    kinds = tuple(args.kinds.split(","))
    records = campaign(args.runs, deadline, args.seed, args.out, kinds, args.logs)
    print("\n" + table(records, args.runs, kinds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
