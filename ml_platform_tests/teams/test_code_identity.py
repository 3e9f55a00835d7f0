"""A model's code identity covers what it runs, not the repository: one team's change never re-versions another's."""

from __future__ import annotations

import itertools
import os
import shutil

import pytest

from ml_platform.discovery import declared_models
from ml_platform.stores.lineage import candidate_fingerprint, model_code_identity
from ml_platform_tests.models import IRIS

_copies = itertools.count()


@pytest.fixture
def two_teams(tmp_path, monkeypatch):
    """Copies of the botany and growth packages under fresh names: files a test may change (and uncommit)."""
    names = {}
    for team, model in (("botany", "iris"), ("growth", "conversion")):
        source = declared_models()[model].project / "src" / team
        copy = f"{team}_copy_{os.getpid()}_{next(_copies)}"
        shutil.copytree(source, tmp_path / copy)
        names[team] = copy
    monkeypatch.syspath_prepend(str(tmp_path))
    iris = IRIS.model_copy(
        update={
            field: getattr(IRIS, field).replace("botany.", f"{names['botany']}.")
            for field in ("contract", "feature_contract", "pipeline")
        }
    )
    return tmp_path, names, iris


def test_another_teams_uncommitted_change_leaves_the_identity_alone(two_teams):
    root, names, iris = two_teams
    before = model_code_identity(iris)
    pipeline = root / names["growth"] / "conversion" / "pipeline.py"
    pipeline.write_text(pipeline.read_text() + "\nLEARNING_RATE = 0.5\n")
    (root / names["growth"] / "conversion" / "new_feature.py").write_text("WINDOW = 7\n")
    assert model_code_identity(iris) == before
    assert candidate_fingerprint("snap", model_code_identity(iris), iris.params_digest()) == candidate_fingerprint(
        "snap", before, iris.params_digest()
    )


@pytest.mark.parametrize("module", ["pipeline", "contract"])
def test_a_change_to_the_models_own_pipeline_or_contract_changes_it(two_teams, module):
    root, names, iris = two_teams
    before = model_code_identity(iris)
    source = root / names["botany"] / "iris" / f"{module}.py"
    source.write_text(source.read_text() + "\n# a reviewed change\n")
    assert model_code_identity(iris) != before


def test_a_change_to_the_declaration_changes_it():
    described = IRIS.model_copy(update={"min_rows": IRIS.min_rows + 1})
    assert model_code_identity(described) != model_code_identity(IRIS)


def test_the_git_state_is_not_part_of_it(monkeypatch):
    before = model_code_identity(IRIS)
    monkeypatch.setenv("ML_PLATFORM_CODE_VERSION", "some-other-commit")
    assert model_code_identity(IRIS) == before


def test_a_reference_to_a_module_without_a_source_file_is_refused():
    broken = IRIS.model_copy(update={"pipeline": "botany.no_such_module:build_pipeline"})
    with pytest.raises(ImportError, match="'botany.no_such_module' named by the model's spec has no source file"):
        model_code_identity(broken)
