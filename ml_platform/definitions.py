"""The composition root: every declared model's definitions, the resources, and global policy.

In-process execution is the platform-wide default: the multiprocess executor starts a Python process
per step and re-imports pandas, scikit-learn and MLflow in each (seconds per step on two cores), and
steps of one model's graph run one after another anyway. One process also means one MLflow SQLite
migration, never two racing.

What the Dagster UI's global lineage page shows: each model as two asset groups. ``<model>`` holds
exactly the lifecycle job's four assets, so the group's "Materialize assets" launches one lifecycle
run. ``<model>_serving`` holds what happens to the model in service: ``batch_predictions`` (one
dynamic partition per scoring file, materialized by the scoring sensor), the ``decisions`` ledger and
``deployment``, the release moves of the online gate (both observed, never materialized). The page's
own "Materialize all (N)…" covers every model and every scoring batch, and the batches are
partitioned, so Dagster answers it with its partition dialog ("Launch backfill") rather than a run;
its trailing "…" says as much before the click.
"""

import dagster as dg

from ml_platform.defs.decisions import decisions_definitions
from ml_platform.defs.factory import model_definitions
from ml_platform.defs.release import release_definitions
from ml_platform.defs.resources import default_resources
from ml_platform.defs.scoring import scoring_definitions
from ml_platform.defs.triggers import trigger_definitions
from ml_platform.models import SPECS
from ml_platform.settings import PlatformPaths


def build_definitions(paths: PlatformPaths | None = None) -> dg.Definitions:
    """All models on one platform home (default: the one the environment names)."""
    return dg.Definitions.merge(
        *(model_definitions(spec) for spec in SPECS),
        *(decisions_definitions(spec) for spec in SPECS),
        *(trigger_definitions(spec) for spec in SPECS),
        *(scoring_definitions(spec) for spec in SPECS),
        *(release_definitions(spec) for spec in SPECS),
        dg.Definitions(resources=default_resources(paths), executor=dg.in_process_executor),
    )


defs = build_definitions()
