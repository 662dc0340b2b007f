"""Audit trail of administrative actions and human reviews: who (a key id
or the command, never a key), what, when, a before/after summary (never
content text)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from .db.models import AuditEvent


def record(session: Session, actor: str, action: str, target: str | None, details: dict[str, Any] | None) -> None:
    session.add(AuditEvent(actor=actor, action=action, target=target, details=details))


@dataclass(frozen=True, slots=True)
class EventQuery:
    action: str | None = None
    actor: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def events(sessions: sessionmaker[Session], query: EventQuery, before: tuple[datetime, int] | None,
           limit: int) -> tuple[list[AuditEvent], bool]:
    """Up to `limit` events matching `query`, newest first, older than the
    (created_at, id) of the previous page's last event; and whether more follow."""
    e = AuditEvent
    statement = select(e).order_by(e.created_at.desc(), e.id.desc()).limit(limit + 1)
    for column, value in ((e.action, query.action), (e.actor, query.actor)):
        if value is not None:
            statement = statement.where(column == value)
    if query.since is not None:
        statement = statement.where(e.created_at >= query.since)
    if query.until is not None:
        statement = statement.where(e.created_at < query.until)
    if before is not None:
        statement = statement.where(tuple_(e.created_at, e.id) < tuple_(*before))
    with sessions() as session:
        found = list(session.scalars(statement))
    return found[:limit], len(found) > limit
