"""``make bench``: every performance target of the platform, measured side by side, with a verdict.

    python -m bench.run [--sizes 100000,1000000] [--full] [--repeats 3] [--only startup,e2e,...,scale]

Prints each target's figure and whether it holds, and writes the results table (with the machine it
ran on) between the markers in ``docs/benchmarks.md``. Benchmarks are not tests: nothing here runs
in ``make test``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import ROOT, machine, require_gnu_time, verdict

DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"
SECTIONS = ("startup", "e2e", "gates", "snapshot", "drift", "load", "serving", "scale")
# Long (30-60 s per faulted run here): only when asked, BENCH_ONLY=campaign; its table goes to reliability.md.
EXTRA_SECTIONS = ("campaign",)


@dataclass
class Row:
    target: str
    figure: str
    required: str
    holds: bool | None
    detail: str = ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure every performance target side by side.")
    parser.add_argument("--sizes", default=os.environ.get("BENCH_SIZES", "100000,1000000"))
    parser.add_argument("--full", action="store_true", default=bool(os.environ.get("BENCH_FULL")))
    parser.add_argument("--repeats", type=int, default=int(os.environ.get("BENCH_REPEATS", "3")))
    parser.add_argument("--only", default=os.environ.get("BENCH_ONLY", ",".join(SECTIONS)))
    parser.add_argument("--no-iris", action="store_true", help="leave out the iris-size end-to-end case")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--doc", type=Path, default=DOC, help="the Markdown file whose results block is replaced")
    args = parser.parse_args(argv)
    require_gnu_time()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.full and 10_000_000 not in sizes:
        sizes.append(10_000_000)
    only = set(args.only.split(","))
    started = time.monotonic()
    info = machine()
    print("machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()))
    rows: list[Row] = []
    details: list[str] = []
    if "startup" in only:
        rows += startup(args.repeats + 2, details)
    if "e2e" in only:
        rows += end_to_end(sizes, args.repeats, details, iris=not args.no_iris)
    if "gates" in only:
        rows += gates(max(s for s in sizes if s <= 1_000_000), args.repeats + 2, details)
    if "snapshot" in only:
        rows += snapshot(sizes, details)
    if "drift" in only:
        rows += drift(args.repeats + 2, details)
    if "load" in only:
        rows += load(details, write=not args.no_write)
    if "serving" in only:
        rows += serving(details, write=not args.no_write)
    if "scale" in only:
        rows += scale(details, args.repeats, write=not args.no_write)
    if "campaign" in only:
        rows += campaign(details)
    info["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info["bench wall time"] = f"{(time.monotonic() - started) / 60:.1f} min"
    table = render(rows, info, details, args)
    print("\n" + table)
    if not args.no_write:
        write_doc(table, args.doc)
        print(f"\nwritten to {args.doc}")
    return 0


def startup(repeats: int, details: list[str]) -> list[Row]:
    from bench import bench_startup

    print(f"\n== start-up ({repeats} alternating rounds)")
    series = bench_startup.compare(repeats)
    dagster, defs, help_ = (series[k] for k in bench_startup.COMMANDS)
    details.append(_series_table("Start-up (whole processes)", series.values()))
    return [
        Row(
            "start-up: load the definitions vs `import dagster`",
            f"{defs.wall_s / dagster.wall_s:.2f}× wall ({defs.wall_s:.2f} s vs {dagster.wall_s:.2f} s); "
            f"{defs.cpu_s / dagster.cpu_s:.2f}× CPU",
            "≤ 1.3×",
            defs.wall_s / dagster.wall_s <= 1.3,
        ),
        Row("start-up: `ml-platform --help`", f"{help_.wall_s:.2f} s", "< 1 s", help_.wall_s < 1.0),
    ]


def end_to_end(sizes: list[int], repeats: int, details: list[str], iris: bool = True) -> list[Row]:
    from bench import bench_end_to_end

    result = []
    cases = [("iris", 150, 1.15)] * iris + [("conversion", n, 1.2) for n in sizes]
    for model, n, limit in cases:
        rounds = repeats if n < 5_000_000 else 1
        print(f"\n== end to end: {model} at {n:,} rows ({rounds} alternating rounds)")
        series = bench_end_to_end.compare(model, n, rounds)
        platform, bare = series["platform"], series["bare script"]
        details.append(_series_table(f"End to end: {model}, {n:,} rows", series.values()))
        wall, cpu, memory = (
            platform.wall_s / bare.wall_s,
            platform.cpu_s / bare.cpu_s,
            platform.peak_mib / bare.peak_mib,
        )
        result.append(
            Row(
                f"end to end: `ml-platform run {model}` vs bare script, {n:,} rows",
                f"{wall:.2f}× wall ({platform.wall_s:.1f} s vs {bare.wall_s:.1f} s); {cpu:.2f}× CPU",
                f"≤ {limit}×",
                wall <= limit,
            )
        )
        if model == "iris":
            overhead = platform.wall_s - bare.wall_s
            result.append(
                Row(
                    "end to end: the platform's fixed overhead at iris size (platform − bare script)",
                    f"{overhead:.1f} s wall ({platform.cpu_s - bare.cpu_s:.1f} s CPU)",
                    "≤ 5 s",
                    overhead <= 5.0,
                )
            )
        result.append(
            Row(
                f"peak memory: platform vs bare script, {model} {n:,} rows",
                f"{memory:.2f}× ({platform.peak_mib:,.0f} MiB vs {bare.peak_mib:,.0f} MiB)",
                "≤ 1.2×",
                memory <= 1.2,
            )
        )
    return result


def gates(n: int, repeats: int, details: list[str]) -> list[Row]:
    from bench import bench_gates

    print(f"\n== gates on {n:,} rows ({repeats} alternating rounds)")
    medians = bench_gates.compare(n, repeats)
    platform = medians["contract + segment gates (pandera)"]
    pandas = medians["hand-written pandas equivalent"]
    every = medians["all 7 snapshot gates"]
    details.append(
        f"#### Gates on {n:,} conversion rows (in process, median of {repeats})\n\n"
        "| contender | wall s | rows/s (wall) | CPU s | rows/s (CPU) |\n|---|---|---|---|---|\n"
        + "".join(
            f"| {label} | {m.wall_s:.3f} | {n / m.wall_s:,.0f} | {m.cpu_s:.3f} | {n / m.cpu_s:,.0f} |\n"
            for label, m in medians.items()
        )
    )
    return [
        Row(
            "gates: contract + segment throughput",
            f"{n / platform.wall_s:,.0f} rows/s wall, {n / platform.cpu_s:,.0f} rows/s CPU",
            "≥ 5,000,000 rows/s",
            n / platform.wall_s >= 5_000_000,
        ),
        Row(
            "gates: vs hand-written pandas",
            f"{platform.wall_s / pandas.wall_s:.2f}× wall, {platform.cpu_s / pandas.cpu_s:.2f}× CPU",
            "≤ 1.5×",
            platform.wall_s / pandas.wall_s <= 1.5,
        ),
        *[
            Row(
                f"gates: {label} (information)",
                f"{n / medians[label].wall_s:,.0f} rows/s wall, {n / medians[label].cpu_s:,.0f} rows/s CPU",
                "—",
                None,
            )
            for label in medians
            if "typed" in label
        ],
        Row(
            "gates: all 7 snapshot gates (information)",
            f"{n / every.wall_s:,.0f} rows/s wall, {n / every.cpu_s:,.0f} rows/s CPU",
            "—",
            None,
        ),
    ]


def snapshot(sizes: list[int], details: list[str]) -> list[Row]:
    from bench import bench_snapshot

    points = sorted({10_000, 100_000, *sizes})
    print(f"\n== snapshot scaling over {points}")
    measured = bench_snapshot.compare(points)
    details.append(bench_snapshot.table(measured))
    slope = bench_snapshot.linearity(measured)
    largest, before = bench_snapshot.memory_overhead(measured)
    frame = measured[-1].frame_mib
    return [
        Row(
            f"scale: snapshot cost per row, {points[1]:,} → {points[-1]:,} rows",
            f"{slope:.2f}× the per-row CPU cost at {points[1]:,} rows",
            "linear (≈ 1×)",
            slope <= 1.3,
        ),
        Row(
            f"scale: snapshot memory beyond the frame, {points[-2]:,} → {points[-1]:,} rows",
            f"{max(before, 0):,.0f} MiB → {max(largest, 0):,.0f} MiB over reading alone "
            f"(frame: {frame:,.0f} MiB at {points[-1]:,})",
            "bounded: does not grow with the rows",
            largest <= 1.5 * max(before, 0.0) + 32,  # 32 MiB: allocator noise between processes
        ),
    ]


def drift(repeats: int, details: list[str]) -> list[Row]:
    try:
        from bench import bench_drift
    except ImportError as error:
        print(f"\n== drift: skipped ({error})")
        return [Row("drift: 8 features, 1M × 1M rows", "not measured", "≤ 1 s", None, str(error))]
    print(f"\n== drift: 8 features on 1,000,000 × 1,000,000 rows ({repeats} rounds)")
    result = bench_drift.compare(repeats)
    details.append(result.table)
    return [
        Row(
            "drift: one evaluation, 8 features, 1M × 1M rows",
            f"{result.seconds:.2f} s wall ({result.cpu_seconds:.2f} s CPU); "
            f"scipy ks_2samp for comparison: {result.scipy_seconds:.2f} s",
            "≤ 1 s",
            result.seconds <= 1.0,
        )
    ]


def load(details: list[str], write: bool = True) -> list[Row]:
    from bench import bench_load

    print(f"\n== load: {', '.join(map(str, bench_load.FILES))} files of {bench_load.ROWS_PER_FILE} rows at once")
    points = bench_load.compare()
    text = bench_load.table(points)
    details.append(text)
    if write:
        bench_load.write_section(text)  # its own section too, kept when a later run leaves load out
    small, large = points[0], points[-1]
    first = large.figures["new_data_first_s"], large.figures["drift_first_s"]
    steady = max(large.figures["new_data_steady_s"], large.figures["drift_steady_s"])
    return [
        Row(
            f"load: first sensor ticks over {large.files:,} files landed at once",
            f"new-data {first[0]:.1f} s, drift {first[1]:.1f} s "
            f"({large.per_file_ms('new_data_first'):.1f} / {large.per_file_ms('drift_first'):.1f} ms per file)",
            "≤ 30 s each (the sensor interval; Dagster abandons an evaluation after 60 s)",
            max(first) <= 30.0,
        ),
        Row(
            f"load: peak memory, {small.files:,} → {large.files:,} files",
            f"{small.process.peak_mib:,.0f} → {large.process.peak_mib:,.0f} MiB",
            "bounded (≤ 2× for 10× the files)",
            large.process.peak_mib <= 2 * small.process.peak_mib,
        ),
        Row(f"load: a tick with nothing new, {large.files:,} files present", f"{steady:.2f} s", "≤ 1 s", steady <= 1.0),
        *[
            Row(
                f"load: {sensor} tick after one more file, {small.files:,} vs {large.files:,} present",
                f"{small.figures[f'{label}_one_more_s']:.2f} s vs {large.figures[f'{label}_one_more_s']:.2f} s",
                "the cost of the new file, not of every file (≤ 2× from 10× the files)",
                large.figures[f"{label}_one_more_s"] <= 2 * small.figures[f"{label}_one_more_s"],
            )
            for sensor, label in (("new-data", "new_data"), ("drift", "drift"))
        ],
    ]


def serving(details: list[str], write: bool = True, duration: int = 20) -> list[Row]:
    from bench import bench_serving

    print(f"\n== serving: ml-platform serve vs mlflow models serve, wrk at 1 and 8 connections, {duration} s each")
    result = bench_serving.compare(duration)
    text = bench_serving.table(result, duration)
    details.append(text)
    if write:
        bench_serving.write_section(text)  # its own section too, kept when a later run leaves serving out
    return [Row(target, figure, required, holds) for target, figure, required, holds in bench_serving.verdicts(result)]


def campaign(details: list[str]) -> list[Row]:
    from bench import bench_campaign

    asked = int(os.environ.get("CAMPAIGN_RUNS", "200"))
    deadline = os.environ.get("CAMPAIGN_DEADLINE")
    print(f"\n== fault-injection campaign: up to {asked} runs" + (f", stopping by {deadline} UTC" if deadline else ""))
    records = bench_campaign.campaign(
        asked,
        bench_campaign.deadline_at(deadline) if deadline else float("inf"),
        int(os.environ.get("CAMPAIGN_SEED", "16")),
        bench_campaign.RESULTS / "campaign.jsonl",
    )
    heading = f"#### Fault-injection campaign ({len(records)} of {asked} runs)\n\n"
    details.append(heading + bench_campaign.table(records, asked))
    wrong = sum(len(problems) for record in records for problems in record["wrong"].values())
    return [
        Row(
            f"faults: wrong states after recovery, {len(records)} of {asked} runs",
            f"{wrong}",
            "0",
            wrong == 0 if records else None,
        )
    ]


def scale(details: list[str], repeats: int, write: bool = True) -> list[Row]:
    """1, 10 and 100 models in one code location: load, snapshot, webserver, and the daemon with nothing new.

    The daemon runs ``BENCH_SCALE_WINDOW`` seconds (default 600) at 100 models and
    ``BENCH_SCALE_SMALL_WINDOW`` (default 180) at 1 and 10, once with a deployed code server (as on
    Kubernetes) and once with the one it manages itself (``dagster dev``); ``BENCH_SCALE_CODE_SERVERS``
    narrows it.
    """
    from bench import bench_scale

    window = float(os.environ.get("BENCH_SCALE_WINDOW", "600"))
    small = float(os.environ.get("BENCH_SCALE_SMALL_WINDOW", "180"))
    servers = tuple(os.environ.get("BENCH_SCALE_CODE_SERVERS", ",".join(bench_scale.CODE_SERVERS)).split(","))
    print(f"\n== scale: {bench_scale.MODELS} models; daemon {window:.0f} s at the largest, {small:.0f} s below")
    measured = bench_scale.compare(bench_scale.MODELS, repeats, window, small, servers)
    text = bench_scale.table(measured)
    details.append("#### Scale: N copies of the conversion model in one code location\n\n" + text)
    if write:
        bench_scale.write_section(text)  # its own section too, kept when a later run leaves scale out
    one, most = measured[min(measured)], measured[max(measured)]
    n = max(measured)
    rows = [
        Row(
            f"scale: definitions load in process, {min(measured)} → {n} models",
            f"{one['load']['load_s']:.2f} s → {most['load']['load_s']:.2f} s "
            f"({most['load']['load_s'] / one['load']['load_s']:.1f}×)",
            "≤ 2× the 1-model load",
            most["load"]["load_s"] <= 2 * one["load"]["load_s"],
        ),
        Row(
            f"scale: `dagster definitions validate`, {min(measured)} → {n} models",
            f"{one['validate_s']:.1f} s → {most['validate_s']:.1f} s ({most['validate_s'] / one['validate_s']:.1f}×)",
            "≤ 2× the 1-model load",
            most["validate_s"] <= 2 * one["validate_s"],
        ),
        Row(
            f"scale: repository snapshot and webserver `assetNodes`, {n} models (information)",
            f"{most['load']['snapshot_bytes'] / 1e6:.1f} MB ({most['load']['snapshot_s']:.1f} s); "
            f"query {most['webserver']['query_s']:.2f} s",
            "—",
            None,
        ),
    ]
    for key in sorted(k for k in most if k.startswith("daemon")):
        rows += _scale_daemon_rows(most[key], n)
    return rows


def _scale_daemon_rows(daemon: dict, n: int) -> list[Row]:
    kind = daemon.get("code_server", "managed")
    return [
        Row(
            f"scale: every sensor evaluated within its interval, {n} models, nothing new, {kind} code server",
            f"{daemon['sensors_ticked']} sensors, fewest ticks {daemon['ticks_per_sensor_min']} of "
            f"{daemon['ticks_expected_per_sensor']:.1f}; lag p95 {daemon['lag_p95_s']:.1f} s, max "
            f"{daemon['lag_max_s']:.1f} s",
            "no sensor a whole interval (30 s) late",
            daemon["lag_max_s"] < 30,
        ),
        Row(
            f"scale: daemon + code servers CPU, {n} models, nothing new, {kind} code server",
            f"{100 * daemon['cpu_share']:.1f}% of one core ({daemon['cpu_s']:.0f} s over "
            f"{daemon['window_s'] / 60:.1f} min)",
            "< 25% of one core",
            daemon["cpu_share"] < 0.25,
        ),
    ]


def _series_table(title: str, series) -> str:
    head = (
        f"#### {title}\n\n| contender | runs | wall s (median) | wall s (range) | CPU s (median) | peak MiB "
        "| load average at each run's end |\n"
    )
    head += "|---|---|---|---|---|---|---|\n"
    return head + "".join(
        f"| {s.label} | {len(s.samples)} | {s.wall_s:.2f} | {s.spread()} | {s.cpu_s:.2f} | {s.peak_mib:,.0f} "
        f"| {s.loads()} |\n"
        for s in series
    )


def render(rows: list[Row], info: dict[str, str], details: list[str], args) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Run {stamp}: `python -m bench.run --sizes {args.sizes} --repeats {args.repeats}"
        f"{' --full' if args.full else ''} --only {args.only}`",
        "",
        "| | |\n|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items()],
        "",
        "| target | figure | required | verdict |",
        "|---|---|---|---|",
    ]
    for row in rows:
        mark = "—" if row.holds is None else verdict(row.holds)
        lines.append(
            f"| {row.target} | {row.figure}{f' ({row.detail})' if row.detail else ''} | {row.required} | {mark} |"
        )
    return "\n".join(lines) + "\n\n" + "\n".join(details)


def write_doc(table: str, doc: Path = DOC) -> None:
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{START}\n{END}\n"
    if START not in text or END not in text:
        text += f"\n{START}\n{END}\n"
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(f"{head}{START}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    sys.exit(main())
