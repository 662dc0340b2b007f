"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import ORJSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from ...metrics import metrics_registry
from ..deps import State

router = APIRouter(tags=["Operations"])
NO_CACHE = {"Cache-Control": "no-cache"}


@router.get("/health", summary="The process is alive")
async def health() -> ORJSONResponse:
    return ORJSONResponse({"status": "ok"}, headers=NO_CACHE)


@router.get("/ready", summary="The database and the broker are reachable",
            responses={503: {"description": "A dependency is unreachable"}})
async def ready(state: State) -> ORJSONResponse:
    def ping_db() -> None:
        with state.runtime.sessions() as session:
            session.execute(text("SELECT 1"))

    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(run_in_threadpool(ping_db), timeout=3)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"unavailable: {type(exc).__name__}"
    if state.redis is not None:
        try:
            await asyncio.wait_for(state.redis.ping(), timeout=3)
            checks["broker"] = "ok"
        except Exception as exc:  # noqa: BLE001
            checks["broker"] = f"unavailable: {type(exc).__name__}"
    else:
        checks["broker"] = "embedded"
    healthy = all(v in ("ok", "embedded") for v in checks.values())
    return ORJSONResponse({"status": "ready" if healthy else "unavailable", "checks": checks},
                          status_code=200 if healthy else 503, headers=NO_CACHE)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(metrics_registry()), media_type=CONTENT_TYPE_LATEST)
