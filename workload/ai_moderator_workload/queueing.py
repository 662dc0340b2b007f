"""Hand-off of committed content to the workers: Celery on Redis in
production, a thread pool inside the API in the embedded mode. The sweeper
re-queues whatever stayed pending, so a lost message loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Protocol

from celery import Celery
from sqlalchemy.exc import OperationalError

from . import callbacks, store
from .metrics import ACTIVE_TASKS, QUEUE_PUBLISH_ERRORS, SWEPT, TASK_DURATION, TASKS
from .runtime import Runtime
from .settings import Settings

log = logging.getLogger(__name__)

QUEUE = "moderation_queue"
TASK_NAME = "ai_moderator.moderate_content"
CALLBACK_TASK_NAME = "ai_moderator.deliver_callback"


class Dispatcher(Protocol):
    def dispatch(self, content_id: uuid.UUID) -> None: ...

    def dispatch_callback(self, content_id: uuid.UUID, delay: float = 0.0) -> None: ...

    def queue_length(self) -> float: ...


def run_task(runtime: Runtime, content_id: uuid.UUID, dispatcher: Dispatcher | None = None) -> str:
    """The body of a moderation task, with its metrics; `dispatcher` queues
    the item's callback once its decision is committed."""
    started = time.perf_counter()
    ACTIVE_TASKS.inc()
    try:
        runtime.policies.refresh_if_due(runtime.sessions)
        outcome = store.process(runtime.sessions, runtime.engine, content_id, runtime.settings.max_task_attempts,
                                None if dispatcher is None else dispatcher.dispatch_callback, runtime.policies)
    except Exception:
        TASKS.labels("failure").inc()
        raise
    finally:
        ACTIVE_TASKS.dec()
        TASK_DURATION.observe(time.perf_counter() - started)
    TASKS.labels("success").inc()
    return outcome


def make_celery(settings: Settings) -> Celery:
    app = Celery("ai_moderator", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        # Ack after the work is committed; a worker killed mid-task gets its
        # message redelivered.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout_seconds},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app


def run_callback(runtime: Runtime, content_id: uuid.UUID, dispatcher: Dispatcher) -> str:
    """The body of a delivery task: one attempt, and a retry queued if due."""
    return callbacks.deliver(runtime.sessions, runtime.settings, content_id, dispatcher.dispatch_callback)


class CeleryDispatcher:
    def __init__(self, app: Celery, visibility_timeout: float = 600.0) -> None:
        self.app = app
        self._visibility_timeout = visibility_timeout

    def dispatch_callback(self, content_id: uuid.UUID, delay: float = 0.0) -> None:
        # A countdown longer than the broker's visibility timeout would have
        # Redis hand the message out again and again; the sweeper queues
        # such a retry once it is overdue instead.
        if delay > self._visibility_timeout / 2:
            return
        try:
            self.app.send_task(CALLBACK_TASK_NAME, args=[str(content_id)], queue=QUEUE, countdown=delay or None)
        except Exception as exc:  # noqa: BLE001 - the delivery is committed as due; the sweeper re-queues it
            QUEUE_PUBLISH_ERRORS.inc()
            log.warning("could not queue a callback; the sweeper will", extra={"content_id": str(content_id),
                                                                              "error": type(exc).__name__})

    def dispatch(self, content_id: uuid.UUID) -> None:
        try:
            self.app.send_task(TASK_NAME, args=[str(content_id)], queue=QUEUE)
        except Exception as exc:  # noqa: BLE001 - the row is committed; the sweeper re-queues it
            QUEUE_PUBLISH_ERRORS.inc()
            log.warning("could not queue content; the sweeper will", extra={"content_id": str(content_id),
                                                                           "error": type(exc).__name__})

    def queue_length(self) -> float:
        with self.app.connection_for_write() as conn:
            return float(conn.default_channel.client.llen(QUEUE))


class InProcessDispatcher:
    """Embedded mode: tasks run on a small thread pool in the API process."""

    def __init__(self, runtime: Runtime, workers: int = 2) -> None:
        self._runtime = runtime
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="task")
        self._pending = 0
        self._lock = threading.Lock()

    def dispatch(self, content_id: uuid.UUID) -> None:
        with self._lock:
            self._pending += 1
        self._pool.submit(self._run, content_id)

    def dispatch_callback(self, content_id: uuid.UUID, delay: float = 0.0) -> None:
        timer = threading.Timer(delay, self._submit_callback, args=(content_id,))
        timer.daemon = True  # a lost retry is the sweeper's to queue again
        timer.start()

    def _submit_callback(self, content_id: uuid.UUID) -> None:
        # A retry due after shutdown stays due in the database for the next run's sweeper.
        with contextlib.suppress(RuntimeError):
            self._pool.submit(self._run_callback, content_id)

    def _run(self, content_id: uuid.UUID) -> None:
        try:
            run_task(self._runtime, content_id, self)
        except Exception:  # noqa: BLE001 - stays pending, the sweeper retries
            log.exception("in-process task failed", extra={"content_id": str(content_id)})
        finally:
            with self._lock:
                self._pending -= 1

    def _run_callback(self, content_id: uuid.UUID) -> None:
        try:
            run_callback(self._runtime, content_id, self)
        except Exception:  # noqa: BLE001 - stays due, the sweeper retries
            log.exception("in-process callback failed", extra={"content_id": str(content_id)})

    def queue_length(self) -> float:
        return float(self._pending)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


def sweep_once(runtime: Runtime, dispatcher: Dispatcher) -> int:
    ids = store.claim_stale_pending(runtime.sessions, timedelta(seconds=runtime.settings.pending_timeout_seconds))
    for content_id in ids:
        dispatcher.dispatch(content_id)
    if ids:
        SWEPT.inc(len(ids))
        log.info("re-queued stale pending content", extra={"count": len(ids)})
    deliveries = callbacks.claim_overdue(runtime.sessions, timedelta(seconds=runtime.settings.pending_timeout_seconds))
    for content_id in deliveries:
        dispatcher.dispatch_callback(content_id)
    if deliveries:
        log.info("re-queued overdue callbacks", extra={"count": len(deliveries)})
    return len(ids) + len(deliveries)


class Sweeper(threading.Thread):
    """Re-queues content left pending (lost message, dead worker, broker
    outage). Several sweepers are safe: rows are claimed with SKIP LOCKED."""

    def __init__(self, runtime: Runtime, dispatcher: Dispatcher) -> None:
        super().__init__(name="sweeper", daemon=True)
        self._runtime = runtime
        self._dispatcher = dispatcher
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self._runtime.settings.sweep_interval_seconds):
            try:
                sweep_once(self._runtime, self._dispatcher)
            except OperationalError as exc:
                log.warning("sweep failed; database unavailable", extra={"error": type(exc).__name__})
            except Exception:  # noqa: BLE001 - keep sweeping
                log.exception("sweep failed")

    def stop(self) -> None:
        self._stop.set()


class BrokerMonitor:
    """The broker's state as last seen, refreshed off the event loop: readiness,
    /health, /metrics and the async route read it without ever waiting on a
    broker connection. `up` is None in the embedded mode (no broker)."""

    def __init__(self, dispatcher: Dispatcher, interval: float = 5.0, timeout: float = 2.0) -> None:
        self._dispatcher = dispatcher
        self._interval = interval
        self._timeout = timeout
        self.up: bool | None = None if isinstance(dispatcher, InProcessDispatcher) else True
        self._queue_length = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def queue_length(self) -> float:
        """As last read from the broker; the in-process queue is read live."""
        return self._dispatcher.queue_length() if self.up is None else self._queue_length

    async def refresh(self) -> None:
        if self.up is None:
            return
        try:
            self._queue_length = await asyncio.wait_for(asyncio.to_thread(self._dispatcher.queue_length),
                                                       self._timeout)
            self.up = True
        except Exception as exc:  # noqa: BLE001 - an unreachable broker is a state, not an error
            if self.up:
                log.warning("broker unreachable", extra={"error": type(exc).__name__})
            self.up = False

    def start(self) -> None:
        if self.up is None:
            return

        async def loop() -> None:
            while True:
                await self.refresh()
                await asyncio.sleep(self._interval)

        self._task = asyncio.get_running_loop().create_task(loop(), name="broker-monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def describe(self) -> str:
        return "embedded" if self.up is None else "ok" if self.up else "unavailable"
