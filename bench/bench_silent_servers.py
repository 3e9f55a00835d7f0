"""How long a command takes to give up on a server that accepts connections and never answers.

    python -m bench.bench_silent_servers

A socket on 127.0.0.1 accepts every connection and never writes a byte. ``ml-platform history iris``
runs against it, once as the MLflow tracking server (``MLFLOW_TRACKING_URI``) and once as PostgreSQL
(``ML_PLATFORM_POSTGRES_URL``), with the platform's default bound (``ML_PLATFORM_SERVER_TIMEOUT``, 10 s)
and a fresh home; the time to exit 3 is printed with the last line of the message, and beside it the
time the same interpreter takes only to import what the command imports, so the wait can be told from
the start-up. The tests (``ml_platform_tests/reliability/test_silent_servers.py``) assert the exit code
and the message; the time belongs here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

TARGET_SECONDS = 60.0


def _silent_port() -> int:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list = []

    def accept() -> None:
        while True:
            held.append(listener.accept())  # kept open, never written to

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()[1]


def main() -> int:
    port = _silent_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ML_PLATFORM_", "DAGSTER_"))}
    worst = 0.0
    for name, extra in (
        ("MLflow tracking server", {"MLFLOW_TRACKING_URI": f"http://platform:secret@127.0.0.1:{port}"}),
        ("PostgreSQL", {"ML_PLATFORM_POSTGRES_URL": f"postgresql://platform:secret@127.0.0.1:{port}/platform"}),
    ):
        home = tempfile.mkdtemp(prefix="bench-silent-")
        environment = {**base, "ML_PLATFORM_HOME": home, "DAGSTER_HOME": f"{home}/dagster", **extra}
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "ml_platform.cli", "history", "iris"],
            env=environment, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        seconds = time.monotonic() - started
        worst = max(worst, seconds)
        last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
        print(f"{name}: exit {done.returncode} after {seconds:.1f} s: {last[:300]}")
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import dagster, mlflow, ml_platform.cli.commands.decisions"], check=True)
    print(f"imports alone: {time.monotonic() - started:.1f} s")
    holds = worst < TARGET_SECONDS
    print(f"slowest: {worst:.1f} s (target < {TARGET_SECONDS:.0f} s): {'holds' if holds else 'DOES NOT HOLD'}")
    return 0 if holds else 1


if __name__ == "__main__":
    sys.exit(main())
