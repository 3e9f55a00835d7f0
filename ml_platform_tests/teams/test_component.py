"""ml_platform.MLModel: the YAML route and the Python route give the same definitions; bad YAML is named."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import dagster as dg
import pytest
import yaml

import ml_platform
from ml_platform.discovery import declared_models, load_declaration
from ml_platform.errors import DeclarationError
from ml_platform_tests.models import CONVERSION, IRIS

IRIS_YAML = declared_models()["iris"].source


def names(definitions: dg.Definitions) -> dict[str, list[str]]:
    """What a model's definitions declare, by kind: the things a user sees in the UI and `dg list defs`."""
    return {
        "assets": sorted(key.to_user_string() for key in definitions.resolve_asset_graph().get_all_asset_keys()),
        "checks": sorted(key.to_user_string() for key in definitions.resolve_asset_graph().asset_check_keys),
        "jobs": sorted(job.name for job in definitions.resolve_all_job_defs() if not job.name.startswith("__")),
        "sensors": sorted(sensor.name for sensor in definitions.sensors or ()),
        "schedules": sorted(schedule.name for schedule in definitions.schedules or ()),
        "resources": sorted(definitions.resources or {}),
    }


def chain(error: BaseException | None):
    """An exception and every exception it was raised from: Dagster wraps a component's error in its own."""
    while error is not None:
        yield error
        error = error.__cause__ or error.__context__


def write_declaration(folder: Path, attributes: dict) -> Path:
    path = folder / "defs.yaml"
    path.write_text(yaml.safe_dump({"type": "ml_platform.MLModel", "attributes": attributes}, sort_keys=False))
    return path


_projects = itertools.count()


def team_project(root: Path, monkeypatch, attributes: dict) -> tuple[Path, Path]:
    """A minimal dg project declaring one model in ``defs/model/defs.yaml``: (project folder, declaration)."""
    package = f"team_project_{os.getpid()}_{next(_projects)}"
    (root / "src" / package / "defs" / "model").mkdir(parents=True)
    (root / "src" / package / "__init__.py").write_text("")
    (root / "src" / package / "defs" / "__init__.py").write_text("")
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{package}"\n\n[tool.dg]\ndirectory_type = "project"\n\n'
        f'[tool.dg.project]\nroot_module = "{package}"\n'
    )
    monkeypatch.syspath_prepend(str(root / "src"))
    return root, write_declaration(root / "src" / package / "defs" / "model", attributes)


def test_the_yaml_route_and_the_python_route_build_the_same_definitions():
    import botany.definitions

    from_yaml = botany.definitions.defs()  # load_from_defs_folder, as `dg` and workspace.yaml load it
    # a code location serves each trigger kind as one sensor over its models (ml_platform.one_sensor_per_kind)
    from_python = ml_platform.one_sensor_per_kind(ml_platform.model_definitions(load_declaration(IRIS_YAML)))
    assert names(from_yaml) == names(from_python)
    assert "iris/registry_entry" in names(from_yaml)["assets"]
    assert "iris/dataset_snapshot:schema_holds" in names(from_yaml)["checks"]
    assert names(from_yaml)["jobs"] == ["iris_lifecycle"]
    assert names(from_yaml)["sensors"] == ["drift_sensor", "release_sensor", "scoring_sensor"]
    assert names(ml_platform.model_definitions(load_declaration(IRIS_YAML)))["sensors"] == [
        "iris_drift_sensor",
        "iris_release_sensor",
        "iris_scoring_sensor",
    ]


def test_the_component_and_from_spec_are_one_route():
    assert names(ml_platform.MLModel.from_spec(CONVERSION).build_defs()) == names(
        ml_platform.model_definitions(CONVERSION)
    )


def test_a_python_spec_written_as_yaml_declares_the_same_model(tmp_path, monkeypatch):
    """Every field, thresholds and durations included, survives the trip: YAML can say all that Python can."""
    project, path = team_project(tmp_path, monkeypatch, CONVERSION.model_dump(mode="json"))
    assert load_declaration(path) == CONVERSION
    from_yaml = dg.load_from_defs_folder(path_within_project=project)
    assert names(from_yaml) == names(ml_platform.model_definitions(CONVERSION))


def test_two_models_in_one_code_location_share_the_platform_resources():
    second = IRIS.model_copy(update={"name": "iris-two"})
    merged = dg.Definitions.merge(ml_platform.model_definitions(IRIS), ml_platform.model_definitions(second))
    assert names(merged)["jobs"] == ["iris_lifecycle", "iris_two_lifecycle"]


def test_a_bad_metric_name_names_the_file_the_field_the_value_and_what_is_allowed(tmp_path):
    attributes = IRIS.model_dump(mode="json")
    attributes["policy"]["min_metrics"] = {"accuracy": 0.9, "f1": 0.9}
    path = write_declaration(tmp_path, attributes)
    with pytest.raises(DeclarationError) as raised:
        load_declaration(path)
    message = str(raised.value)
    assert str(path) in message
    assert "attributes.policy.min_metrics.f1 (a key)" in message
    assert "found 'f1'" in message
    assert "'accuracy', 'f1_weighted', 'f1_macro' or 'balanced_accuracy'" in message


def test_a_missing_field_and_a_misspelt_one_are_both_reported(tmp_path):
    attributes = IRIS.model_dump(mode="json")
    del attributes["label"]
    attributes["min_row"] = 10
    path = write_declaration(tmp_path, attributes)
    with pytest.raises(DeclarationError, match="2 problem") as raised:
        load_declaration(path)
    assert "attributes.label: required field is missing" in str(raised.value)
    assert "attributes.min_row: Extra inputs are not permitted (found 10)" in str(raised.value)


def test_dagster_loading_a_bad_declaration_names_the_file_line_field_and_allowed_values(tmp_path, monkeypatch):
    attributes = IRIS.model_dump(mode="json")
    attributes["policy"]["comparison_metric"] = "f1"
    project, path = team_project(tmp_path, monkeypatch, attributes)
    with pytest.raises(Exception) as raised:  # Dagster's own error type: what `dagster dev` and `dg` show
        dg.load_from_defs_folder(path_within_project=project)
    message = "\n".join(str(error) for error in chain(raised.value))
    assert f"{path}:" in message
    assert "attributes.policy.comparison_metric" in message
    assert "'f1'" in message and "'f1_weighted'" in message


def test_a_declaration_that_is_not_yaml_is_named(tmp_path):
    path = tmp_path / "defs.yaml"
    path.write_text("type: ml_platform.MLModel\nattributes: {name: [unclosed\n")
    with pytest.raises(DeclarationError, match=f"{path}: not valid YAML"):
        load_declaration(path)
