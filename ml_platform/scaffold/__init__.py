"""``ml-platform new-model``: a new model's skeleton in its team's project, passing its own tests at once.

The skeleton is the declaration (``defs/<model>/defs.yaml``), a pandera contract, a scikit-learn pipeline,
a seeded demo-data generator, a pytest that runs the gates passing and failing, and the model's CI
workflow rendered from the team template. A new team also gets its project (``pyproject.toml``, package,
code location) and its entry in ``workspace.yaml``, so ``ml-platform demo-data`` and ``run`` find the
model with no other edit. Nothing under ``ml_platform/`` changes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template

from ml_platform.rules.spec import validate_model_name

DEMO_ROWS = 3_000  # the skeleton's CI runs on its seeded demo data until real data lands on the platform
TEAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
TEMPLATES = Path(__file__).parent
TEAM_FILES = {
    "team/pyproject.toml.tmpl": "pyproject.toml",
    "team/__init__.py.tmpl": "src/{team}/__init__.py",
    "team/definitions.py.tmpl": "src/{team}/definitions.py",
    "team/defs__init__.py.tmpl": "src/{team}/defs/__init__.py",
}
MODEL_FILES = {
    "model/defs.yaml.tmpl": "src/{team}/defs/{name}/defs.yaml",
    "model/__init__.py.tmpl": "src/{team}/{package}/__init__.py",
    "model/contract.py.tmpl": "src/{team}/{package}/contract.py",
    "model/pipeline.py.tmpl": "src/{team}/{package}/pipeline.py",
    "model/demo_data.py.tmpl": "src/{team}/{package}/demo_data.py",
    "model/test_model.py.tmpl": "tests/test_{package}.py",
}


@dataclass(frozen=True)
class Scaffolded:
    """What ``new_model`` wrote, and whether it registered a new code location."""

    files: tuple[Path, ...]
    new_team: bool
    workspace: Path


def new_model(name: str, team: str, root: Path | None = None, workspace: Path | None = None) -> Scaffolded:
    """Write the skeleton of model ``name`` into ``<root>/teams/<team>/`` (``root``: the project's)."""
    from ml_platform.settings import PROJECT_ROOT

    root = (root or PROJECT_ROOT).resolve()
    workspace = workspace or root / "workspace.yaml"
    values = _values(name, team)
    _refuse_a_declared_name(name, workspace)
    project = root / "teams" / team
    new_team = not (project / "pyproject.toml").exists()
    planned = {**(TEAM_FILES if new_team else {}), **MODEL_FILES}
    targets = {template: project / target.format(**values) for template, target in planned.items()}
    existing = [str(path) for path in targets.values() if path.exists()]
    if existing:
        raise ValueError(f"new-model {name!r}: these files exist already, nothing was written: {existing[:5]}")
    for template, target in targets.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(Template((TEMPLATES / template).read_text()).substitute(values))
    written = list(targets.values())
    written.append(_write_workflow(root, name, project.relative_to(root).as_posix(), f"{team}.definitions"))
    if new_team:
        register_location(workspace, team, project.relative_to(workspace.parent).as_posix())
    return Scaffolded(tuple(written), new_team, workspace)


def _values(name: str, team: str) -> dict[str, str]:
    validate_model_name(name)
    if not TEAM_NAME.fullmatch(team):
        raise ValueError(
            f"team name {team!r} is not allowed: it becomes a Python package, so use 1-40 lowercase letters, "
            "digits or '_', starting with a letter, e.g. 'growth'"
        )
    package = name.replace("-", "_")
    if not package.isidentifier():
        raise ValueError(f"model name {name!r} must start with a letter to become a Python package ({package!r})")
    model_class = "".join(part.capitalize() for part in package.split("_"))
    return {"name": name, "team": team, "package": package, "Model": model_class}


def _refuse_a_declared_name(name: str, workspace: Path) -> None:
    from ml_platform.discovery import declared_models
    from ml_platform.errors import DeclarationError

    declared = declared_models(workspace) if workspace.is_file() else {}
    if name in declared:
        other = declared[name]
        raise DeclarationError(
            f"new-model {name!r}: code location {other.location!r} declares that model already ({other.source}); "
            "model names are unique across the workspace: choose another name"
        )


def _write_workflow(root: Path, name: str, team_path: str, team_module: str) -> Path:
    from ml_platform.cli.commands.stages import render_workflow

    target = root / ".github" / "workflows" / f"model-{name}.yml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_workflow(name, demo_rows=DEMO_ROWS, team_path=team_path, team_module=team_module))
    return target


def register_location(workspace: Path, team: str, project: str) -> None:
    """Add the team's code location to ``workspace.yaml``, keeping the file's comments and other entries."""
    import yaml

    entry = (
        f"  - python_module:\n      module_name: {team}.definitions\n"
        f"      working_directory: {project}/src\n      location_name: {team}\n"
    )
    text = workspace.read_text() if workspace.exists() else ""
    loaded = (yaml.safe_load(text) or {}) if text else {}
    if loaded.get("load_from"):
        workspace.write_text(text.rstrip("\n") + "\n" + entry)
    else:
        kept = "".join(line for line in text.splitlines(keepends=True) if line.lstrip().startswith("#"))
        workspace.write_text(kept + "load_from:\n" + entry)
