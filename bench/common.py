"""Measuring whole processes side by side: ``/usr/bin/time -v`` wall time and peak memory, medians.

Every figure the suite reports comes from here, so "how it was measured" has one answer: each command
runs as its own process under GNU time, the contenders alternate (A B A B …, so a noisy neighbour
hurts both alike), and the median of the repeats is the figure.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Sample:
    """One process: wall seconds, CPU seconds (user + system) and peak resident memory in MiB."""

    wall_s: float
    cpu_s: float
    peak_mib: float
    exit_code: int
    load: float = float("nan")  # the machine's 1-minute load average when the process ended


@dataclass
class Series:
    """The repeated samples of one contender."""

    label: str
    samples: list[Sample] = field(default_factory=list)

    @property
    def wall_s(self) -> float:
        return statistics.median(s.wall_s for s in self.samples)

    @property
    def cpu_s(self) -> float:
        return statistics.median(s.cpu_s for s in self.samples)

    @property
    def peak_mib(self) -> float:
        return statistics.median(s.peak_mib for s in self.samples)

    def loads(self) -> str:
        """The 1-minute load average at the end of each run, in run order."""
        return " ".join(f"{s.load:.1f}" for s in self.samples)

    def spread(self) -> str:
        walls = sorted(s.wall_s for s in self.samples)
        return f"{walls[0]:.2f}–{walls[-1]:.2f}" if len(walls) > 1 else f"{walls[0]:.2f}"


def require_gnu_time() -> None:
    if not Path(GNU_TIME).is_file():
        raise SystemExit(
            f"{GNU_TIME} (GNU time) is missing: install it with `sudo apt-get update && sudo apt-get install -y time`"
        )


def _parse_time_v(text: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) from ``/usr/bin/time -v`` output."""
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text)
    user = re.search(r"User time \(seconds\): (\S+)", text)
    system = re.search(r"System time \(seconds\): (\S+)", text)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    if not (wall and user and system and rss):
        raise RuntimeError(f"cannot read /usr/bin/time -v output:\n{text[-2000:]}")
    seconds = 0.0
    for part in wall[1].split(":"):
        seconds = seconds * 60 + float(part)
    return seconds, float(user[1]) + float(system[1]), int(rss[1]) / 1024


def measure(command: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT, log: Path | None = None) -> Sample:
    """Run ``command`` once under ``/usr/bin/time -v``, with ``env`` as its whole environment if given.

    The command's own output goes to ``log`` (or is dropped).
    """
    report = RESULTS / f".time-v-{os.getpid()}.txt"  # one per bench process: two benches may run at once
    RESULTS.mkdir(parents=True, exist_ok=True)
    full_env = env if env is not None else dict(os.environ)
    sink = log.open("w") if log else subprocess.DEVNULL
    try:
        completed = subprocess.run(
            [GNU_TIME, "-v", "-o", str(report), *command], env=full_env, cwd=cwd, stdout=sink, stderr=sink
        )
    finally:
        if log:
            sink.close()
    wall, cpu, peak = _parse_time_v(report.read_text())
    return Sample(wall, cpu, peak, completed.returncode, os.getloadavg()[0])


def alternate(contenders: dict[str, callable], repeats: int, on_sample=None) -> dict[str, Series]:
    """Call each contender's ``() -> Sample`` in turn, ``repeats`` rounds, A B A B …"""
    series = {label: Series(label) for label in contenders}
    for round_ in range(repeats):
        for label, run in contenders.items():
            sample = run()
            series[label].samples.append(sample)
            if on_sample:
                on_sample(label, round_, sample)
    return series


def machine() -> dict[str, str]:
    """The machine a run was measured on, for the results table."""
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        cpu = found[1].strip() if found else cpu
    memory = "unknown"
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        found = re.search(r"MemTotal:\s+(\d+) kB", meminfo.read_text())
        memory = f"{int(found[1]) / 1024**2:.1f} GiB" if found else memory
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    versions = {}
    for package in ("dagster", "mlflow", "scikit-learn", "pandas", "pandera", "pyarrow", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "absent"
    return {
        "cpu": f"{cpu}, {os.cpu_count()} logical cores",
        "memory": memory,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "load average at start": " ".join(f"{x:.2f}" if isinstance(x, float) else x for x in load),
        "bytecode": _bytecode(),
    }


def _bytecode() -> str:
    """Whether the environment's packages are precompiled.

    With ``PYTHONDONTWRITEBYTECODE`` set (as in some CI images and sandboxes) and no ``.pyc`` files,
    every process compiles dagster, MLflow and scikit-learn from source: about 30 s of CPU per run
    here, which swamps every other figure. ``make env`` installs with ``uv sync --compile-bytecode``.
    """
    import dagster

    cached = any((Path(dagster.__file__).parent / "__pycache__").glob("__init__.*.pyc"))
    flag = "PYTHONDONTWRITEBYTECODE set" if os.environ.get("PYTHONDONTWRITEBYTECODE") else "writes .pyc"
    return f"{'precompiled' if cached else 'NOT precompiled (imports compile from source)'}; {flag}"


def fresh_copy(template: Path, target: Path) -> Path:
    """A throw-away copy of a prepared platform home (outside the timed region)."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(template, target)
    return target


def verdict(holds: bool) -> str:
    return "holds" if holds else "DOES NOT HOLD"


def write_doc_section(doc: Path, start: str, end: str, heading: str, text: str) -> None:
    """Replace one benchmark's own block (between ``start`` and ``end``) in ``doc``, nothing else.

    The block is added once, under ``heading``, before the profiles section (or at the end).
    """
    body = doc.read_text()
    if start not in body:
        anchor = "## Profiles behind each change"
        block = f"## {heading}\n\n{start}\n{end}\n\n"
        body = body.replace(anchor, block + anchor, 1) if anchor in body else body + "\n" + block
    head, rest = body.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def stop_group(process: subprocess.Popen) -> None:
    """Stop a server started with ``start_new_session=True`` and everything it spawned: SIGTERM, then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
