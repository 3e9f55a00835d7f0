"""What loading the definitions and starting the CLI import: facts about ``sys.modules``, not timings.

``dagster dev``, every code-server reload and every run worker load ``ml_platform.definitions``; the
heavy libraries (MLflow, scikit-learn, pandera, matplotlib, pandas) belong inside step bodies. Each
check runs in a fresh interpreter, because this test process has long since imported all of them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ml_platform.models import SPECS
from ml_platform.rules import policy, spec

HEAVY = ("mlflow", "sklearn", "pandera", "matplotlib", "pandas", "numpy", "scipy", "pyarrow")


def imported_after(code: str, watched: tuple[str, ...] = HEAVY) -> list[str]:
    """Which of the ``watched`` top-level packages a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    loaded = set(json.loads(completed.stdout.strip().splitlines()[-1]))
    return sorted(loaded & set(watched))


def test_loading_the_definitions_imports_no_heavy_library():
    loaded = imported_after("import ml_platform.definitions")
    assert loaded == [], (
        f"importing ml_platform.definitions imported {loaded}: move those imports into the step bodies "
        "(`python -X importtime -c 'import ml_platform.definitions'` shows who imports them)"
    )


def test_the_probe_sees_a_heavy_import():
    assert "pandas" in imported_after("import ml_platform.definitions\nimport pandas")


def test_cli_help_imports_neither_dagster_nor_a_heavy_library():
    code = "import contextlib, io\nfrom ml_platform.cli import main\n"
    code += "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n    main(['--help'])"
    assert imported_after(code, ("dagster", *HEAVY)) == []


@pytest.mark.parametrize("model", SPECS, ids=lambda s: s.name)
def test_load_time_gate_names_match_the_policy(model):
    without_floor = model.model_copy(update={"policy": model.policy.model_copy(update={"min_segment_f1": None})})
    for declared in (model, without_floor):
        assert spec.model_gate_names(declared) == policy.model_gate_names(declared)
    assert spec.MODEL_GATES == policy.MODEL_GATES
