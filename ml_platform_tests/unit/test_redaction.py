"""Store addresses printed to a terminal or log never carry a password."""

import pytest

from ml_platform.settings import redacted


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        (
            "postgresql+psycopg2://mlp:s3cr3t@127.0.0.1:5432/db?options=-csearch_path%3Dmlflow",
            "postgresql+psycopg2://mlp:***@127.0.0.1:5432/db?options=-csearch_path%3Dmlflow",
        ),
        ("http://user:p%40ss@mlflow.internal:5000", "http://user:***@mlflow.internal:5000"),
        ("sqlite:////tmp/home/mlflow.db", "sqlite:////tmp/home/mlflow.db"),
        ("postgresql://mlp@127.0.0.1/db", "postgresql://mlp@127.0.0.1/db"),
    ],
)
def test_passwords_are_masked_and_nothing_else_changes(uri, shown):
    assert redacted(uri) == shown
    assert "s3cr3t" not in redacted(uri) and "p%40ss" not in redacted(uri)
