"""Releases on a real registry and a real Dagster instance: a gated iris champion, a good and a degraded version.

The package trains one iris champion through the platform's graph (version 1, every gate passed), then
registers two more versions through the registry's own ``register_candidate`` with the gate tags the
graph writes: version 2 is the same pipeline with another seed (a good canary), version 3 a pipeline
fitted on shuffled labels (a degraded canary that the offline gates would have stopped, registered as
if they had not, so that only the online gate stands between it and production).

Until the online server writes the inference log, ``Traffic`` writes it the way the release contract
says: ``rules.performance.inference_log_frame`` plus ``cohort``, ``request_id``, ``latency_ms`` and
``status``, each file once, through a hidden partial file and ``os.link``. Predictions are the real
models' on real iris-like rows; latencies are drawn (no test asserts on time).
"""

from __future__ import annotations

import hashlib
import itertools
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from botany.iris.demo_data import generate

from ml_platform.defs.decisions import decisions_definitions
from ml_platform.defs.release import release_definitions
from ml_platform.defs.scoring import load_model, logged_columns
from ml_platform.keys import CANARY, PREVIOUS_PRODUCTION, PRODUCTION, RELEASE_STARTED_AT_TAG
from ml_platform.rules.performance import inference_log_frame
from ml_platform.rules.release import COHORT, HTTP_STATUS, LATENCY_MS, REQUEST_ID, STATUS
from ml_platform.rules.spec import ModelSpec, Release, resolve_ref
from ml_platform.settings import PlatformPaths
from ml_platform.stores.ledger import Ledger
from ml_platform.stores.registry import Store, register_candidate
from ml_platform.stores.release import ActiveRelease, active_release, alias_version
from ml_platform_tests.harness import Platform, failure_messages, unique_spec
from ml_platform_tests.models import IRIS

RELEASE = Release(min_requests=100, min_feedback_rows=100, window=timedelta(minutes=10), canary_percent=50.0)
_files = itertools.count()


@dataclass(frozen=True)
class Registered:
    spec: ModelSpec
    store: Store
    good: str
    degraded: str


def register(spec: ModelSpec, store: Store, frame: pd.DataFrame, random_state: int, note: str, verdict="passed") -> str:
    """Fit the spec's pipeline on ``frame``, log it and register it as the graph would, its gates ``verdict``."""
    import mlflow
    import mlflow.sklearn

    pipeline = resolve_ref(spec.pipeline)({**spec.params, "random_state": random_state})
    pipeline.fit(frame[list(spec.features)], frame[spec.label])
    mlflow.set_tracking_uri(store.tracking_uri)
    with mlflow.start_run(experiment_id=store.experiment_id(spec.name), run_name=note) as run:
        info = mlflow.sklearn.log_model(
            pipeline,
            name="model",
            skops_trusted_types=list(spec.skops_trusted_types) or None,
            pip_requirements=["scikit-learn"],
        )
    gates = {f"candidate_model:{name}": verdict for name in ("meets_absolute_minimums", "beats_trivial_baseline")}
    registration = register_candidate(
        store,
        spec.name,
        run.info.run_id,
        info.model_uri,
        hashlib.sha256(note.encode()).hexdigest(),
        "1",
        {"ml_platform.gates": gates, "ml_platform.compared_with_champion": "1", "ml_platform.note": note},
        promote=False,
    )
    return registration.version


@pytest.fixture(scope="package")
def registered(tmp_path_factory, mlflow_store) -> Registered:
    """Version 1 (champion, through the graph), 2 (good) and 3 (trained on shuffled labels)."""
    root = tmp_path_factory.mktemp("release")
    spec = unique_spec(IRIS, release=RELEASE)
    (root / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster")) as instance:
        platform = Platform(spec, PlatformPaths(root / "home"), instance, mlflow_store)
        platform.land(generate(150, seed=0), "flowers.csv")
        result = platform.materialize()
        assert result.success, failure_messages(result)
    frame = generate(600, seed=11)
    good = register(spec, mlflow_store, frame, 7, "good: the same pipeline, another seed")
    shuffled = frame.assign(species=frame["species"].sample(frac=1.0, random_state=0).to_numpy())
    degraded = register(spec, mlflow_store, shuffled, 7, "degraded: fitted on shuffled labels")
    return Registered(spec, mlflow_store, good, degraded)


@dataclass
class Releases:
    """One test's platform home and instance around the package's registered model."""

    spec: ModelSpec
    store: Store
    paths: PlatformPaths
    instance: dg.DagsterInstance
    good: str
    degraded: str

    @property
    def ledger(self) -> Ledger:
        return Ledger.for_home(self.paths.home)

    def alias(self, name: str) -> str | None:
        return alias_version(self.store, self.spec.name, name)

    def active(self) -> ActiveRelease | None:
        return active_release(self.store, self.spec.name)

    def definitions(self) -> dg.Definitions:
        platform = Platform(self.spec, self.paths, self.instance, self.store)
        return dg.Definitions.merge(
            release_definitions(self.spec),
            decisions_definitions(self.spec),
            dg.Definitions(resources=platform.resources()),
        )

    def tick(self):
        """One evaluation of the release sensor, as the daemon runs it."""
        defs = self.definitions()
        name = f"{self.spec.dagster_name}_release_sensor"
        with dg.build_sensor_context(
            instance=self.instance, definitions=defs, sensor_name=name, resources=defs.resources
        ) as context:
            return defs.resolve_sensor_def(name).evaluate_tick(context)

    def backdate(self, minutes: float) -> datetime:
        """Say the release in progress started ``minutes`` ago (the window then has elapsed, or not)."""
        active = self.active()
        started = datetime.now(UTC) - timedelta(minutes=minutes)
        self.store.client().set_model_version_tag(
            self.spec.name, active.version, RELEASE_STARTED_AT_TAG, started.isoformat(timespec="seconds")
        )
        return started

    def serve(
        self,
        requests: int,
        seed: int,
        at: datetime | None = None,
        canary_errors: int = 0,
        error_status: int | None = None,
    ) -> pd.DataFrame:
        """Requests as the server handles them, logged as it does; returns them with their labels, for feedback.

        A canary release routes each request by a hash of its id to the canary (its share) or production;
        a shadow release answers every request with production and lets the canary score each one too.
        ``canary_errors`` of the canary's requests fail, answered ``error_status`` when one is given.
        """
        active = self.active()
        frame = generate(requests, seed=seed)
        routed = np.array([int(hashlib.sha256(k.encode()).hexdigest(), 16) % 10_000 for k in frame["sample_id"]])
        to_canary = routed < active.percent * 100
        if active.mode == "shadow":
            cohorts = (
                ("production", active.production, np.ones(requests, bool)),
                ("shadow", active.version, np.ones(requests, bool)),
            )
        else:
            cohorts = (("production", active.production, ~to_canary), ("canary", active.version, to_canary))
        for cohort, version, mask in cohorts:
            rows = frame[mask].reset_index(drop=True)
            self._write(
                self._log(
                    rows,
                    cohort,
                    version,
                    pd.Timestamp(at or datetime.now(UTC)),
                    seed,
                    canary_errors if cohort != "production" else 0,
                    error_status,
                )
            )
        return frame

    def _log(
        self, rows: pd.DataFrame, cohort: str, version: str, at, seed: int, errors: int, status: int | None
    ) -> pd.DataFrame:
        predictions = load_model(self.store, self.spec.name, version).predict(rows[list(self.spec.features)])
        log = inference_log_frame(
            rows,
            logged_columns(self.spec),
            predictions,
            None,
            version=version,
            batch_file="online",
            batch_sha256="",
            scored_at=at,
        )
        log[COHORT] = cohort
        log[REQUEST_ID] = [f"req-{key}" for key in rows["sample_id"]]
        log[LATENCY_MS] = np.random.default_rng(seed).gamma(4.0, 2.5, len(log))
        failed = np.arange(len(log)) < errors
        log[STATUS] = np.where(failed, "error", "ok")
        log["prediction"] = log["prediction"].astype(object).where(~failed, None)
        if status is not None:
            log[HTTP_STATUS] = pd.array([status if fail else None for fail in failed], dtype="Int64")
        return log

    def _write(self, log: pd.DataFrame) -> None:
        folder = self.paths.inference(self.spec.name)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        target = folder / f"online-{stamp}-{os.getpid()}-{next(_files)}.parquet"
        partial = folder / f".{target.name}.partial"
        log.to_parquet(partial, index=False)
        os.link(partial, target)
        partial.unlink()

    def feedback(self, served: pd.DataFrame, name: str) -> None:
        folder = self.paths.feedback(self.spec.name)
        folder.mkdir(parents=True, exist_ok=True)
        served[[self.spec.key_column, self.spec.label]].to_csv(folder / name, index=False)

    def moves(self) -> list[tuple[str, str, dict]]:
        return [(r.decision, r.trigger, r.evidence.get("moves", {})) for r in self.ledger.query(self.spec.name)]


@pytest.fixture
def releases(registered, tmp_path, instance) -> Releases:
    """The registered model with no release aliases set, on a fresh home (ledger, inference log) and instance."""
    client = registered.store.client()
    for alias in (CANARY, PRODUCTION, PREVIOUS_PRODUCTION):
        if alias_version(registered.store, registered.spec.name, alias) is not None:
            client.delete_registered_model_alias(registered.spec.name, alias)
    paths = PlatformPaths(tmp_path / "home")
    return Releases(registered.spec, registered.store, paths, instance, registered.good, registered.degraded)
