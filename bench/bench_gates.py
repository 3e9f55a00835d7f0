"""Gate throughput: the data contract and segment gates against a hand-written pandas equivalent.

The input is what the snapshot gates receive: the conversion landing CSV as pandas reads it (event
times still text, so the contract's coercion parses them). Both contenders are timed in this one
process, alternating, median of the repeats; a figure is rows per second of wall time.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
from growth.conversion.contract import DEVICES, ConversionRecord
from growth.conversion.spec import REGIONS
from growth.conversion.spec import SPEC as CONVERSION

from bench.common import RESULTS
from ml_platform.rules import contracts

COLUMNS = tuple(ConversionRecord.to_schema().columns)  # the hand-written check's column list


def landing_frame(rows: int) -> pd.DataFrame:
    """The conversion landing data as the snapshot stores it, cached under bench/results/."""
    cache = RESULTS / f"gates-{rows}.parquet"
    if not cache.exists():
        from growth.conversion.demo_data import generate

        csv = RESULTS / f"gates-{rows}.csv"
        RESULTS.mkdir(parents=True, exist_ok=True)
        generate(rows, seed=0).to_csv(csv, index=False)
        pd.read_csv(csv).to_parquet(cache, index=False)
        csv.unlink()
    return pd.read_parquet(cache)


def platform_gates(frame: pd.DataFrame) -> bool:
    """The platform's contract gate (pandera, lazy) and segment gate, as the snapshot checks run them:
    event times parsed once, then shared by every gate."""
    subject = "bench"
    frame = contracts.with_typed_event_times(frame, CONVERSION, ConversionRecord)  # as snapshot_gates does
    schema = contracts.schema_holds(frame, ConversionRecord, subject)
    segments = contracts.has_every_segment(frame, CONVERSION, subject)
    return schema.passed and segments.passed


def pandas_gates(frame: pd.DataFrame) -> bool:
    """The same rules written by hand in pandas: strict columns, coercion, ranges, categories, no nulls,
    and every region present with at least its share."""
    if set(frame.columns) != set(COLUMNS):
        return False
    ok = not frame.isna().any().any()
    event_time = pd.to_datetime(frame["event_time"], utc=True, errors="coerce", format="ISO8601")
    ok &= bool(event_time.notna().all())
    ok &= bool(frame["session_id"].astype(str).notna().all())
    ok &= bool(frame["region"].astype(str).isin(REGIONS).all())
    ok &= bool(frame["device"].astype(str).isin(DEVICES).all())
    price = frame["price"].astype(float)
    discount = frame["discount"].astype(float)
    ok &= bool((price > 0).all() and discount.between(0.0, 0.9).all())
    ok &= bool((frame["pages_viewed"].astype("int64") >= 1).all())
    ok &= bool((frame["time_on_site_s"].astype(float) >= 0).all())
    ok &= frame["returning_customer"].dtype == bool
    ok &= bool(frame["converted"].astype("int64").notna().all())
    shares = frame["region"].astype(str).value_counts(normalize=True)
    min_share = CONVERSION.segments.min_share
    ok &= all(shares.get(region, 0.0) >= share for region, share in min_share.items())
    ok &= set(shares.index) <= set(min_share)
    return ok


def all_snapshot_gates(frame: pd.DataFrame) -> bool:
    results = contracts.snapshot_gates(frame, CONVERSION, ConversionRecord, "bench", now=datetime.now(UTC))
    return all(result.passed for result in results)


@dataclass(frozen=True)
class Median:
    wall_s: float
    cpu_s: float


def compare(rows: int, repeats: int, echo=print) -> dict[str, Median]:
    """Median wall and CPU seconds of each contender over ``repeats`` alternating rounds, on ``rows`` rows.

    CPU seconds (``time.process_time``) are reported beside wall seconds: on a shared machine a busy
    neighbour stretches wall time but not the work done.
    """
    frame = landing_frame(rows)
    typed = frame.assign(event_time=pd.to_datetime(frame["event_time"], utc=True, format="ISO8601"))
    contenders = {
        "contract + segment gates (pandera)": platform_gates,
        "hand-written pandas equivalent": pandas_gates,
        "all 7 snapshot gates": all_snapshot_gates,
        "contract + segment gates, typed event times (Parquet landing)": lambda _: platform_gates(typed),
        "hand-written pandas, typed event times": lambda _: pandas_gates(typed),
    }
    for label, gate in contenders.items():
        if not gate(frame):  # warm-up, and the data must pass: a failing path is not the one measured
            raise RuntimeError(f"{label} failed on the benchmark data")
    walls = {label: [] for label in contenders}
    cpus = {label: [] for label in contenders}
    for round_ in range(repeats):
        for label, gate in contenders.items():
            wall, cpu = time.perf_counter(), time.process_time()
            gate(frame)
            walls[label].append(time.perf_counter() - wall)
            cpus[label].append(time.process_time() - cpu)
            echo(
                f"  round {round_ + 1}  {label:<62} {walls[label][-1]:6.3f} s wall {cpus[label][-1]:6.3f} s cpu "
                f"{rows / walls[label][-1]:>12,.0f} rows/s"
            )
    return {label: Median(statistics.median(walls[label]), statistics.median(cpus[label])) for label in contenders}
