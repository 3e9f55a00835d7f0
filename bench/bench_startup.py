"""Start-up: what ``dagster dev``, every code-server reload and ``ml-platform --help`` pay.

Three processes, alternating: ``import dagster`` alone (the floor any Dagster code location pays),
``import ml_platform.definitions`` (dagster plus building every model's definitions), and
``ml-platform --help``.
"""

from __future__ import annotations

from pathlib import Path

from bench.common import PYTHON, Series, alternate, measure

CLI = str(Path(PYTHON).parent / "ml-platform")
COMMANDS = {
    "import dagster": [PYTHON, "-c", "import dagster"],
    "load ml_platform.definitions": [PYTHON, "-c", "import ml_platform.definitions"],
    "ml-platform --help": [CLI, "--help"],
}


def compare(repeats: int, echo=print) -> dict[str, Series]:
    def report(label, round_, sample):
        echo(f"  round {round_ + 1}  {label:<30} {sample.wall_s:6.2f} s wall {sample.cpu_s:6.2f} s cpu")

    return alternate({label: (lambda c=command: measure(c)) for label, command in COMMANDS.items()}, repeats, report)
