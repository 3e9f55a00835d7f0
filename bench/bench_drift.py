"""Drift: one evaluation of 8 features on 1,000,000 reference rows against 1,000,000 batch rows.

The frames are seeded conversion sessions (the batch from another seed): its seven features plus the
hour of the event, 5 numeric and 3 categorical. One evaluation is ``measure_drift`` from frames (the
reference prepared inside: the worst case); the figure beside it uses a ``Reference`` prepared once,
as repeated checks against one champion do. The prototype it replaces, ``scipy.stats.ks_2samp`` on
every numeric feature, is timed once for comparison.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import pandas as pd

ROWS = 1_000_000


@dataclass
class DriftResult:
    seconds: float
    cpu_seconds: float
    prepared_seconds: float
    scipy_seconds: float
    table: str


def frames(rows: int = ROWS) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    from growth.conversion.demo_data import generate
    from growth.conversion.spec import SPEC

    features = [*SPEC.features, "event_hour"]
    reference, batch = (
        generate(rows, seed=seed).assign(event_hour=lambda f: f["event_time"].dt.hour)[features] for seed in (0, 1)
    )
    return reference, batch, features


def compare(repeats: int, echo=print) -> DriftResult:
    from scipy import stats

    from ml_platform.rules.drift import Reference, measure_drift

    reference, batch, features = frames()
    measure_drift(reference, batch, features)  # warm-up: first calls import and allocate
    walls, cpus, prepared_walls = [], [], []
    prepared = Reference.from_frame(reference, features)
    for round_ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        report = measure_drift(reference, batch, features)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        wall = time.perf_counter()
        measure_drift(prepared, batch)
        prepared_walls.append(time.perf_counter() - wall)
        echo(
            f"  round {round_ + 1}  from frames {walls[-1]:.3f} s wall {cpus[-1]:.3f} s cpu; "
            f"prepared reference {prepared_walls[-1]:.3f} s"
        )
    numeric = [f.feature for f in report.features if f.kind == "numeric"]
    wall = time.perf_counter()
    for feature in numeric:
        stats.ks_2samp(reference[feature].to_numpy(float), batch[feature].to_numpy(float))
    scipy_seconds = time.perf_counter() - wall
    echo(f"  scipy.stats.ks_2samp on {len(numeric)} numeric features: {scipy_seconds:.3f} s")
    result = DriftResult(
        statistics.median(walls), statistics.median(cpus), statistics.median(prepared_walls), scipy_seconds, ""
    )
    result.table = (
        f"#### Drift: {len(features)} features ({len(numeric)} numeric), {ROWS:,} × {ROWS:,} rows "
        f"(in process, median of {repeats})\n\n"
        "| evaluation | wall s | CPU s |\n|---|---|---|\n"
        f"| `measure_drift` from frames (reference prepared inside) | {result.seconds:.3f} "
        f"| {result.cpu_seconds:.3f} |\n"
        f"| `measure_drift` with a prepared `Reference` | {result.prepared_seconds:.3f} | — |\n"
        f"| prototype: `scipy.stats.ks_2samp` on the numeric features only | {scipy_seconds:.3f} | — |\n"
    )
    return result
