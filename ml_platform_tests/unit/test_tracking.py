"""What logging a candidate says to a newcomer: none of MLflow's warnings the platform knows to be harmless,
and every other one still."""

from __future__ import annotations

import logging
import warnings

import pandas as pd
import pytest

from ml_platform.stores import tracking


def test_the_snapshot_is_an_explicit_local_source_without_mlflows_guess(tmp_path):
    path = str(tmp_path / "data.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        source = tracking._local_file_source(path)
    assert source._get_source_type() == "local" and source.to_dict() == {"uri": path}


def test_a_bare_path_is_what_made_mlflow_warn(tmp_path):
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    with pytest.warns(UserWarning, match="can be interpreted in multiple ways"):
        assert (
            resolve_dataset_source(str(tmp_path / "data.parquet")).to_dict()
            == tracking._local_file_source(str(tmp_path / "data.parquet")).to_dict()
        )


def test_the_signature_keeps_integer_columns_as_integers_without_the_hint():
    frame = pd.DataFrame({"pages_viewed": [1, 2], "price": [1.5, 2.5], "converted": [0, 1]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        signature = tracking._signature(frame)
    assert {c.name: c.type.name for c in signature.inputs.inputs} == {
        "pages_viewed": "long",
        "price": "double",
        "converted": "long",
    }
    from mlflow.models import infer_signature

    with pytest.warns(UserWarning, match="Inferred schema contains integer column"):  # what MLflow alone says
        assert infer_signature(frame) == signature


def test_only_the_pip_version_notice_is_dropped_and_only_during_the_call(caplog):
    logger = logging.getLogger("mlflow.utils.environment")
    pip = "Failed to resolve installed pip version. ``pip`` will be added to conda.yaml environment spec"
    with caplog.at_level(logging.WARNING, logger=logger.name):
        with tracking._without_pip_version_notice():
            logger.warning(pip)
            logger.warning("another environment warning")
        logger.warning(pip)
    assert [r.getMessage() for r in caplog.records] == ["another environment warning", pip]


@pytest.mark.parametrize(("setting", "client_started"), [(None, False), ("false", True)])
def test_mlflow_telemetry_is_off_after_the_platform_is_imported_unless_the_user_turns_it_on(setting, client_started):
    """Its thread raced request threads over os.environ (a KeyError in a campaign run); a fresh interpreter
    outside CI, as `ml-platform run` is, since MLflow turns telemetry off by itself under CI and pytest."""
    import os
    import subprocess
    import sys

    from ml_platform.settings import PROJECT_ROOT

    ci_markers = ("PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK")
    environment = {k: v for k, v in os.environ.items() if k not in ci_markers}
    if setting is not None:
        environment["MLFLOW_DISABLE_TELEMETRY"] = setting
    probe = (
        "import ml_platform, mlflow\n"
        "from mlflow.telemetry.client import get_telemetry_client\n"
        "print(get_telemetry_client() is not None)"
    )
    found = subprocess.run([sys.executable, "-c", probe], env=environment, cwd=PROJECT_ROOT, capture_output=True,
                           text=True, timeout=120, check=True)  # fmt: skip
    assert found.stdout.strip().splitlines()[-1] == str(client_started), found.stderr[-2000:]
