"""End-to-end overhead: ``ml-platform run <model>`` against the bare script, side by side.

For each size a template platform home is prepared once (seeded landing CSV, a migrated MLflow store,
an initialised Dagster home); every run gets a fresh copy of it (outside the timed region), so each
contender does a first-time run: snapshot written, no champion yet, version 1 registered as champion.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from bench.common import PYTHON, RESULTS, ROOT, Series, alternate, fresh_copy, measure

CLI = str(Path(PYTHON).parent / "ml-platform")
BARE = str(ROOT / "bench" / "bare_script.py")
PREPARE = """
import sys
from pathlib import Path
from ml_platform.demo import write_demo_data
from ml_platform.settings import PlatformPaths, ensure_dagster_home
from ml_platform.stores.registry import ensure_mlflow_store
import dagster as dg
paths = PlatformPaths(Path(sys.argv[1]))
write_demo_data(sys.argv[2], rows=int(sys.argv[3]), seed=0, paths=paths)
ensure_mlflow_store(paths)
ensure_dagster_home(paths)
with dg.DagsterInstance.get() as instance:
    instance.get_runs(limit=1)
"""
CLEAN_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "DAGSTER_HOME", "ML_PLATFORM_ARTIFACT_ROOT")


def template(model: str, rows: int) -> Path:
    """A prepared platform home for ``model`` at ``rows`` rows, built once and reused across runs."""
    instance_config = hashlib.sha256((ROOT / "dagster.yaml").read_bytes()).hexdigest()[:8]
    path = RESULTS / "homes" / f"{model}-{rows}-{instance_config}"  # a changed dagster.yaml prepares anew
    if (path / ".ready").exists():
        return path
    if path.exists():
        subprocess.run(["rm", "-rf", str(path)], check=True)
    path.mkdir(parents=True)
    subprocess.run([PYTHON, "-c", PREPARE, str(path), model, str(rows)], check=True, env=_env(path), cwd=ROOT)
    (path / ".ready").write_text("")
    return path


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    return env | {
        "ML_PLATFORM_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "GIT_PYTHON_REFRESH": "quiet",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }


def compare(model: str, rows: int, repeats: int, echo=print) -> dict[str, Series]:
    """Alternate the platform and the bare script on fresh copies of one template; ``repeats`` rounds."""
    source = template(model, rows)
    work = RESULTS / "work"
    logs = RESULTS / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    counter = {"platform": 0, "bare script": 0}

    def contender(label: str, command: list[str]):
        def run():
            home = fresh_copy(source, work / f"{model}-{rows}-{label.replace(' ', '_')}")
            counter[label] += 1
            log = logs / f"{model}-{rows}-{label.replace(' ', '_')}-{counter[label]}.log"
            sample = measure(
                [*command, *(["--home", str(home)] if label == "bare script" else [])], _env(home), log=log
            )
            if sample.exit_code != 0:
                raise RuntimeError(f"{label} on {model} at {rows:,} rows exited {sample.exit_code}: see {log}")
            return sample

        return run

    def report(label, round_, sample):
        echo(
            f"  {model} {rows:>10,} rows  round {round_ + 1}  {label:<12} {sample.wall_s:7.2f} s wall "
            f"{sample.cpu_s:7.2f} s cpu {sample.peak_mib:8.0f} MiB peak  load {sample.load:.1f}"
        )

    return alternate(
        {
            "platform": contender("platform", [CLI, "run", model]),
            "bare script": contender("bare script", [PYTHON, BARE, "--model", model]),
        },
        repeats,
        report,
    )
