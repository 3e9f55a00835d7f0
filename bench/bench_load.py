"""Load: hundreds of small batches land at once, and the retraining sensors evaluate over them.

A conversion champion is trained once on a template platform home (3,000 rows). For each count of files
(100, 300, 1,000 by default, 200 rows each) a fresh copy of that home gets the files in its landing
folder, all at once, and one process (under ``/usr/bin/time -v``) loads the definitions on a real
Dagster instance (SQLite, ``instance_for_test``) and evaluates, with ``build_sensor_context`` as the
daemon would:

1. the new-data sensor, then the drift sensor, on the whole pile (the first tick after the landing);
2. both again with the cursors they returned (steady state: nothing new);
3. both again after one more file landed (incremental: is the cost that of one file, or of all?).

Reported: wall time of each tick, per-file cost of the first ticks, cursor sizes, and the process's
peak RSS; and how each scales from 100 to 1,000 files. Monitoring is the shipped conversion block with
``new_data_rows`` set (so the new-data sensor exists) and no cool-down (so the second sensor is not held
back by the first one's ``retrain``).

    python -m bench.bench_load [--files 100,300,1000] [--rows-per-file 200] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench.common import PYTHON, RESULTS, ROOT, Sample, fresh_copy, measure, write_doc_section

FILES = (100, 300, 1000)
ROWS_PER_FILE = 200
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- bench:load:start -->", "<!-- bench:load:end -->"
FAST = {"max_iter": 60, "learning_rate": 0.15, "max_leaf_nodes": 31, "early_stopping": False, "random_state": 42}


def spec():
    from growth.conversion.spec import SPEC as CONVERSION

    monitoring = CONVERSION.monitoring.model_copy(update={"new_data_rows": 10_000, "cooldown": timedelta(0)})
    return CONVERSION.model_copy(update={"params": FAST, "monitoring": monitoring})


def _definitions(home: Path):
    import dagster as dg

    from ml_platform.defs.decisions import decisions_definitions
    from ml_platform.defs.factory import model_definitions
    from ml_platform.defs.resources import default_resources
    from ml_platform.defs.triggers import trigger_definitions
    from ml_platform.settings import PlatformPaths

    model = spec()
    return dg.Definitions.merge(
        model_definitions(model),
        decisions_definitions(model),
        trigger_definitions(model),
        dg.Definitions(resources=default_resources(PlatformPaths(home))),
    )


def _env(home: Path) -> dict[str, str]:
    import os

    clean = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "DAGSTER_HOME", "ML_PLATFORM_ARTIFACT_ROOT")
    return {k: v for k, v in os.environ.items() if k not in clean} | {
        "ML_PLATFORM_HOME": str(home),
        "GIT_PYTHON_REFRESH": "quiet",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def template() -> Path:
    """A platform home with a trained conversion champion (version 1), built once and reused."""
    path = RESULTS / "homes" / "load-champion"
    if (path / ".ready").exists():
        return path
    if path.exists():
        subprocess.run(["rm", "-rf", str(path)], check=True)
    path.mkdir(parents=True)
    subprocess.run([PYTHON, "-m", "bench.bench_load", "prepare", str(path)], check=True, env=_env(path), cwd=ROOT)
    (path / ".ready").write_text("")
    return path


def _prepare(home: Path) -> None:
    import dagster as dg
    from growth.conversion.demo_data import generate

    from ml_platform.settings import PlatformPaths
    from ml_platform.stores.registry import ensure_mlflow_store

    paths = PlatformPaths(home)
    ensure_mlflow_store(paths)
    landing = spec().landing_path(home)
    landing.mkdir(parents=True)
    generate(3000, seed=1).to_csv(landing / "export.csv", index=False)
    defs = _definitions(home)
    (home / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(home / "dagster")) as instance:
        job = defs.resolve_job_def(f"{spec().dagster_name}_lifecycle")
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        if not result.success:
            raise SystemExit("the template champion's run failed: see the log above")


def prepare_batches(home: Path, files: int, rows_per_file: int) -> None:
    """``files`` CSV batches of ``rows_per_file`` ordinary sessions in ``<home>/incoming`` (outside the timing),
    plus one more that lands later; the measured process moves them into the landing folder at once."""
    from growth.conversion.demo_data import generate

    incoming = home / "incoming"
    incoming.mkdir()
    frame = generate(files * rows_per_file + rows_per_file, seed=2)
    for index in range(files + 1):
        chunk = frame.iloc[index * rows_per_file : (index + 1) * rows_per_file]
        chunk.to_csv(incoming / (f"batch-{index:05d}.csv" if index < files else "late.csv"), index=False)


def _tick(home: Path, out: Path) -> None:
    """One process: every sensor evaluation of the scenario, each timed, written as JSON to ``out``."""
    import dagster as dg

    started = time.perf_counter()
    defs = _definitions(home)
    figures: dict[str, float | int | str] = {"definitions_s": time.perf_counter() - started}
    name = spec().dagster_name
    landing = spec().landing_path(home)

    def evaluate(sensor: str, cursor: str | None, label: str):
        full = f"{name}_{sensor}"
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, sensor_name=full, resources=defs.resources
        )
        wall = time.perf_counter()
        result = defs.resolve_sensor_def(full).evaluate_tick(context)
        figures[f"{label}_s"] = time.perf_counter() - wall
        figures[f"{label}_peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        figures[f"{label}_cursor_bytes"] = len(result.cursor or "")
        figures[f"{label}_outcome"] = (
            f"{len(result.run_requests)} run request(s)" if result.run_requests else (result.skip_message or "")[:160]
        )
        return result.cursor

    (home / "dagster-load").mkdir(exist_ok=True)
    with dg.instance_for_test(temp_dir=str(home / "dagster-load")) as instance:
        # Warm-up on an empty landing folder: what a long-lived code server has paid before any batch
        # (imports, the registry's first answer). Then every batch lands at once.
        evaluate("new_data_sensor", None, "warm_up_new_data")
        evaluate("drift_sensor", None, "warm_up_drift")
        incoming = home / "incoming"
        for path in sorted(incoming.glob("batch-*.csv")):
            path.rename(landing / path.name)
        new_data = evaluate("new_data_sensor", None, "new_data_first")
        drift = evaluate("drift_sensor", None, "drift_first")
        new_data = evaluate("new_data_sensor", new_data, "new_data_steady")
        drift = evaluate("drift_sensor", drift, "drift_steady")
        (incoming / "late.csv").rename(landing / "batch-late.csv")
        evaluate("new_data_sensor", new_data, "new_data_one_more")
        evaluate("drift_sensor", drift, "drift_one_more")
    out.write_text(json.dumps(figures, indent=2))


@dataclass
class Point:
    files: int
    rows_per_file: int
    process: Sample
    figures: dict

    def per_file_ms(self, label: str) -> float:
        return 1000 * self.figures[f"{label}_s"] / self.files


def compare(files: tuple[int, ...] = FILES, rows_per_file: int = ROWS_PER_FILE, echo=print) -> list[Point]:
    base = template()
    points = []
    for count in files:
        home = fresh_copy(base, RESULTS / "work" / f"load-{count}")
        prepare_batches(home, count, rows_per_file)
        out = RESULTS / f"load-{count}.json"
        log = RESULTS / "logs" / f"load-{count}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        sample = measure([PYTHON, "-m", "bench.bench_load", "tick", str(home), str(out)], env=_env(home), log=log)
        if sample.exit_code != 0:
            raise SystemExit(f"the load scenario with {count} files failed (exit {sample.exit_code}): see {log}")
        figures = json.loads(out.read_text())
        figures["process"] = sample.__dict__
        out.write_text(json.dumps(figures, indent=2))
        point = Point(count, rows_per_file, sample, figures)
        echo(
            f"  {count:>5} files: process {sample.wall_s:.1f} s, peak {sample.peak_mib:,.0f} MiB; "
            f"new-data {point.figures['new_data_first_s']:.2f} s, drift {point.figures['drift_first_s']:.2f} s"
        )
        points.append(point)
    return points


def table(points: list[Point]) -> str:
    rows = points[0].rows_per_file
    head = (
        f"#### Load: N files of {rows} rows landing at once, the retraining sensors over them "
        "(one process per N under `/usr/bin/time -v`; ticks after a warm-up on an empty folder)\n\n"
        "| files (rows) | process wall s | peak MiB | first tick s: new-data / drift | "
        "ms per file, first tick: new-data / drift | steady tick s: new-data / drift | "
        "one more file s: new-data / drift | cursor bytes: new-data / drift |\n|---|---|---|---|---|---|---|---|\n"
    )
    body = ""
    for p in points:
        f = p.figures
        extra = f"{p.per_file_ms('new_data_first'):.1f} / {p.per_file_ms('drift_first'):.1f}"
        body += (
            f"| {p.files:,} ({p.files * rows:,}) | {p.process.wall_s:.1f} | {p.process.peak_mib:,.0f} | "
            f"{f['new_data_first_s']:.2f} / {f['drift_first_s']:.2f} | {extra} | "
            f"{f['new_data_steady_s']:.2f} / {f['drift_steady_s']:.2f} | "
            f"{f['new_data_one_more_s']:.2f} / {f['drift_one_more_s']:.2f} | "
            f"{f['new_data_first_cursor_bytes']:,} / {f['drift_first_cursor_bytes']:,} |\n"
        )
    outcomes = "".join(
        f"- {p.files:,} files: new-data: {p.figures['new_data_first_outcome']}; drift: "
        f"{p.figures['drift_first_outcome']}; drift after one more file: {p.figures['drift_one_more_outcome']}\n"
        for p in points
    )
    return head + body + "\nWhat each sensor decided:\n\n" + outcomes


def saved(files: tuple[int, ...], rows_per_file: int) -> list[Point]:
    """The points of the last measured run, from ``bench/results/load-<N>.json``."""
    points = []
    for count in files:
        figures = json.loads((RESULTS / f"load-{count}.json").read_text())
        points.append(Point(count, rows_per_file, Sample(**figures["process"]), figures))
    return points


def write_section(text: str, doc: Path = DOC) -> None:
    """Replace this benchmark's own block in the doc, nothing else."""
    write_doc_section(doc, START, END, "Load: many small batches at once", text)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["prepare"]:
        _prepare(Path(argv[1]))
        return 0
    if argv[:1] == ["tick"]:
        _tick(Path(argv[1]), Path(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description="Many small batches at once: the retraining sensors' cost.")
    parser.add_argument("--files", default=",".join(map(str, FILES)))
    parser.add_argument("--rows-per-file", type=int, default=ROWS_PER_FILE)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--render", action="store_true", help="no measuring: the table from the last run's results")
    args = parser.parse_args(argv)
    counts = tuple(int(n) for n in args.files.split(","))
    points = saved(counts, args.rows_per_file) if args.render else compare(counts, args.rows_per_file)
    text = table(points)
    print("\n" + text)
    if not args.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
