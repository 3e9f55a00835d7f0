"""Finding models through workspace.yaml: every team's location, by YAML or Python, and no name twice."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
import yaml

from ml_platform.discovery import code_locations, declared_models, get_model, get_spec
from ml_platform.errors import DeclarationError
from ml_platform.scaffold import new_model, register_location
from ml_platform_tests.models import IRIS

_packages = itertools.count()


def team(root: Path, *declared: dict) -> str:
    """A team package under ``root/<package>/src`` whose ``defs/`` declares ``declared`` in YAML; its package name."""
    package = f"discovery_team_{os.getpid()}_{next(_packages)}"
    defs = root / package / "src" / package / "defs"
    defs.mkdir(parents=True)
    (defs.parent / "__init__.py").write_text("")
    (defs / "__init__.py").write_text("")
    for attributes in declared:
        (defs / attributes["name"]).mkdir()
        document = {"type": "ml_platform.MLModel", "attributes": attributes}
        (defs / attributes["name"] / "defs.yaml").write_text(yaml.safe_dump(document))
    register_location(root / "workspace.yaml", package, package)
    return package


def iris_named(name: str) -> dict:
    return IRIS.model_copy(update={"name": name}).model_dump(mode="json")


def test_the_shipped_workspace_has_one_location_per_team_and_finds_both_routes():
    assert [(location.name, location.module) for location in code_locations()] == [
        ("botany", "botany.definitions"),
        ("growth", "growth.definitions"),
    ]
    models = declared_models()
    assert (models["iris"].location, models["iris"].source.name) == ("botany", "defs.yaml")
    assert (models["conversion"].location, models["conversion"].source.name) == ("growth", "conversion.py")
    assert models["iris"].project.name == "botany" and (models["iris"].project / "pyproject.toml").is_file()


def test_models_of_several_teams_are_found_by_name(tmp_path):
    first = team(tmp_path, iris_named("leaves"), iris_named("petals"))
    second = team(tmp_path, iris_named("roots"))
    workspace = tmp_path / "workspace.yaml"
    found = declared_models(workspace)
    assert {name: model.location for name, model in found.items()} == {
        "leaves": first,
        "petals": first,
        "roots": second,
    }
    assert get_spec("roots", workspace).label == "species"


def test_two_teams_declaring_one_name_is_an_error_naming_both_locations(tmp_path):
    first = team(tmp_path, iris_named("shared-name"))
    second = team(tmp_path, iris_named("shared-name"))
    with pytest.raises(DeclarationError) as raised:
        declared_models(tmp_path / "workspace.yaml")
    message = str(raised.value)
    assert "model 'shared-name' is declared twice" in message
    assert f"code location {first!r}" in message and f"code location {second!r}" in message
    assert str(tmp_path / first) in message and str(tmp_path / second) in message


def test_an_unknown_model_lists_the_declared_ones():
    with pytest.raises(
        ValueError, match=r"no model named 'nope' is declared; declared models: \['conversion', 'iris'\]"
    ):
        get_model("nope")


def test_a_location_whose_package_is_missing_is_named(tmp_path):
    register_location(tmp_path / "workspace.yaml", "no_such_team_package", "teams/no_such_team_package")
    with pytest.raises(DeclarationError, match="code location 'no_such_team_package': package 'no_such_team_package'"):
        declared_models(tmp_path / "workspace.yaml")


def test_a_missing_workspace_file_is_named(tmp_path):
    with pytest.raises(DeclarationError, match="no workspace file"):
        declared_models(tmp_path / "workspace.yaml")


def test_new_model_refuses_a_name_another_team_declares(tmp_path):
    owner = team(tmp_path, iris_named("taken"))
    with pytest.raises(DeclarationError, match=f"code location {owner!r} declares that model already"):
        new_model("taken", "newcomers", root=tmp_path)
    assert not (tmp_path / "teams" / "newcomers").exists()


@pytest.mark.parametrize(
    ("name", "team_name", "expected"),
    [
        ("Churn", "acme", "model name 'Churn' is not allowed"),
        ("churn", "Acme-Co", "team name 'Acme-Co' is not allowed"),
        ("9lives", "acme", "must start with a letter"),
    ],
)
def test_new_model_refuses_names_that_cannot_become_packages(tmp_path, name, team_name, expected):
    (tmp_path / "workspace.yaml").write_text("load_from: []\n")
    with pytest.raises(ValueError, match=expected):
        new_model(name, team_name, root=tmp_path)
    assert not (tmp_path / "teams").exists()


def test_register_location_keeps_comments_and_entries(tmp_path):
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text("# teams\nload_from:\n  - python_module:\n      module_name: a.definitions\n")
    register_location(workspace, "b", "teams/b")
    text = workspace.read_text()
    assert text.startswith("# teams\n")
    assert [entry["python_module"]["module_name"] for entry in yaml.safe_load(text)["load_from"]] == [
        "a.definitions",
        "b.definitions",
    ]
