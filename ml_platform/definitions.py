"""Every model of the workspace in one set of definitions: for a single-location deployment and for tests.

``workspace.yaml`` gives each team its own code location (``teams/<team>/``); this module is the
alternative that serves them all from one process (the container image's default). Models are found
by ``ml_platform.discovery``, so it names none; each comes through ``ml_platform.model_definitions``,
which adds the resources and the in-process executor (see ``ml_platform/components/model.py``).

What the Dagster UI's global lineage page shows: each model as two asset groups. ``<model>`` holds
exactly the lifecycle job's four assets, so the group's "Materialize assets" launches one lifecycle
run. ``<model>_serving`` holds what happens to the model in service: ``batch_predictions`` (one
dynamic partition per scoring file, materialized by the scoring sensor), the ``decisions`` ledger and
``deployment``, the release moves of the online gate (both observed, never materialized). The page's
own "Materialize all (N)…" covers every model and every scoring batch, and the batches are
partitioned, so Dagster answers it with its partition dialog ("Launch backfill") rather than a run;
its trailing "…" says as much before the click.
"""

from collections.abc import Iterable

import dagster as dg

from ml_platform.components.model import model_definitions
from ml_platform.defs.location_sensors import one_sensor_per_kind
from ml_platform.discovery import all_specs
from ml_platform.rules.spec import ModelSpec
from ml_platform.settings import PlatformPaths


def build_definitions(paths: PlatformPaths | None = None, specs: Iterable[ModelSpec] | None = None) -> dg.Definitions:
    """``specs`` (default: every model in the workspace) on one platform home (default: the environment's), each
    trigger kind served by one sensor over all of them (``defs/location_sensors.py``)."""
    paths = paths or PlatformPaths.from_environment()
    chosen = all_specs() if specs is None else specs
    return one_sensor_per_kind(dg.Definitions.merge(*(model_definitions(spec, paths) for spec in chosen)))


defs = build_definitions()
