"""What one model serves, kept in step with the registry without a restart (platform-owned).

A poller reads the model's aliases every ``poll_seconds``: the deployed alias (``production`` unless
the spec says ``champion``) and ``canary`` with its release tags. A version not loaded yet is loaded
in a thread beside the ones serving -- downloaded, verified against the hashes recorded at its
registration (``stores.artifacts``), deserialized -- and only then swapped in, by one assignment of
an immutable ``Routing``. A request reads that reference once, so it sees either the old routing or
the new one, never a half-loaded model. The version swapped out finishes the requests it had queued
(a request that raced the swap is resubmitted to the new one), then stops.

A version that fails verification is refused by name and never retried (its files will not change
back by themselves); the version serving before it keeps serving and ``/ready`` reports the refusal.
A deployed alias moved outside the platform is not followed either -- the rule batch scoring applies
(``stores.recovery.manual_move``), read again at every poll, so the server follows the alias as soon
as the move is confirmed or undone; until then what served keeps serving (or, with nothing verified
loaded, ``/ready`` stays false for the model) and ``/ready`` names the move as the reason.
A registry that does not answer is retried at the next poll, and what serves keeps serving.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml_platform.errors import ArtifactTampered, ArtifactUnverified, PromotionBlocked, RequestRefused
from ml_platform.keys import CANARY, CANARY_PERCENT_TAG, RELEASE_MODE_TAG
from ml_platform.rules.performance import BATCH_FILE, BATCH_SHA256, CONFIDENCE, MODEL_VERSION, PREDICTION, SCORED_AT
from ml_platform.rules.spec import Release
from ml_platform.serving import log as online
from ml_platform.serving.batching import MicroBatcher, Retired
from ml_platform.serving.payload import Rows
from ml_platform.serving.predict import Scorer
from ml_platform.serving.validation import ScoringContract

if TYPE_CHECKING:
    from ml_platform.settings import PlatformPaths

LOGGER = logging.getLogger("ml_platform.serving")
CACHED_VERSIONS = 4  # verified pipelines kept in memory, so that an alias moving back and forth costs no reload
REFUSALS = (ArtifactTampered, ArtifactUnverified, PromotionBlocked)


@dataclass
class Pending:
    """One request waiting for its batch."""

    rows: Rows
    request_id: str
    cohort: str
    arrived: float  # time.perf_counter() when the request arrived


@dataclass(frozen=True)
class Answer:
    predictions: list[Any]
    confidence: list[float] | None
    version: str
    cohort: str


@dataclass(frozen=True)
class Served:
    """A verified version, loaded, with the batcher that feeds its ``predict``."""

    version: str
    pipeline: Any = field(repr=False)
    batcher: MicroBatcher = field(repr=False)


@dataclass(frozen=True)
class Routing:
    """What one model serves right now; replaced whole, never changed in place."""

    production: Served | None = None
    canary: Served | None = None
    canary_percent: float = 0.0
    mode: str = "canary"  # or "shadow"


@dataclass(frozen=True)
class Targets:
    """What the registry points at, as read by one poll."""

    production: str | None
    canary: str | None
    canary_percent: float
    mode: str
    held: str | None = None  # why ``production`` (the deployed alias's version) is not followed: moved by hand
    canary_held: str | None = None  # why ``canary`` gets no traffic: not started by `release start`


class ModelDeployment:
    """One model's served versions, its contract, its online log, and the poller that follows its aliases."""

    def __init__(
        self,
        spec,
        store,
        policy: Release,
        log: online.OnlineLog,
        executor: Executor | None = None,
        paths: PlatformPaths | None = None,
    ):
        """``paths``: the platform home whose ledger says which alias moves the platform made (optional)."""
        self.spec, self.store, self.policy, self.log, self.executor = spec, store, policy, log, executor
        self.paths = paths
        self.contract = ScoringContract(spec)
        self.features = list(spec.features)
        self.logged_columns = [c for c in spec.required_columns if c != spec.label]  # as defs.scoring logs them
        self.routing = Routing()
        self.targets: Targets | None = None
        self.refused: dict[str, str] = {}
        self.held: dict[str, str] = {}  # versions not followed (set by hand: production's, the canary's), and why
        self.problem: str | None = "the registry has not been read yet"
        self.arriving = 0  # requests being read, whose rows may join the next batch
        self._pipelines: OrderedDict[str, Any] = OrderedDict()
        self._retired: list[MicroBatcher] = []
        self._shadows: set[asyncio.Task] = set()

    @property
    def name(self) -> str:
        return self.spec.name

    # -- following the registry -------------------------------------------------------------------

    async def follow(self) -> None:
        """Poll the registry until cancelled; every failure is reported in ``status`` and retried."""
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 -- the registry is away: keep serving what is loaded
                self.problem = f"the registry could not be read ({type(error).__name__}: {str(error)[:200]})"
                LOGGER.warning("model %s: %s", self.name, self.problem)
            await asyncio.sleep(self.policy.poll_seconds)

    async def refresh(self) -> None:
        """One poll: read the aliases, load and verify what is new, swap it in."""
        targets = await asyncio.to_thread(self._read_targets)
        self.targets = targets
        self._hold(targets)
        current = self.routing
        follow = targets.production if not targets.held else None
        production = await self._served(follow, current) if follow else None
        canary = None
        if targets.canary and targets.canary != targets.production and not targets.canary_held:
            canary = await self._served(targets.canary, current)
        production = production or current.production  # a refused or unloadable target: the old one keeps serving
        routing = Routing(production, canary, targets.canary_percent if canary else 0.0, targets.mode)
        if routing != current:
            self.routing = routing  # the swap: one reference assignment
            self._retire(current, routing)
            LOGGER.info("model %s: serving %s", self.name, self.describe(routing))
        self.problem = (
            targets.held
            or targets.canary_held
            or (
                None
                if targets.production
                else (
                    f"no version has the alias {self.policy.deployed_alias!r}; release one first "
                    f"(`ml-platform release {self.name} start`), or set release.deployed_alias to 'champion'"
                )
            )
        )

    def _hold(self, targets: Targets) -> None:
        """Remember (and log, once per move) a deployed version not followed because it was moved by hand."""
        held = {targets.production: targets.held} if targets.production and targets.held else {}
        if targets.canary and targets.canary_held:
            held[targets.canary] = targets.canary_held
        for version in held.keys() - self.held.keys():
            LOGGER.error("model %s: version %s not followed: %s", self.name, version, held[version])
        self.held = held

    def _read_targets(self) -> Targets:
        from mlflow.exceptions import MlflowException

        from ml_platform.stores.release import canary_problem

        client = self.store.client()
        try:
            aliases = dict(client.get_registered_model(self.name).aliases or {})
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return Targets(None, None, 0.0, "canary")
            raise
        production = aliases.get(self.policy.deployed_alias)
        canary = aliases.get(CANARY)
        percent, mode, canary_held = 0.0, "canary", None
        if canary is not None:
            tags = dict(client.get_model_version(self.name, str(canary)).tags or {})
            percent = _percent(tags.get(CANARY_PERCENT_TAG), self.policy.canary_percent)
            mode = "shadow" if tags.get(RELEASE_MODE_TAG) == "shadow" else "canary"
            canary_held = canary_problem(self.name, str(canary), tags)
        held = self._moved_by_hand(client, _text(production))
        return Targets(_text(production), _text(canary), percent, mode, held, canary_held)

    def _moved_by_hand(self, client, version: str | None) -> str | None:
        """Why ``version``, the deployed alias's, must not be followed (batch scoring's rule), or ``None``."""
        from ml_platform.stores.recovery import manual_move
        from ml_platform.stores.registry import Champion

        if version is None:
            return None
        found = client.get_model_version(self.name, version)
        return manual_move(self.paths, self.name, self.policy, Champion(version, found.run_id, dict(found.tags or {})))

    async def _served(self, version: str, current: Routing) -> Served | None:
        for served in (current.production, current.canary):
            if served is not None and served.version == version:
                return served
        if version in self.refused:
            return None
        pipeline = self._pipelines.get(version)
        if pipeline is None:
            try:
                pipeline = await asyncio.to_thread(self._load, version)
            except REFUSALS as error:
                self.refused[version] = str(error)
                LOGGER.error("model %s: version %s refused: %s", self.name, version, error)
                return None
            self._pipelines[version] = pipeline
            while len(self._pipelines) > CACHED_VERSIONS:
                self._pipelines.popitem(last=False)
            # What is loaded by now (the imports, the pipeline) lives as long as the process: freeze it out of
            # the collector's reach, so that a full collection walks only what requests leave behind. Without
            # it each full collection walked about 400,000 objects, 230-560 ms here with every request waiting
            # on the GIL (docs/benchmarks.md profile 15).
            gc.freeze()
        scorer = Scorer(pipeline, self.features, self.name, version)
        batcher = MicroBatcher(
            lambda items, v=version, s=scorer: self.score(s, v, items),
            max_rows=self.policy.batch_max_rows,
            wait_seconds=self.policy.batch_wait_ms / 1000,
            executor=self.executor,
            rows=lambda item: len(item.rows.rows),
            arriving=lambda: self.arriving,
        ).start()
        return Served(version, pipeline, batcher)

    def _load(self, version: str):
        from ml_platform.stores.registry import load_version

        return load_version(self.store, self.name, version, require_manifest=True)

    def _retire(self, before: Routing, after: Routing) -> None:
        keep = {id(s.batcher) for s in (after.production, after.canary) if s is not None}
        for served in (before.production, before.canary):
            if served is not None and id(served.batcher) not in keep:
                served.batcher.close()
                self._retired.append(served.batcher)

    async def close(self) -> None:
        for served in (self.routing.production, self.routing.canary):
            if served is not None:
                served.batcher.close()
                self._retired.append(served.batcher)
                if served.batcher.batches:
                    batcher = served.batcher
                    LOGGER.info("model %s v%s: %d requests in %d predict calls (%.1f s in them)", self.name,
                                served.version, batcher.items, batcher.batches, batcher.busy_seconds)  # fmt: skip
        await asyncio.gather(*(b.wait_closed() for b in self._retired), return_exceptions=True)

    # -- answering ----------------------------------------------------------------------------------

    async def submit(self, pending: Pending, canary: bool) -> Answer | RequestRefused:
        """The request scored by the production version, or the canary's when ``canary``; a swap is retried."""
        for _ in range(3):
            routing = self.routing
            served = routing.canary if canary and routing.canary is not None else routing.production
            if served is None:
                break
            if served is not routing.production:
                pending.cohort = online.CANARY_COHORT
            try:
                return await served.batcher.submit(pending)
            except Retired:
                continue
        raise RuntimeError(f"model {self.name!r}: no version is being served")

    def shadow(self, pending: Pending) -> None:
        """Let the canary also score a request in the background (shadow mode); its answer is only logged.

        Skipped while the canary's queue is long: the shadow must never slow production down.
        """
        served = self.routing.canary
        if served is None or served.batcher.queued_rows > 4 * self.policy.batch_max_rows:
            return
        task = asyncio.get_running_loop().create_task(self._shadow(served, pending))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _shadow(self, served: Served, pending: Pending) -> None:
        try:
            await served.batcher.submit(pending)
        except Exception as error:  # noqa: BLE001 -- a shadow's failure never reaches a client
            LOGGER.warning("model %s: shadow v%s failed: %s", self.name, served.version, error)

    def score(self, scorer: Scorer, version: str, items: Sequence[Pending]) -> list[Answer | RequestRefused]:
        """One batch (in a worker thread): the contract, one ``predict`` for every accepted row, the log."""
        validated = self.contract.validate_many([item.rows for item in items])
        predictions, confidence = np.asarray([]), None
        if validated.rows:
            predictions, confidence = scorer(validated.columns)
        now = time.perf_counter()
        results: list[Answer | RequestRefused] = []
        cohorts, request_ids, latencies = [], [], []
        for item, outcome in zip(items, validated.outcomes, strict=True):
            if isinstance(outcome, RequestRefused):
                results.append(outcome)
                self.log_error(item.request_id, item.cohort, item.arrived, version, outcome.status, str(outcome))
                continue
            count = outcome.stop - outcome.start
            conf = None if confidence is None else confidence[outcome].tolist()
            results.append(Answer(predictions[outcome].tolist(), conf, version, item.cohort))
            cohorts += [item.cohort] * count
            request_ids += [item.request_id] * count
            latencies += [(now - item.arrived) * 1000] * count
        if validated.rows:
            inputs = {name: validated.columns[name] for name in self.logged_columns}
            self._log_answers(inputs, predictions, confidence, version, cohorts, request_ids, latencies)
        return results

    def _log_answers(self, inputs, predictions, confidence, version, cohorts, request_ids, latencies) -> None:
        """The answered rows, in the columns batch scoring logs (``rules.performance.inference_log_frame``)."""
        columns = {
            PREDICTION: predictions.tolist(),
            CONFIDENCE: confidence.tolist() if confidence is not None else float("nan"),
            MODEL_VERSION: version,
            BATCH_FILE: online.ONLINE,
            BATCH_SHA256: "",
            SCORED_AT: pd.Timestamp(datetime.now(UTC)),
            online.COHORT: cohorts,
            online.REQUEST_ID: request_ids,
            online.LATENCY_MS: latencies,
            online.STATUS: online.OK,
        }
        self.log.append(inputs, columns)

    def log_error(
        self, request_id: str, cohort: str, arrived: float, version: str | None, status: int, message: str
    ) -> None:
        """One error row for a request that got no prediction: which, why, and how long it took."""
        columns = {
            PREDICTION: None,
            CONFIDENCE: float("nan"),
            MODEL_VERSION: version or "",
            BATCH_FILE: online.ONLINE,
            BATCH_SHA256: "",
            SCORED_AT: pd.Timestamp(datetime.now(UTC)),
            online.COHORT: cohort,
            online.REQUEST_ID: request_id,
            online.LATENCY_MS: (time.perf_counter() - arrived) * 1000,
            online.STATUS: online.FAILED,
            online.HTTP_STATUS: status,
            online.ERROR: message[:1000],
        }
        self.log.append({column: [None] for column in self.logged_columns}, columns, ok=False)

    # -- reporting ----------------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``/ready`` reports for this model: ready only when the deployed alias's version is verified
        and serving (and the canary's, while there is one)."""
        routing, targets = self.routing, self.targets
        serving = routing.production.version if routing.production else None
        target = targets.production if targets else None
        canary_target = targets.canary if targets and targets.canary != target else None
        canary = routing.canary.version if routing.canary else None
        ready = serving is not None and serving == target and canary == canary_target
        return {
            "ready": ready,
            "deployed_alias": self.policy.deployed_alias,
            "target": target,
            "serving": serving,
            "canary": {
                "target": canary_target,
                "serving": canary,
                "percent": routing.canary_percent,
                "mode": routing.mode,
            }
            if canary_target
            else None,
            "refused": {v: why for v, why in (self.refused | self.held).items() if v in (target, canary_target)},
            "problem": self.problem,
        }

    def describe(self, routing: Routing) -> str:
        text = f"v{routing.production.version}" if routing.production else "nothing"
        if routing.canary:
            text += f", canary v{routing.canary.version} ({routing.mode}, {routing.canary_percent:g} %)"
        return text


def _percent(text: str | None, default: float) -> float:
    try:
        value = float(text) if text is not None else default
    except ValueError:
        return default
    return min(100.0, max(0.0, value))


def _text(version: Any) -> str | None:
    return None if version is None else str(version)
