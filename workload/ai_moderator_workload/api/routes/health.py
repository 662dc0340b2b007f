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


@router.get("/health", summary="The process is alive; the broker's state as last seen")
async def health(state: State) -> ORJSONResponse:
    return ORJSONResponse({"status": "ok", "broker": state.broker.describe()}, headers=NO_CACHE)


@router.get("/ready", summary="The API can serve /v1/moderations: the database is reachable",
            responses={503: {"description": "The database is unreachable"}})
async def ready(state: State) -> ORJSONResponse:
    """Ready means the synchronous routes work. A broker outage degrades only
    the asynchronous route (503 there), so it is reported here without taking
    every API pod out of the Service."""
    def ping_db() -> None:
        with state.runtime.sessions() as session:
            session.execute(text("SELECT 1"))

    checks = {"broker": state.broker.describe()}
    try:
        await asyncio.wait_for(run_in_threadpool(ping_db), timeout=3)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        checks["database"] = f"unavailable: {type(exc).__name__}"
    healthy = checks["database"] == "ok"
    return ORJSONResponse({"status": "ready" if healthy else "unavailable", "checks": checks},
                          status_code=200 if healthy else 503, headers=NO_CACHE)


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(metrics_registry()), media_type=CONTENT_TYPE_LATEST)
