"""The audit log (admin keys): who changed keys, reviewed content or
cleaned up, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from ... import audit
from ...db.models import as_utc
from ..deps import ADMIN_ERRORS, Admin, State
from ..paging import Cursor, Limit, decode_cursor, encode_cursor
from ..schemas import AuditPage

router = APIRouter(prefix="/api/v1", tags=["Audit"])
Instant = Annotated[datetime | None, Query(description="ISO 8601 date or time; UTC when it names no zone.")]


@router.get("/audit", response_model=AuditPage, summary="Audit events, newest first (admin keys)",
            responses=ADMIN_ERRORS)
async def audit_events(_: Admin, state: State,
                       action: Annotated[str | None, Query(max_length=64, description="Exact action, e.g. "
                                                                                      "review.record.")] = None,
                       actor: Annotated[str | None, Query(max_length=128, description="Key id, or cli.")] = None,
                       since: Instant = None, until: Instant = None, limit: Limit = 50,
                       cursor: Cursor = None) -> ORJSONResponse:
    query = audit.EventQuery(action=action, actor=actor, since=None if since is None else as_utc(since),
                             until=None if until is None else as_utc(until))
    before = None if cursor is None else decode_cursor(cursor, int)
    events, more = await run_in_threadpool(audit.events, state.runtime.sessions, query, before, limit)
    page: dict[str, Any] = {"items": [{"id": e.id, "created_at": e.created_at.isoformat(), "actor": e.actor,
                                       "action": e.action, "target": e.target, "details": e.details}
                                      for e in events], "next_cursor": None}
    if more:
        page["next_cursor"] = encode_cursor(events[-1].created_at, events[-1].id)
    return ORJSONResponse(page)
