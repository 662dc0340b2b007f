"""Audit trail of administrative actions (never content text)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from .db.models import AuditEvent


def record(session: Session, actor: str, action: str, target: str | None, details: dict[str, Any] | None) -> None:
    session.add(AuditEvent(actor=actor, action=action, target=target, details=details))
