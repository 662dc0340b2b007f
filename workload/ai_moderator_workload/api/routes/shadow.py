"""How the shadow policy would have decided, summed over recent decisions.
Aggregate counts only, and no API key: the operator reads it through the
Kubernetes API server's service proxy, which drops Authorization headers."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from ... import store
from ..deps import State
from ..schemas import ShadowCategoryCounts, ShadowSummary
from .health import NO_CACHE

router = APIRouter(tags=["Shadow policy"])
Seconds = Annotated[int, Query(ge=60, le=86400, description="Length of the window, ending now.")]
# Anyone who reaches the API may ask (no key): one aggregate query at a time
# per process bounds what a flood of such requests costs the database.
ONE_AT_A_TIME = asyncio.Semaphore(1)


@router.get("/shadow/summary", response_model=ShadowSummary,
            summary="Live against shadow policy decisions over the last `seconds`")
async def shadow_summary(state: State, seconds: Seconds = 3600) -> ORJSONResponse:
    async with ONE_AT_A_TIME:
        s = await run_in_threadpool(store.shadow_summary, state.runtime.sessions, seconds)
    summary = ShadowSummary(
        seconds=seconds, decisions=s.decisions, live_flagged=s.live_flagged, shadow_flagged=s.shadow_flagged,
        agreement=s.agreeing / s.decisions if s.decisions else None, shadow_policy=s.shadow_policy,
        categories={c: ShadowCategoryCounts(**counts) for c, counts in s.categories.items()})
    return ORJSONResponse(summary.model_dump(by_alias=True), headers=NO_CACHE)
