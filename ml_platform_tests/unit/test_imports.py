"""What loading the definitions and starting the CLI import: facts about ``sys.modules``, not timings.

``dagster dev``, every code-server reload and every run worker load ``ml_platform.definitions``; the
heavy libraries (MLflow, scikit-learn, pandera, matplotlib, pandas) belong inside step bodies. Each
check runs in a fresh interpreter, because this test process has long since imported all of them.
"""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import ml_platform.rules
from ml_platform.rules import policy, spec
from ml_platform_tests.models import SPECS

HEAVY = ("mlflow", "sklearn", "pandera", "matplotlib", "pandas", "numpy", "scipy", "pyarrow")
RULES = sorted(f"ml_platform.rules.{m.name}" for m in pkgutil.iter_modules(ml_platform.rules.__path__))
# The pure layer takes frames, specs and plain values: no Dagster (nor its integrations), no store, no wiring.
NOT_IN_RULES = ("ml_platform.stores", "ml_platform.defs", "ml_platform.cli", "ml_platform.definitions")


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


def modules_after(code: str) -> set[str]:
    """Every module a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True)
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def forbidden(modules) -> list[str]:
    """The modules among ``modules`` that the pure layer must not import."""
    return sorted(
        m
        for m in modules
        if m.partition(".")[0].startswith("dagster") or any(m == f or m.startswith(f"{f}.") for f in NOT_IN_RULES)
    )


def test_importing_every_rules_module_imports_no_dagster_store_or_wiring():
    assert len(RULES) >= 10, RULES  # the probe below really imports the package's modules
    loaded = modules_after("\n".join(f"import {module}" for module in RULES))
    assert set(RULES) <= loaded
    assert forbidden(loaded) == [], (
        f"importing ml_platform.rules imported {forbidden(loaded)}: the pure layer must not depend on Dagster, "
        "the stores or the wiring (`python -X importtime -c 'import ml_platform.rules.<module>'` shows who does)"
    )


def imports_in(path: Path) -> set[str]:
    """Every module a file imports, at module level or inside a function (imported lazily)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", RULES)
def test_no_rules_module_imports_dagster_or_a_store_even_inside_a_function(module):
    path = Path(ml_platform.rules.__path__[0]) / f"{module.rpartition('.')[2]}.py"
    assert forbidden(imports_in(path)) == []


def test_the_rules_probes_see_a_forbidden_import():
    assert "dagster" in forbidden(modules_after("import ml_platform.rules.spec\nimport dagster"))
    assert forbidden({"ml_platform.stores.registry", "ml_platform.rules.drift", "dagster_graphql", "pandas"}) == [
        "dagster_graphql",
        "ml_platform.stores.registry",
    ]
    conftest = Path(__file__).parents[1] / "sensors" / "conftest.py"  # imports dagster and the ledger store
    assert {"dagster", "ml_platform.stores.ledger"} <= set(forbidden(imports_in(conftest)))


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
