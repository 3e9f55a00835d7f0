"""Finding every model in the workspace, whichever team's code location declares it (platform-owned).

``workspace.yaml`` lists one code location per team. A location's models are found without building its
Dagster definitions: each ``defs.yaml`` under its package's ``defs/`` folder whose ``type`` is
``ml_platform.MLModel`` is read as a ``ModelSpec`` (YAML and pydantic only), and each Python module there
is imported for the ``ModelSpec`` objects it holds (the Python route: ``model_definitions(SPEC)``).
The CLI, the demo and the CI stage commands all ask here, so a new team's model needs no platform edit.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ml_platform.errors import DeclarationError
from ml_platform.rules.spec import ModelSpec
from ml_platform.settings import PROJECT_ROOT

COMPONENT_TYPES = frozenset(
    {"ml_platform.MLModel", "ml_platform.components.MLModel", "ml_platform.components.model.MLModel"}
)
DECLARATION_FILES = ("defs.yaml", "defs.yml", "component.yaml")


@dataclass(frozen=True)
class CodeLocation:
    """One ``python_module`` entry of ``workspace.yaml``."""

    name: str
    module: str
    working_directory: Path | None


@dataclass(frozen=True)
class DeclaredModel:
    """A model, the code location that declares it and the file it is declared in."""

    spec: ModelSpec
    location: str
    source: Path
    module: str = ""

    @property
    def project(self) -> Path:
        """The team project's folder: the nearest one above the declaration with a ``pyproject.toml``."""
        return next((p for p in self.source.parents if (p / "pyproject.toml").is_file()), self.source.parent)


def workspace_file() -> Path:
    """``$ML_PLATFORM_WORKSPACE``, or the project's ``workspace.yaml``."""
    return Path(os.environ.get("ML_PLATFORM_WORKSPACE", PROJECT_ROOT / "workspace.yaml")).expanduser().resolve()


def code_locations(workspace: Path | None = None) -> list[CodeLocation]:
    """The ``python_module`` code locations a workspace file lists (other kinds declare no platform model)."""
    import yaml

    workspace = workspace or workspace_file()
    if not workspace.is_file():
        raise DeclarationError(f"{workspace}: no workspace file; it lists each team's code location")
    entries = (yaml.safe_load(workspace.read_text()) or {}).get("load_from") or []
    locations = []
    for entry in entries:
        target = entry.get("python_module") if isinstance(entry, dict) else None
        if target is None:
            continue
        if isinstance(target, str):
            target = {"module_name": target}
        folder = target.get("working_directory")
        locations.append(
            CodeLocation(
                name=target.get("location_name") or target["module_name"],
                module=target["module_name"],
                working_directory=(workspace.parent / folder).resolve() if folder else None,
            )
        )
    return locations


def declared_models(workspace: Path | None = None) -> dict[str, DeclaredModel]:
    """Every model of every code location, by name; a name declared twice is an error naming both places."""
    found: dict[str, DeclaredModel] = {}
    for location in code_locations(workspace):
        for model in models_of(location):
            other = found.get(model.spec.name)
            if other is not None and other.source != model.source:
                raise DeclarationError(
                    f"model {model.spec.name!r} is declared twice: in code location {other.location!r} "
                    f"({other.source}) and in code location {model.location!r} ({model.source}); "
                    "model names are unique across the workspace: rename one of them"
                )
            found[model.spec.name] = model
    return found


def all_specs(workspace: Path | None = None) -> tuple[ModelSpec, ...]:
    return tuple(model.spec for model in declared_models(workspace).values())


def get_spec(name: str, workspace: Path | None = None) -> ModelSpec:
    """The spec of a declared model, or a ValueError that lists the declared ones."""
    return get_model(name, workspace).spec


def get_model(name: str, workspace: Path | None = None) -> DeclaredModel:
    """A declared model with its code location, or a ValueError that lists the declared ones."""
    models = declared_models(workspace)
    if name not in models:
        raise ValueError(f"no model named {name!r} is declared; declared models: {sorted(models)}")
    return models[name]


def models_of(location: CodeLocation) -> list[DeclaredModel]:
    """The models one code location declares, from its ``defs/`` folder, in file order."""
    if location.working_directory is not None and str(location.working_directory) not in sys.path:
        sys.path.insert(0, str(location.working_directory))  # as Dagster does for the same entry
    root = location.module.split(".")[0]
    try:
        package = importlib.util.find_spec(root)
    except ImportError as error:
        raise DeclarationError(f"code location {location.name!r}: module {location.module!r}: {error}") from error
    if package is None or not package.submodule_search_locations:
        raise DeclarationError(
            f"code location {location.name!r}: package {root!r} of module {location.module!r} is not importable "
            f"(working directory: {location.working_directory}); is the team's project installed?"
        )
    defs_folder = Path(next(iter(package.submodule_search_locations))) / "defs"
    found = _yaml_declarations(defs_folder) + _python_declarations(defs_folder, root)
    return [DeclaredModel(spec, location.name, path, location.module) for path, spec in found]


def _yaml_declarations(defs_folder: Path) -> list[tuple[Path, ModelSpec]]:
    files = sorted(p for name in DECLARATION_FILES for p in defs_folder.rglob(name))
    return [(path, spec) for path in files for spec in load_declarations(path)]


def _python_declarations(defs_folder: Path, root: str) -> list[tuple[Path, ModelSpec]]:
    found: list[tuple[Path, ModelSpec]] = []
    for path in sorted(defs_folder.rglob("*.py")):
        parts = path.relative_to(defs_folder.parent).with_suffix("").parts
        module = importlib.import_module(".".join((root, *(p for p in parts if p != "__init__"))))
        seen = {id(spec) for _, spec in found}
        found += [(path, v) for v in vars(module).values() if isinstance(v, ModelSpec) and id(v) not in seen]
    return found


def load_declarations(path: Path) -> list[ModelSpec]:
    """The ``ml_platform.MLModel`` declarations in one YAML file (other component types are skipped)."""
    import yaml

    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as error:
        raise DeclarationError(f"{path}: not valid YAML: {error}") from error
    return [_spec_from(path, doc) for doc in documents if isinstance(doc, dict) and doc.get("type") in COMPONENT_TYPES]


def load_declaration(path: Path) -> ModelSpec:
    """The one model a ``defs.yaml`` declares."""
    specs = load_declarations(path)
    if len(specs) != 1:
        raise DeclarationError(f"{path}: expected one ml_platform.MLModel declaration, found {len(specs)}")
    return specs[0]


def _spec_from(path: Path, document: dict) -> ModelSpec:
    try:
        return ModelSpec.model_validate(document.get("attributes") or {})
    except ValidationError as error:
        raise DeclarationError(describe_errors(path, error)) from None


def describe_errors(path: Path, error: ValidationError) -> str:
    """Each problem of a declaration on its own line: the field, the value found and what is allowed."""
    lines = [f"{path}: the ml_platform.MLModel declaration is invalid ({error.error_count()} problem(s)):"]
    for problem in error.errors():
        field = ".".join(["attributes", *(str(part) for part in problem["loc"])]).replace(".[key]", " (a key)")
        if problem["type"] == "missing":
            lines.append(f"  {field}: required field is missing")
            continue
        lines.append(f"  {field}: {problem['msg']} (found {problem.get('input')!r})")
    return "\n".join(lines)
