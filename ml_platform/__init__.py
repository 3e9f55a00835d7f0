"""ml_platform: a model's lifecycle as gated Dagster assets, with an MLflow registry.

Importing this package is cheap on purpose: Dagster's code server, the webserver and the CLI import it
on every start, so nothing here touches MLflow, scikit-learn, the disk or the network. What a team
uses (``MLModel``, ``model_definitions``, ``ModelSpec`` and its parts) is imported on first use.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

__version__ = "0.1.0"

# MLflow 3 starts a telemetry thread when it is imported. Where its call home fails (no internet, as on a
# locked-down cluster or this project's CI) the thread removes _MLFLOW_TELEMETRY_SESSION_ID from os.environ
# while request threads read it: a registry call of a training run failed with KeyError
# '_MLFLOW_TELEMETRY_SESSION_ID' in the fault-injection campaign (docs/reliability.md). A platform's runs
# should not phone home anyway; a user who wants it sets MLFLOW_DISABLE_TELEMETRY=false.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

_PUBLIC = {
    "MLModel": "ml_platform.components.model",
    "model_definitions": "ml_platform.components.model",
    "one_sensor_per_kind": "ml_platform.defs.location_sensors",
    **dict.fromkeys(
        ("ModelSpec", "PromotionPolicy", "Split", "Segments", "Freshness", "Monitoring", "Compute", "DemoData"),
        "ml_platform.rules.spec",
    ),
}


def __getattr__(name: str) -> Any:
    """``ml_platform.MLModel`` (the component type a team's ``defs.yaml`` names) without importing Dagster early."""
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'ml_platform' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The lazy public names too: ``dg`` lists a registry module's component types with ``dir()``."""
    return sorted([*globals(), *_PUBLIC])
