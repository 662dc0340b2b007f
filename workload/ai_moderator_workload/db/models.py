"""Tables of the moderation service. PostgreSQL is the source of truth: a row
is committed before any work on it is queued."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeEngine, Uuid


def json_type(none_as_null: bool = False) -> TypeEngine[Any]:
    """JSON, stored as JSONB on PostgreSQL. With `none_as_null`, Python None is
    SQL NULL rather than JSON null, so `IS NULL` finds it whichever insert path
    (COPY or INSERT) wrote the row."""
    return JSON(none_as_null=none_as_null).with_variant(JSONB(none_as_null=none_as_null), "postgresql")


JsonType = json_type()
# SQLite only autoincrements INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A time given without a zone (`--since 2026-11-01`, `?since=...`) is UTC, as every stored time is."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    pass


class ContentStatus:
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # given up after max_task_attempts; failure_reason says why


class DeliveryStatus:
    """State of an item's callback (content.delivery_status); NULL without a callback."""
    PENDING = "pending"  # decided, not delivered yet (next_delivery_at says when the next attempt is due)
    DELIVERED = "delivered"
    FAILED = "failed"  # a final answer (4xx) or CALLBACK_MAX_AGE_SECONDS of retries; delivery_error says why


CALLBACK_URL_MAX_CHARS = 2048
NAME_MAX_CHARS = 64  # of tenant policies and blocklists


class Content(Base):
    __tablename__ = "content"
    __table_args__ = (
        UniqueConstraint("tenant", "external_id", name="uq_content_tenant_external_id"),
        Index("idx_content_external_id", "external_id"),
        Index("idx_content_created_at", "created_at"),
        Index("idx_content_pending", "status", "queued_at", postgresql_where="status = 'pending'"),
        Index("idx_content_delivery_due", "next_delivery_at", postgresql_where="delivery_status = 'pending'"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    tenant: Mapped[str] = mapped_column(String(64), nullable=False)
    external_id: Mapped[str | None] = mapped_column(String(255))
    text: Mapped[str] = mapped_column(Text, nullable=False)
    meta: Mapped[dict[str, Any] | None] = mapped_column("metadata", JsonType)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=ContentStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    failure_reason: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The decision is POSTed here once committed (callbacks.py).
    callback_url: Mapped[str | None] = mapped_column(String(CALLBACK_URL_MAX_CHARS))
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    delivery_attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    # X-AI-Moderator-Delivery: the same on every attempt, so receivers can dedupe.
    delivery_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # When the next attempt is due; while one runs, the end of its lease.
    next_delivery_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivery_error: Mapped[str | None] = mapped_column(String(512))
    # The tenant policy of the key at submission and the request's extra
    # blocklists, applied when a worker decides the item (policies.py).
    policy: Mapped[str | None] = mapped_column(String(NAME_MAX_CHARS))
    blocklists: Mapped[list[str] | None] = mapped_column(json_type(none_as_null=True))
    result: Mapped[ModerationResult | None] = relationship(back_populates="content", uselist=False, lazy="joined")
    review: Mapped[Review | None] = relationship(back_populates="content", uselist=False, lazy="joined")


class ModerationResult(Base):
    __tablename__ = "moderation_result"
    __table_args__ = (Index("idx_moderation_result_content_id", "content_id", unique=True),
                      Index("idx_moderation_result_created_at", "created_at"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    content_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("content.id", ondelete="CASCADE"), nullable=False)
    flagged: Mapped[bool] = mapped_column(Boolean, nullable=False)
    categories: Mapped[list[str]] = mapped_column(JsonType, nullable=False)
    scores: Mapped[dict[str, float]] = mapped_column(JsonType, nullable=False)
    spans: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, nullable=False)
    engine_version: Mapped[str] = mapped_column(String(128), nullable=False)
    policy_version: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    # The shadow policy's decision (pipeline.ShadowDecision); NULL when none was configured.
    shadow: Mapped[dict[str, Any] | None] = mapped_column(json_type(none_as_null=True))
    content: Mapped[Content] = relationship(back_populates="result")


class ApiKey(Base):
    __tablename__ = "api_key"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128), nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False, unique=True)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    is_admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    rate_limit_per_minute: Mapped[int | None] = mapped_column(Integer)
    daily_storage_quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Used when a submission names no callback_url.
    callback_url: Mapped[str | None] = mapped_column(String(CALLBACK_URL_MAX_CHARS))
    # Signs callbacks (HMAC-SHA256). Stored as is, not hashed: signing needs it. Shown once.
    callback_secret: Mapped[str | None] = mapped_column(String(128))
    # The tenant policy this key's requests are decided with; NULL: the stack's policy.
    policy: Mapped[str | None] = mapped_column(ForeignKey("tenant_policy.name", ondelete="RESTRICT"))


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (Index("idx_audit_event_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str | None] = mapped_column(String(255))
    details: Mapped[dict[str, Any] | None] = mapped_column(JsonType)


NOTE_MAX_CHARS = 2000
DESCRIPTION_MAX_CHARS = 1000
TERM_MAX_CHARS = 200


class Feedback(Base):
    """A key's report on a decision about its own content; several per item."""
    __tablename__ = "feedback"
    # content_id: the queue's EXISTS and the cascade from content; created_at: export-feedback --since.
    __table_args__ = (Index("idx_feedback_content_id", "content_id"), Index("idx_feedback_created_at", "created_at"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    content_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("content.id", ondelete="CASCADE"), nullable=False)
    tenant: Mapped[str] = mapped_column(String(64), nullable=False)
    key_id: Mapped[str] = mapped_column(String(128), nullable=False)
    verdict: Mapped[str] = mapped_column(String(16), nullable=False)
    categories: Mapped[list[str]] = mapped_column(JsonType, nullable=False)
    note: Mapped[str | None] = mapped_column(String(NOTE_MAX_CHARS))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class Review(Base):
    """A human's decision on an item, beside the model's (moderation_result,
    never changed); at most one per item, a later review replaces it."""
    __tablename__ = "review"
    # created_at: export-feedback --since. The primary key serves the queue's NOT EXISTS.
    __table_args__ = (Index("idx_review_created_at", "created_at"),)

    content_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("content.id", ondelete="CASCADE"), primary_key=True)
    reviewer: Mapped[str] = mapped_column(String(128), nullable=False)
    flagged: Mapped[bool] = mapped_column(Boolean, nullable=False)
    categories: Mapped[list[str]] = mapped_column(JsonType, nullable=False)
    note: Mapped[str | None] = mapped_column(String(NOTE_MAX_CHARS))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    content: Mapped[Content] = relationship(back_populates="review")


class TenantPolicy(Base):
    """A named policy layered on the stack's: its thresholds replace the
    stack's for the categories it lists, its allowlist and blocklists add to
    the stack's (policies.py)."""
    __tablename__ = "tenant_policy"

    name: Mapped[str] = mapped_column(String(NAME_MAX_CHARS), primary_key=True)
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX_CHARS))
    thresholds: Mapped[dict[str, float]] = mapped_column(JsonType, nullable=False)
    default_threshold: Mapped[float | None] = mapped_column(Float)
    allowlist: Mapped[list[str]] = mapped_column(JsonType, nullable=False)
    blocklists: Mapped[list[str]] = mapped_column(JsonType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class Blocklist(Base):
    __tablename__ = "blocklist"

    name: Mapped[str] = mapped_column(String(NAME_MAX_CHARS), primary_key=True)
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX_CHARS))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class BlocklistItem(Base):
    """A term of a blocklist; a term is on a list once, whatever its case."""
    __tablename__ = "blocklist_item"
    __table_args__ = (UniqueConstraint("blocklist", "term_key", name="uq_blocklist_item_term"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    blocklist: Mapped[str] = mapped_column(ForeignKey("blocklist.name", ondelete="CASCADE"), nullable=False)
    term: Mapped[str] = mapped_column(String(TERM_MAX_CHARS), nullable=False)
    term_key: Mapped[str] = mapped_column(String(TERM_MAX_CHARS), nullable=False)  # the term in lower case
    category: Mapped[str] = mapped_column(String(32), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow)


class PolicyRevision(Base):
    """One row, bumped in the transaction of every change to tenant policies,
    blocklists or a key's policy: each process compares it every second and
    reloads what changed (policies.PolicyCatalog)."""
    __tablename__ = "policy_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger, nullable=False)
