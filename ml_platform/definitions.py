"""The composition root: every declared model's definitions, the resources, and global policy.

In-process execution is the platform-wide default: the multiprocess executor starts a Python process
per step and re-imports pandas, scikit-learn and MLflow in each (seconds per step on two cores), and
steps of one model's graph run one after another anyway. One process also means one MLflow SQLite
migration, never two racing.
"""

import dagster as dg

from ml_platform.defs.factory import model_definitions
from ml_platform.defs.monitoring import monitoring_definitions
from ml_platform.defs.resources import default_resources
from ml_platform.defs.scoring import scoring_definitions
from ml_platform.defs.triggers import trigger_definitions
from ml_platform.models import SPECS
from ml_platform.settings import PlatformPaths


def build_definitions(paths: PlatformPaths | None = None) -> dg.Definitions:
    """All models on one platform home (default: the one the environment names)."""
    return dg.Definitions.merge(
        *(model_definitions(spec) for spec in SPECS),
        *(monitoring_definitions(spec) for spec in SPECS),
        *(trigger_definitions(spec) for spec in SPECS),
        *(scoring_definitions(spec) for spec in SPECS),
        dg.Definitions(resources=default_resources(paths), executor=dg.in_process_executor),
    )


defs = build_definitions()
