"""The HTTP application of ``ml-platform serve`` (platform-owned), on Starlette.

Starlette rather than FastAPI: the request body is checked by the model's pandera contract, which
names the column, the value found and the value expected; a pydantic request model would only add a
second, generic validation in front of it (and FastAPI's ``422`` format) and a layer of per-request
cost. What FastAPI would add beyond that -- an OpenAPI page -- cannot describe a contract that differs
per model anyway. uvicorn runs it (``server``).

Routes:
    POST /v1/models/<model>/predict   MLflow ``/invocations`` payloads; the answer names the version and
                                      cohort that served and the request id
    GET  /health                      the process is alive
    GET  /ready                       200 when every served model's deployed version is verified and
                                      serving (and its canary's, while there is one); 503 with the reasons
    GET  /metrics                     Prometheus text: requests, errors, latency per model, version, cohort

Bad input is answered with a 4xx that names the problem, is counted, and is logged as an error row;
it never reaches ``predict`` and never stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ml_platform.errors import RequestRefused
from ml_platform.serving import log as online
from ml_platform.serving.deployment import Answer, ModelDeployment, Pending
from ml_platform.serving.payload import Rows, parse_payload
from ml_platform.serving.routing import goes_to_canary, shadow_sampled
from ml_platform.serving.settings import ServerLimits

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)
DRAIN_LIMIT_BYTES = 64 << 20  # an oversized body is read (and dropped) up to this size, so the client gets the 413
FLUSH_CHECK_SECONDS = 0.5  # how often flush_seconds is judged; a full buffer wakes the flush task at once


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (one per application)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["model", "version", "cohort", "code"]
        self.requests = Counter(
            "ml_platform_serving_requests", "Prediction requests answered", labels, registry=self.registry
        )
        self.errors = Counter(
            "ml_platform_serving_errors", "Prediction requests answered with an error", labels, registry=self.registry
        )
        self.latency = Histogram(
            "ml_platform_serving_latency_seconds",
            "Time from request to answer",
            ["model", "version", "cohort"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ready = Gauge(
            "ml_platform_serving_ready", "1 when the model's deployed version serves", ["model"], registry=self.registry
        )

    def observe(self, model: str, version: str, cohort: str, code: int, seconds: float) -> None:
        self.requests.labels(model, version, cohort, str(code)).inc()
        if code >= 400:
            self.errors.labels(model, version, cohort, str(code)).inc()
        self.latency.labels(model, version, cohort).observe(seconds)


class ServingApp:
    """The routes, over one ``ModelDeployment`` per served model."""

    def __init__(self, deployments: dict[str, ModelDeployment], limits: ServerLimits):
        self.deployments, self.limits, self.metrics = deployments, limits, Metrics()
        self._tasks: list[asyncio.Task] = []
        self._log_full = asyncio.Event()

    def starlette(self) -> Starlette:
        routes = [
            Route("/v1/models/{model}/predict", self.predict, methods=["POST"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/ready", self.ready, methods=["GET"]),
            Route("/metrics", self.prometheus, methods=["GET"]),
        ]
        return Starlette(routes=routes, lifespan=self.lifespan)

    @contextlib.asynccontextmanager
    async def lifespan(self, app):
        loop, self._log_full = asyncio.get_running_loop(), asyncio.Event()
        for deployment in self.deployments.values():  # appends run in predict threads: wake the loop safely
            deployment.log.on_full = functools.partial(_wake, loop, self._log_full)
        self._tasks = [asyncio.create_task(d.follow()) for d in self.deployments.values()]
        self._tasks.append(asyncio.create_task(self._flush_logs()))
        try:
            yield
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await asyncio.gather(*(d.close() for d in self.deployments.values()), return_exceptions=True)
            for deployment in self.deployments.values():
                await asyncio.to_thread(deployment.log.flush)

    async def _flush_logs(self) -> None:
        """Write each log when it is due: woken by a full buffer, and every ``FLUSH_CHECK_SECONDS`` for the
        rows that have waited ``flush_seconds``."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._log_full.wait(), FLUSH_CHECK_SECONDS)
            self._log_full.clear()
            for deployment in self.deployments.values():
                if deployment.log.due():
                    await asyncio.to_thread(deployment.log.flush)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def ready(self, request: Request) -> Response:
        models = {name: d.status() for name, d in self.deployments.items()}
        for name, status in models.items():
            self.metrics.ready.labels(name).set(1 if status["ready"] else 0)
        everything = all(status["ready"] for status in models.values())
        return JSONResponse({"ready": everything, "models": models}, status_code=200 if everything else 503)

    async def prometheus(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def predict(self, request: Request) -> Response:
        started = time.perf_counter()
        name = request.path_params["model"]
        deployment = self.deployments.get(name)
        if deployment is None:
            served = sorted(self.deployments)
            return JSONResponse({"error": f"no model named {name!r} is served here; served: {served}"}, 404)
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        try:
            rows = await self._rows(request, deployment)
            answer = await self._answer(request, deployment, rows, request_id, started)
        except RequestRefused as refused:
            version = deployment.routing.production.version if deployment.routing.production else None
            deployment.log_error(request_id, online.PRODUCTION_COHORT, started, version, refused.status, str(refused))
            answer = refused
        except Exception as error:  # noqa: BLE001 -- a bug or a broken model: a 500 for this request, the server goes on
            version = deployment.routing.production.version if deployment.routing.production else None
            message = f"model {name!r}: the server failed to answer: {type(error).__name__}: {str(error)[:300]}"
            deployment.log_error(request_id, online.PRODUCTION_COHORT, started, version, 500, message)
            answer = RequestRefused(message, 500)
        return self._respond(name, request_id, answer, started)

    async def _rows(self, request: Request, deployment: ModelDeployment) -> Rows:
        deployment.arriving += 1
        try:
            body = await _body(request, self.limits.max_body_bytes)
            contract = deployment.contract
            return parse_payload(body, contract.columns, contract.label, self.limits.max_rows)
        finally:
            deployment.arriving -= 1

    async def _answer(
        self, request, deployment: ModelDeployment, rows: Rows, request_id: str, started: float
    ) -> Answer | RequestRefused:
        routing = deployment.routing
        if routing.production is None:
            raise RequestRefused(f"model {deployment.name!r} is not ready: {_not_ready(deployment.status())}", 503)
        key = _routing_key(request, deployment, rows) or request_id
        canary = routing.canary is not None and routing.mode == "canary"
        pending = Pending(rows, request_id, online.PRODUCTION_COHORT, started)
        answer = await deployment.submit(pending, canary and goes_to_canary(key, routing.canary_percent))
        shadow = routing.canary is not None and routing.mode == "shadow"
        if shadow and isinstance(answer, Answer) and shadow_sampled(key, deployment.policy.shadow_sample):
            deployment.shadow(Pending(rows, request_id, online.SHADOW_COHORT, started))
        return answer

    def _respond(self, name: str, request_id: str, answer: Answer | RequestRefused, started: float) -> Response:
        headers = {"X-Request-Id": request_id}
        if isinstance(answer, RequestRefused):
            self.metrics.observe(name, "none", "none", answer.status, time.perf_counter() - started)
            return JSONResponse({"error": str(answer), "request_id": request_id}, answer.status, headers=headers)
        body: dict[str, Any] = {"predictions": answer.predictions}
        if answer.confidence is not None:
            body["confidence"] = answer.confidence
        body |= {"model": name, "version": answer.version, "cohort": answer.cohort, "request_id": request_id}
        self.metrics.observe(name, answer.version, answer.cohort, 200, time.perf_counter() - started)
        return JSONResponse(body, headers=headers | {"X-Model-Version": answer.version, "X-Cohort": answer.cohort})


async def _body(request: Request, limit: int) -> bytes:
    """The request body, or a 413 once it passes ``limit`` bytes (the rest is read and dropped, up to a cap)."""
    declared = request.headers.get("content-length", "")
    size, chunks = 0, []
    too_large = declared.isdigit() and int(declared) > limit
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            too_large = True
        if too_large:
            if size > DRAIN_LIMIT_BYTES:
                break
            continue
        chunks.append(chunk)
    if too_large:
        found = f"{int(declared):,}" if declared.isdigit() else f"more than {limit:,}"
        raise RequestRefused(f"the body has {found} bytes; this server takes at most {limit:,} (--max-body-bytes)", 413)
    return b"".join(chunks)


def _routing_key(request: Request, deployment: ModelDeployment, rows: Rows) -> str | None:
    """The request's routing key: the spec's header, else its routing column in the first row."""
    policy = deployment.policy
    header = request.headers.get(policy.routing_header)
    if header:
        return header
    if policy.routing_column and policy.routing_column in rows.columns and rows.rows:
        return str(rows.rows[0][rows.columns.index(policy.routing_column)])
    return None


def _not_ready(status: dict[str, Any]) -> str:
    reasons = [status["problem"]] if status.get("problem") else []
    reasons += [f"v{version} refused: {why}" for version, why in status.get("refused", {}).items()]
    return "; ".join(reasons) or "its deployed version is still loading"


def _one_thread() -> None:
    """Each predict thread runs OpenMP single-threaded (see ``server.serve``; the env var covers the rest)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="openmp")


def _wake(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    """Set ``event`` from another thread; a loop already closed (shutdown) flushes at its end anyway."""
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(event.set)


def build_app(specs, store, paths, limits: ServerLimits | None = None, **policy_overrides) -> Starlette:
    """The application serving ``specs`` from ``store``, logging under ``paths``' inference folder."""
    from ml_platform.serving.deployment import ModelDeployment
    from ml_platform.serving.settings import serving_policy

    limits = limits or ServerLimits()
    executor = ThreadPoolExecutor(
        max_workers=max(2, 2 * len(specs)), thread_name_prefix="ml_platform-predict", initializer=_one_thread
    )
    deployments = {
        spec.name: ModelDeployment(
            spec,
            store,
            serving_policy(spec, **policy_overrides),
            online.OnlineLog(
                paths.inference(spec.name), flush_rows=limits.log_flush_rows, flush_seconds=limits.log_flush_seconds
            ),
            executor,
            paths,
        )
        for spec in specs
    }
    return ServingApp(deployments, limits).starlette()
