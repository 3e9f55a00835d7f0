"""Fixtures and assertions shared by the reliability fault suite.

Every fault test ends by checking the platform's three promises with ``assert_promises``:

1. no data lost: the landing files are untouched, every snapshot and feature frame under the home
   still matches its manifest's hash, and nothing half-written is visible (no ``.tmp-`` folder);
2. no gate bypassed: every registered version records every gate as passed;
3. ``champion`` only ever points at such a version, one that was not left aside
   (``ml_platform.not_promoted``), and the decision ledger's latest champion change names it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd
import pytest
from botany.iris.demo_data import generate as iris_rows

from ml_platform.stores.ledger import Ledger
from ml_platform.stores.registry import NOT_PROMOTED, Store, current_champion, gate_problems
from ml_platform.stores.snapshot import load_snapshot
from ml_platform_tests.harness import Platform


@pytest.fixture
def iris_frame() -> pd.DataFrame:
    """The 150 bundled flowers: the smallest data that passes every iris gate."""
    return iris_rows()


def registered_versions(store: Store, model: str) -> dict[str, dict[str, str]]:
    """Every registered version of ``model`` with its tags (empty when the model was never registered)."""
    client = store.client()
    found = client.search_model_versions(f"name = '{model}'")
    return {str(v.version): dict(v.tags) for v in found}


def file_hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def stored_ids(root: Path) -> list[str]:
    """The snapshot ids under a snapshot root (hidden staging or quarantine folders excluded)."""
    return sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []


def assert_promises(platform: Platform, landing_before: dict[str, str] | None = None) -> None:
    """The three promises, checked on the platform's real home, registry and ledger."""
    home, model = platform.paths.home, platform.spec.name
    if landing_before is not None:
        assert file_hashes(platform.landing) == landing_before, "a landing file changed or vanished"
    for root in (platform.paths.snapshots(model), platform.paths.features(model)):
        if not root.is_dir():
            continue
        half_written = [p.name for p in root.iterdir() if p.name.startswith(".tmp-")]
        assert not half_written, f"half-written snapshot folders are visible under {root}: {half_written}"
        for snapshot_id in stored_ids(root):
            load_snapshot(root, snapshot_id)  # raises if the data file no longer matches its manifest

    versions = registered_versions(platform.store, model)
    for version, tags in versions.items():
        assert gate_problems(tags) == [], f"version {version} was registered without every gate passed"
    champion = current_champion(platform.store, model)
    if champion is not None:
        assert gate_problems(champion.tags) == [], f"champion v{champion.version} has unpassed gates"
        assert NOT_PROMOTED not in champion.tags, f"champion v{champion.version} was left aside: {champion.tags}"
        changes = Ledger.for_home(home).query(model, ["promoted", "rolled-back"])
        assert changes, "the champion moved but the ledger records no promotion"
        assert changes[-1].version == champion.version, (
            f"the ledger's last champion change names v{changes[-1].version}, the registry says v{champion.version}"
        )


def gates_of(tags: dict[str, str]) -> dict[str, str]:
    return json.loads(tags.get("ml_platform.gates", "{}"))


HOLD_VARIABLE = "ML_PLATFORM_TEST_HOLD_DIR"
MODEL_VARIABLE = "ML_PLATFORM_TEST_MODEL"


def pipeline_that_waits(params: dict):
    """The iris pipeline, built only once ``<hold dir>/release`` exists when ``HOLD_VARIABLE`` is set.

    A team-owned pipeline reference is the platform's own extension point: through it a test holds a
    real ``candidate_model`` step mid-training (it writes ``<hold dir>/fitting`` first) without any
    hook in the platform's code.
    """
    import time

    from botany.iris.pipeline import build_pipeline

    hold = os.environ.get(HOLD_VARIABLE)
    if hold:
        (Path(hold) / "fitting").touch()
        while not (Path(hold) / "release").exists():
            time.sleep(0.05)
    return build_pipeline(params)


def held_iris_spec(name: str):
    from ml_platform_tests.models import IRIS

    return IRIS.model_copy(update={"name": name, "pipeline": f"{__name__}:pipeline_that_waits"})


def lifecycle_job():
    """The lifecycle job of the held iris model named by ``MODEL_VARIABLE``, on the environment's home and
    MLflow store: a module-level function, so ``dagster.reconstructable`` can rebuild it in any process."""
    import dagster as dg

    from ml_platform.defs.factory import model_definitions
    from ml_platform.defs.resources import default_resources
    from ml_platform.settings import PlatformPaths

    spec = held_iris_spec(os.environ[MODEL_VARIABLE])
    definitions = dg.Definitions.merge(
        model_definitions(spec),
        dg.Definitions(resources=default_resources(PlatformPaths.from_environment()), executor=dg.in_process_executor),
    )
    return definitions.resolve_job_def(f"{spec.dagster_name}_lifecycle")
