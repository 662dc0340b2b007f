"""The FastAPI application: `ai-moderator serve`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from .. import store
from ..apikeys import KeyVerifier, create_key
from ..batching import MicroBatcher
from ..db.migrate import migrate
from ..db.models import ApiKey
from ..metrics import GaugeCollector, install_collector
from ..queueing import (
    BrokerMonitor,
    CeleryDispatcher,
    Dispatcher,
    InProcessDispatcher,
    Sweeper,
    make_celery,
    sweep_once,
)
from ..quota import MemoryStorageQuota, RedisStorageQuota, StorageQuota
from ..ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from ..runtime import Runtime
from ..settings import Settings, get_settings
from . import errors
from .auth import KeyFirstMiddleware
from .middleware import EdgeMiddleware
from .routes import audit, blocklists, health, keys, native, openai, policies, review, shadow
from .state import AppState

log = logging.getLogger(__name__)


def _bootstrap_embedded(runtime: Runtime) -> None:
    """The one-command local run: create the SQLite schema and, when no key
    exists at all, an admin key written to a file next to the database."""
    migrate(runtime.settings)
    if runtime.settings.admin_api_key is not None:
        return
    with runtime.sessions() as session, session.begin():
        if session.scalar(select(func.count()).select_from(ApiKey)):
            return
        _, token = create_key(session, "local-admin", is_admin=True, actor="serve")
    path = Path(os.environ.get("AI_MODERATOR_KEY_FILE", "ai-moderator-admin.key")).resolve()
    path.write_text(token + "\n", encoding="utf-8")
    path.chmod(0o600)
    log.warning("created an admin API key for this local database", extra={"key_file": str(path)})


async def _refresh_policies(runtime: Runtime) -> None:
    """Check for changed tenant policies every POLICY_REFRESH_SECONDS, off
    the event loop; the database being away only delays the next check."""
    while True:
        try:
            await run_in_threadpool(runtime.policies.refresh, runtime.sessions)
        except SQLAlchemyError as exc:
            log.warning("could not check tenant policies", extra={"error": type(exc).__name__})
        except Exception:
            # Anything else would end this task for good, and the pod would keep its policies forever.
            log.exception("could not load tenant policies")
        await asyncio.sleep(runtime.settings.policy_refresh_seconds)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    runtime = Runtime(settings)
    if not settings.is_postgres:
        await run_in_threadpool(_bootstrap_embedded, runtime)
    await run_in_threadpool(lambda: runtime.engine)  # load the model before the first request
    redis_client: aioredis.Redis | None = None
    limiter: RateLimiter
    quota: StorageQuota
    dispatcher: Dispatcher
    sweeper: Sweeper | None = None
    if settings.redis_url is None:
        limiter = MemoryRateLimiter()
        quota = MemoryStorageQuota()
        dispatcher = InProcessDispatcher(runtime)
        # Nothing else re-queues in the embedded mode: pick up what a previous run left pending.
        sweeper = Sweeper(runtime, dispatcher)
        await run_in_threadpool(sweep_once, runtime, dispatcher)
        sweeper.start()
    else:
        redis_client = aioredis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        limiter = RedisRateLimiter(redis_client)
        quota = RedisStorageQuota(redis_client)
        dispatcher = CeleryDispatcher(make_celery(settings), settings.broker_visibility_timeout_seconds)
    batcher: MicroBatcher[store.Submission, store.ContentRecord] = MicroBatcher(
        lambda items: store.moderate_and_store(runtime.sessions, runtime.engine, items),
        max_size=settings.batch_max_size, max_wait=settings.batch_max_wait_ms / 1000.0)
    batcher.start()
    broker = BrokerMonitor(dispatcher)
    await broker.refresh()
    broker.start()
    with contextlib.suppress(SQLAlchemyError):
        # Before the first request, when the database is there; the loop retries otherwise.
        await run_in_threadpool(runtime.policies.refresh, runtime.sessions)
    policy_refresher = asyncio.get_running_loop().create_task(_refresh_policies(runtime), name="policy-refresh")
    install_collector(GaugeCollector({
        "celery_queue_length": ("Messages waiting in moderation_queue (as last read).", lambda: broker.queue_length),
        "broker_up": ("1 when the broker answered its last check, 0 when not (absent in the embedded mode).",
                      lambda: float(broker.up) if broker.up is not None else None),
        "db_connection_pool_used": ("Database connections checked out.", runtime.pool_used),
        "db_connection_pool_size": ("Database connection pool capacity.", runtime.pool_size),
    }))
    app.state.ai = AppState(runtime=runtime, verifier=KeyVerifier(
        settings.admin_api_key.get_secret_value() if settings.admin_api_key else None,
        ttl=settings.api_key_cache_seconds),
        limiter=limiter, quota=quota, dispatcher=dispatcher, batcher=batcher, broker=broker, sweeper=sweeper)
    log.info("api ready", extra={"embedded": settings.embedded, "engine": runtime.engine.engine_version,
                                 "policy": runtime.engine.policy_version,
                                 "shadow_policy": runtime.engine.shadow_version})
    try:
        yield
    finally:
        policy_refresher.cancel()
        await asyncio.gather(policy_refresher, return_exceptions=True)
        await broker.stop()
        await batcher.stop()
        if sweeper is not None:
            sweeper.stop()
        if isinstance(dispatcher, InProcessDispatcher):
            await run_in_threadpool(dispatcher.shutdown)
        if redis_client is not None:
            await redis_client.aclose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="ai-moderator",
        summary="Self-hosted content moderation with an OpenAI-compatible API.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url="/docs",
        # Metrics are Prometheus (/metrics); FastAPI's OpenTelemetry hooks
        # would only cost time on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    errors.install(app)
    app.include_router(openai.router)
    app.include_router(native.router)
    app.include_router(health.router)
    app.include_router(shadow.router)
    app.include_router(review.router)
    app.include_router(audit.router)
    app.include_router(blocklists.router)
    app.include_router(policies.router)
    app.include_router(keys.router)
    # Added last, so outermost: metrics and the size limit see every request,
    # including those KeyFirstMiddleware refuses.
    app.add_middleware(KeyFirstMiddleware)
    app.add_middleware(EdgeMiddleware, max_body_bytes=settings.max_body_bytes)
    return app
