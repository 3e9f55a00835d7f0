"""Snapshot scaling: CPU time per row and peak memory of taking a snapshot, 10,000 rows and up.

Each point runs in its own process under ``/usr/bin/time -v``, three ways on the same landing CSV:
``read`` (pandas reads the landing file: the frame the snapshot must hold), ``snapshot`` (read, then
``take_snapshot``: chunked content hash, chunked Parquet write, streamed file hashes), and
``whole-frame`` (read, then the previous whole-frame way: reorder the whole frame to hash it, then
``DataFrame.to_parquet``), so the table shows what streaming saves.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.common import PYTHON, RESULTS, ROOT, measure

PROBE = """
import hashlib, json, sys, time
from pathlib import Path
import pandas as pd
from ml_platform.stores.snapshot import read_landing, take_snapshot
HASH_CHUNK_ROWS = 500_000
landing, root, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
start = time.process_time()
frame, sources = read_landing(landing, "conversion")
read = time.process_time() - start
if mode == "snapshot":
    take_snapshot(frame, sources, root)
elif mode == "whole-frame":
    ordered = frame[sorted(frame.columns)]
    digest = hashlib.sha256()
    for begin in range(0, len(ordered), HASH_CHUNK_ROWS):
        chunk = ordered.iloc[begin : begin + HASH_CHUNK_ROWS]
        digest.update(pd.util.hash_pandas_object(chunk, index=False).to_numpy().tobytes())
    root.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(root / "data.parquet", index=False)
total = time.process_time() - start
frame_mib = frame.memory_usage(deep=True).sum() / 2**20
print(json.dumps({"rows": len(frame), "frame_mib": frame_mib, "read_cpu": read, "total_cpu": total}))
"""
MODES = ("read", "snapshot", "whole-frame")


@dataclass
class Point:
    rows: int
    frame_mib: float
    peak_mib: dict[str, float]
    wall_s: dict[str, float]
    snapshot_cpu_s: float  # CPU seconds of take_snapshot alone (total minus the read)
    read_cpu_s: float


def landing(rows: int) -> Path:
    """A landing folder with one seeded conversion CSV of ``rows`` rows (reusing the end-to-end one)."""
    shared = RESULTS / "homes" / f"conversion-{rows}" / "landing" / "conversion"
    if shared.is_dir() and any(shared.glob("*.csv")):
        return shared
    folder = RESULTS / "snapshot-landing" / str(rows)
    if not any(folder.glob("*.csv")):
        folder.mkdir(parents=True, exist_ok=True)
        code = (
            "import sys; from growth.conversion.demo_data import generate; "
            "generate(int(sys.argv[1]), seed=0).to_csv(sys.argv[2], index=False)"
        )
        partial = folder / ".demo-seed0.csv.partial"  # renamed when whole: an interrupted run leaves no CSV
        subprocess.run([PYTHON, "-c", code, str(rows), str(partial)], check=True, cwd=ROOT)
        partial.rename(folder / "demo-seed0.csv")
    return folder


def compare(points: list[int], repeats: int = 1, echo=print) -> list[Point]:
    measured = []
    for rows in points:
        source = landing(rows)
        peaks, walls, snapshot_cpu, read_cpu, frame_mib = {}, {}, [], [], 0.0
        for mode in MODES:
            samples = []
            for _ in range(repeats):
                root = RESULTS / "snapshot-work"
                shutil.rmtree(root, ignore_errors=True)
                log = RESULTS / "snapshot-probe.json"
                sample = measure([PYTHON, "-c", PROBE, str(source), str(root), mode], log=log)
                if sample.exit_code != 0:
                    raise RuntimeError(f"snapshot probe {mode} at {rows:,} rows failed: see {log}")
                result = json.loads(log.read_text().strip().splitlines()[-1])
                samples.append(sample)
                frame_mib = result["frame_mib"]
                if mode == "snapshot":
                    snapshot_cpu.append(result["total_cpu"] - result["read_cpu"])
                    read_cpu.append(result["read_cpu"])
            peaks[mode] = statistics.median(s.peak_mib for s in samples)
            walls[mode] = statistics.median(s.wall_s for s in samples)
            echo(f"  {rows:>12,} rows  {mode:<12} {walls[mode]:7.2f} s wall  {peaks[mode]:8.0f} MiB peak")
        measured.append(
            Point(rows, frame_mib, peaks, walls, statistics.median(snapshot_cpu), statistics.median(read_cpu))
        )
    shutil.rmtree(RESULTS / "snapshot-work", ignore_errors=True)
    return measured


def linearity(points: list[Point]) -> float:
    """Per-row CPU cost of ``take_snapshot`` at the largest size over that at the second-smallest.

    The smallest size is left out of the ratio: at 10,000 rows fixed costs dominate the per-row figure.
    """
    base = points[1] if len(points) > 1 else points[0]
    largest = points[-1]
    return (largest.snapshot_cpu_s / largest.rows) / (base.snapshot_cpu_s / base.rows)


def memory_overhead(points: list[Point]) -> tuple[float, float]:
    """The snapshot's extra peak memory over reading alone, in MiB, at the largest size and the one before.

    Streaming means this extra stays about one chunk's worth as the frame grows; a whole-frame copy
    would grow it in proportion to the rows.
    """
    extra = [p.peak_mib["snapshot"] - p.peak_mib["read"] for p in points]
    return extra[-1], extra[-2] if len(extra) > 1 else extra[-1]


def table(points: list[Point]) -> str:
    head = (
        "#### Snapshot scaling (each cell its own process; CPU seconds of `take_snapshot` alone)\n\n"
        "| rows | frame MiB | read: peak MiB | snapshot: peak MiB | whole-frame way: peak MiB | "
        "snapshot CPU s | CPU µs/row | read CPU s |\n|---|---|---|---|---|---|---|---|\n"
    )
    return head + "".join(
        f"| {p.rows:,} | {p.frame_mib:,.0f} | {p.peak_mib['read']:,.0f} | {p.peak_mib['snapshot']:,.0f} | "
        f"{p.peak_mib['whole-frame']:,.0f} | {p.snapshot_cpu_s:.2f} | {1e6 * p.snapshot_cpu_s / p.rows:.2f} | "
        f"{p.read_cpu_s:.2f} |\n"
        for p in points
    )
