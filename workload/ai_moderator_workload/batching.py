"""Micro-batching: concurrent callers' items are gathered into one call of a
batch function (one model call, one database transaction). While a batch is
being processed the next one fills up, so batches grow with load; when idle,
the first item waits at most `max_wait` for company."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


@dataclass(slots=True)
class _Request(Generic[In, Out]):
    items: Sequence[In]
    future: asyncio.Future[list[Out]]


class MicroBatcher(Generic[In, Out]):
    def __init__(self, fn: Callable[[list[In]], list[Out]], max_size: int, max_wait: float, in_flight: int = 2) -> None:
        self._fn = fn
        self._max_size = max_size
        self._max_wait = max_wait
        self._queue: list[_Request[In, Out]] = []
        self._queued_items = 0
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()
        self._slots = asyncio.Semaphore(in_flight)
        self._executor = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="batch")
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="micro-batcher")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        self._executor.shutdown(wait=True)

    async def submit(self, items: Sequence[In]) -> list[Out]:
        future: asyncio.Future[list[Out]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(items, future))
        self._queued_items += len(items)
        self._wakeup.set()
        if self._queued_items >= self._max_size:
            self._full.set()
        return await future

    def _take(self) -> list[_Request[In, Out]]:
        taken: list[_Request[In, Out]] = []
        count = 0
        # Whole requests only; a single request larger than max_size goes alone.
        while self._queue and (not taken or count + len(self._queue[0].items) <= self._max_size):
            request = self._queue.pop(0)
            taken.append(request)
            count += len(request.items)
        self._queued_items -= count
        if not self._queue:
            self._wakeup.clear()
        if self._queued_items < self._max_size:
            self._full.clear()
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            await self._slots.acquire()
            if self._max_wait > 0 and self._queued_items < self._max_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._max_wait)
            batch = self._take()
            if not batch:
                self._slots.release()
                continue
            loop.create_task(self._process(loop, batch))

    async def _process(self, loop: asyncio.AbstractEventLoop, batch: list[_Request[In, Out]]) -> None:
        try:
            await self._deliver(loop, batch)
        finally:
            self._slots.release()

    async def _deliver(self, loop: asyncio.AbstractEventLoop, batch: list[_Request[In, Out]]) -> None:
        flat = [item for request in batch for item in request.items]
        try:
            results = await loop.run_in_executor(self._executor, self._fn, flat)
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0].future.done():
                    batch[0].future.set_exception(exc)
                return
            # Callers share a batch, not a fate: one caller's bad item must not
            # fail the others, so each is tried again on its own.
            for request in batch:
                await self._deliver(loop, [request])
            return
        except BaseException as exc:  # noqa: BLE001 - cancellation: handed to every waiting caller
            for request in batch:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        offset = 0
        for request in batch:
            n = len(request.items)
            if not request.future.done():
                request.future.set_result(results[offset:offset + n])
            offset += n
