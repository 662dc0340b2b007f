"""`ai-moderator worker`: the Celery worker on `moderation_queue`, with the
sweeper and a metrics endpoint. One process per pod with a thread pool:
scale with replicas (the operator's HPA or KEDA), not with forks."""

from __future__ import annotations

import logging
import uuid

from celery import Celery
from prometheus_client import start_http_server
from sqlalchemy.exc import OperationalError

from .metrics import GaugeCollector, install_collector
from .queueing import (
    CALLBACK_TASK_NAME,
    QUEUE,
    TASK_NAME,
    CeleryDispatcher,
    Sweeper,
    make_celery,
    run_callback,
    run_task,
)
from .runtime import Runtime
from .settings import Settings

log = logging.getLogger(__name__)


def build_worker_app(runtime: Runtime) -> tuple[Celery, CeleryDispatcher]:
    app = make_celery(runtime.settings)
    dispatcher = CeleryDispatcher(app, runtime.settings.broker_visibility_timeout_seconds)

    @app.task(name=TASK_NAME, autoretry_for=(OperationalError,), retry_backoff=True, retry_backoff_max=60,
              retry_jitter=True, max_retries=8)
    def moderate_content(content_id: str) -> str:
        return run_task(runtime, uuid.UUID(content_id), dispatcher)

    # No Celery retries: a failed attempt is recorded and re-queued by callbacks.deliver
    # itself, and one the database refused stays due for the sweeper.
    @app.task(name=CALLBACK_TASK_NAME)
    def deliver_callback(content_id: str) -> str:
        return run_callback(runtime, uuid.UUID(content_id), dispatcher)

    return app, dispatcher


def run_worker(settings: Settings, concurrency: int, metrics_port: int) -> None:
    if settings.redis_url is None:
        raise SystemExit("ai-moderator worker needs REDIS_URL (the embedded mode runs tasks inside `serve`)")
    runtime = Runtime(settings)
    runtime.engine  # load the model before taking work  # noqa: B018
    app, dispatcher = build_worker_app(runtime)
    install_collector(GaugeCollector({
        "celery_queue_length": ("Messages waiting in moderation_queue.", dispatcher.queue_length),
        "db_connection_pool_used": ("Database connections checked out.", runtime.pool_used),
        "db_connection_pool_size": ("Database connection pool capacity.", runtime.pool_size),
    }))
    if metrics_port:
        start_http_server(metrics_port)
    sweeper = Sweeper(runtime, dispatcher)
    sweeper.start()
    log.info("worker starting", extra={"queue": QUEUE, "concurrency": concurrency})
    try:
        app.worker_main(["worker", "--pool=threads", f"--concurrency={concurrency}", "-Q", QUEUE,
                         "--without-gossip", "--without-mingle", "--without-heartbeat",
                         f"--loglevel={settings.log_level}"])
    finally:
        sweeper.stop()
