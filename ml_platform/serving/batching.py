"""Concurrent requests gathered into one ``predict`` call (platform-owned), as Triton's dynamic batcher and
Ray Serve's ``@serve.batch`` do.

The conversion pipeline's ``predict`` costs about the same for 1 row as for 64 (docs/benchmarks.md):
the cost is per call. So each served version has one worker that takes the requests waiting in its
queue -- up to ``max_rows`` rows -- and scores them in one call, run in a thread so that the event
loop keeps reading requests meanwhile. Requests that arrive while a batch is scored form the next one.

The worker waits for more requests (at most ``wait_seconds``) only when waiting can pay: when a
request is being read right now, or the previous batch held more than one request. A lone client is
therefore never delayed by the wait, and concurrent clients fill each batch.

A retired batcher (its version was swapped out) finishes what it had queued and refuses new work with
``Retired``, so a caller that raced the swap retries on the version now served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

_STOP = object()


class Retired(RuntimeError):
    """The batcher's version was swapped out: submit to the version served now."""


@dataclass
class _Entry:
    item: Any
    rows: int
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    """One worker that scores queued items in batches: ``handle(items) -> results`` (one result per item)."""

    def __init__(
        self,
        handle: Callable[[list[Any]], Sequence[Any]],
        *,
        max_rows: int,
        wait_seconds: float,
        executor: Executor | None = None,
        rows: Callable[[Any], int] = lambda item: 1,
        arriving: Callable[[], int] = lambda: 0,
    ):
        self.handle, self.max_rows, self.wait_seconds = handle, max(1, max_rows), max(0.0, wait_seconds)
        self.executor, self.rows, self.arriving = executor, rows, arriving
        self.queue: asyncio.Queue = asyncio.Queue()
        self.closed = False
        self.batches = 0
        self.items = 0
        self.busy_seconds = 0.0  # inside ``handle``
        self.queued_rows = 0
        self._carry: _Entry | None = None
        self._last_size = 0
        self._task: asyncio.Task | None = None

    def start(self) -> MicroBatcher:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    async def submit(self, item: Any) -> Any:
        """The item's result, once its batch is scored; the handler's exception if the batch failed.

        Raises:
            Retired: the batcher was closed before the item could be queued.
        """
        if self.closed:
            raise Retired("this version was swapped out")
        entry = _Entry(item, self.rows(item), asyncio.get_running_loop().create_future())
        self.queued_rows += entry.rows
        self.queue.put_nowait(entry)
        return await entry.future

    def close(self) -> None:
        """Refuse new items; the worker scores what was queued, then stops."""
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(_STOP)

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        while True:
            batch, stop = await self._collect()
            if batch:
                await self._score(batch)
            if stop:
                return

    async def _collect(self) -> tuple[list[_Entry], bool]:
        """The next batch, and whether the batcher was closed behind it."""
        loop = asyncio.get_running_loop()
        first = self._carry or await self.queue.get()
        self._carry = None
        if first is _STOP:
            return [], True
        batch, rows = [first], first.rows
        deadline = loop.time() + self.wait_seconds
        may_wait = self._last_size > 1 or self.arriving() > 0
        while rows < self.max_rows:
            if not self.queue.empty():
                entry = self.queue.get_nowait()
            elif may_wait and (remaining := deadline - loop.time()) > 0:
                try:
                    entry = await asyncio.wait_for(self.queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                break
            if entry is _STOP:
                return batch, True
            if rows + entry.rows > self.max_rows:
                self._carry = entry
                break
            batch.append(entry)
            rows += entry.rows
        return batch, False

    def _timed(self, items: list[Any]) -> Sequence[Any]:
        started = time.perf_counter()
        try:
            return self.handle(items)
        finally:
            self.busy_seconds += time.perf_counter() - started

    async def _score(self, batch: list[_Entry]) -> None:
        self._last_size = len(batch)
        self.batches += 1
        self.items += len(batch)
        self.queued_rows -= sum(entry.rows for entry in batch)
        loop = asyncio.get_running_loop()
        try:
            results = await loop.run_in_executor(self.executor, self._timed, [entry.item for entry in batch])
        except Exception as error:  # noqa: BLE001 -- the batch's requests fail, the worker goes on
            for entry in batch:
                if not entry.future.done():
                    entry.future.set_exception(error)
            return
        for entry, result in zip(batch, results, strict=True):
            if not entry.future.done():
                entry.future.set_result(result)
