"""The platform's shape, checked as facts: short functions and no import cycle between its modules.

ruff's C901/PLR0912/PLR0915 (pyproject.toml) catch branchy and long functions by statements; this adds
the limit a reader feels — lines — and the import graph, which no linter here checks. Imports inside
functions count too: a cycle through a lazy import still ties two modules together.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ml_platform"
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, ast.Module]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = ast.parse(path.read_text(), filename=str(path))
    return modules


def _long_functions(modules: dict[str, ast.Module], limit: int) -> list[str]:
    found = []
    for name, tree in modules.items():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > limit:
                    found.append(f"{name}.{node.name} ({lines} lines)")
    return found


def _imports(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """The platform modules ``name`` imports, at module level or inside functions (not under TYPE_CHECKING)."""
    skipped = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {target for target in targets if target in known and target != name}
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph``, as the list of modules around it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                return stack[stack.index(imported) :] + [imported]
            if imported not in state and (found := visit(imported)):
                return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return None


def _graph(modules: dict[str, ast.Module]) -> dict[str, set[str]]:
    known = set(modules)
    # A package's __init__ is not a dependency of its own submodules' imports ("from ml_platform.cli import
    # ExitCode" inside a cli submodule names the package): drop edges from a module to its own ancestors.
    graph = {}
    for name, tree in modules.items():
        graph[name] = {m for m in _imports(name, tree, known) if not name.startswith(f"{m}.")}
    return graph


def test_no_function_in_the_platform_is_longer_than_a_screen():
    assert _long_functions(_modules(), MAX_FUNCTION_LINES) == []


def test_the_length_check_finds_a_long_function():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    tree = ast.parse(f"def long():\n{body}\n")
    assert _long_functions({"probe": tree}, MAX_FUNCTION_LINES) == [f"probe.long ({MAX_FUNCTION_LINES + 1} lines)"]


def test_no_import_cycle_between_platform_modules():
    cycle = _cycle(_graph(_modules()))
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ({"a": "import b", "b": "def f():\n    from a import x"}, ["a", "b", "a"]),
        ({"a": "import b", "b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a"}, None),
    ],
)
def test_the_cycle_check_sees_lazy_imports_and_skips_type_checking(sources, expected):
    modules = {name: ast.parse(source) for name, source in sources.items()}
    assert _cycle(_graph(modules)) == expected
