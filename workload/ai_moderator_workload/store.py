"""Persistence of content and decisions. Every function here is synchronous
and runs in a worker thread; the API and the Celery worker share it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
import psycopg
from sqlalchemy import (
    JSON,
    SQLColumnExpression,
    Table,
    delete,
    func,
    insert,
    literal_column,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from .audit import record
from .db.models import Content, ContentStatus, DeliveryStatus, ModerationResult, utcnow
from .engine.categories import CATEGORIES
from .engine.pipeline import Decision, Engine, ShadowDecision
from .engine.policy_rules import PolicyRules
from .metrics import CONTENT_FAILED, record_decisions
from .policies import PolicyCatalog

# Core tables: bulk inserts skip the ORM's per-row bookkeeping (hot path).
CONTENT = cast(Table, Content.__table__)
RESULT = cast(Table, ModerationResult.__table__)


@dataclass(slots=True)
class Submission:
    tenant: str
    text: str
    external_id: str | None = None
    meta: dict[str, Any] | None = None
    callback_url: str | None = None  # checked by the caller (callbacks.check_url)
    rules: PolicyRules | None = None  # the tenant's policy and the request's blocklists; None: the stack's


@dataclass(slots=True)
class ResultRecord:
    flagged: bool
    categories: list[str]
    scores: dict[str, float]
    spans: list[dict[str, Any]]
    engine_version: str
    policy_version: str
    created_at: datetime
    shadow: ShadowDecision | None


@dataclass(slots=True)
class ReviewRecord:
    """A human's decision (review table); the model's stays in ResultRecord."""
    flagged: bool
    categories: list[str]
    note: str | None
    reviewer: str  # the reviewer's key id
    created_at: datetime


@dataclass(slots=True)
class CallbackRecord:
    """Where an item's decision is POSTed and how that went (callbacks.py)."""
    url: str
    status: str | None  # None until decided, then DeliveryStatus
    attempts: int
    delivered_at: datetime | None
    error: str | None


@dataclass(slots=True)
class ContentRecord:
    id: uuid.UUID
    tenant: str
    external_id: str | None
    status: str
    created_at: datetime
    meta: dict[str, Any] | None
    result: ResultRecord | None
    existed: bool = False
    attempts: int = 0
    failure_reason: str | None = None
    review: ReviewRecord | None = None
    callback: CallbackRecord | None = None


@dataclass(slots=True)
class ShadowCounts:
    decisions: int
    live_flagged: int
    shadow_flagged: int
    agreeing: int  # decisions where live and shadow agree on flagged
    shadow_policy: str | None  # of the newest decision
    categories: dict[str, dict[str, int]]  # category: {"live": n, "shadow": n}, flagged by either


def new_ids(n: int) -> list[uuid.UUID]:
    """n random (version 4) UUIDs from one urandom call; uuid4() per row was
    a tenth of the hot path."""
    raw = int.from_bytes(os.urandom(16 * n), "big")
    mask, version_bits = (1 << 128) - 1, (0x4 << 76) | (0x2 << 62)
    clear = ~((0xF << 76) | (0x3 << 62)) & mask
    return [uuid.UUID(int=((raw >> (128 * i)) & mask & clear) | version_bits) for i in range(n)]


def _result_row(content_id: uuid.UUID, d: Decision, now: datetime) -> dict[str, Any]:
    # No id: the database fills it (gen_random_uuid() / the column default).
    return {"content_id": content_id, "flagged": d.flagged, "categories": d.flagged_categories,
            "scores": d.scores, "spans": d.spans, "engine_version": d.engine_version,
            "policy_version": d.policy_version, "created_at": now, "shadow": d.shadow}


def _result_record(d: Decision, now: datetime) -> ResultRecord:
    return ResultRecord(d.flagged, d.flagged_categories, d.scores, d.spans, d.engine_version, d.policy_version, now,
                        d.shadow)


def to_record(content: Content, existed: bool = False) -> ContentRecord:
    r = content.result
    result = None if r is None else ResultRecord(r.flagged, list(r.categories), dict(r.scores), list(r.spans),
                                                 r.engine_version, r.policy_version, r.created_at,
                                                 cast(ShadowDecision | None, r.shadow))
    h = content.review
    review = None if h is None else ReviewRecord(h.flagged, list(h.categories), h.note, h.reviewer, h.created_at)
    callback = None if content.callback_url is None else CallbackRecord(
        content.callback_url, content.delivery_status, content.delivery_attempts, content.delivered_at,
        content.delivery_error)
    return ContentRecord(content.id, content.tenant, content.external_id, content.status, content.created_at,
                         content.meta, result, existed, content.attempts, content.failure_reason, review, callback)


def bulk_insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """Many rows at once: COPY on PostgreSQL (several times faster than a
    multi-row INSERT, which the hot path felt), a Core INSERT elsewhere."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    columns = [c.name for c in table.columns if c.name in rows[0]]
    json_columns = {c.name for c in table.columns if isinstance(c.type, JSON)}
    raw = connection.connection.driver_connection
    assert raw is not None, "a checked-out connection has its driver connection"
    statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    try:
        with raw.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row([orjson.dumps(row[c]).decode() if c in json_columns and row.get(c) is not None
                                else row.get(c) for c in columns])
    except psycopg.Error as exc:
        # Same exception types as statements run through SQLAlchemy, so the
        # API maps an outage to 503 whichever path met it.
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc


def _insert_ignoring_duplicate(session: Session, row: dict[str, Any]) -> bool:
    """Insert a content row unless (tenant, external_id) exists; True if inserted."""
    dialect = session.get_bind().dialect.name
    insert_row = (postgresql.insert(CONTENT) if dialect == "postgresql" else sqlite.insert(CONTENT)).values(**row)
    stmt = insert_row.on_conflict_do_nothing(index_elements=["tenant", "external_id"]).returning(CONTENT.c.id)
    return session.execute(stmt).scalar() is not None


def _by_external_id(session: Session, tenant: str, external_id: str) -> Content | None:
    return session.scalar(select(Content).where(Content.tenant == tenant, Content.external_id == external_id))


def _existing(session: Session, item: Submission) -> ContentRecord:
    assert item.external_id is not None
    content = _by_external_id(session, item.tenant, item.external_id)
    if content is None:  # the conflicting row was deleted between our insert and this read
        raise LookupError(f"content with external_id {item.external_id!r} changed concurrently; retry")
    return to_record(content, existed=True)


def moderate_and_store(sessions: sessionmaker[Session], engine: Engine,
                       items: Sequence[Submission]) -> list[ContentRecord]:
    """Score a batch with one model call and store every text and decision in
    one transaction. Texts re-sent with a known external_id get their stored
    decision back instead of a second row."""
    now = utcnow()
    decisions = engine.moderate([i.text for i in items], [i.rules for i in items])
    records: list[ContentRecord | None] = [None] * len(items)
    content_rows: list[dict[str, Any]] = []
    result_rows: list[dict[str, Any]] = []
    with sessions() as session, session.begin():
        for index, (item, decision, content_id) in enumerate(zip(items, decisions, new_ids(len(items)), strict=True)):
            row = {"id": content_id, "tenant": item.tenant, "external_id": item.external_id, "text": item.text,
                   "metadata": item.meta, "status": ContentStatus.DONE, "attempts": 0, "created_at": now}
            if item.external_id is None:
                content_rows.append(row)
            elif not _insert_ignoring_duplicate(session, row):
                records[index] = _existing(session, item)
                continue
            result_rows.append(_result_row(content_id, decision, now))
            records[index] = ContentRecord(content_id, item.tenant, item.external_id, ContentStatus.DONE, now,
                                           item.meta, _result_record(decision, now))
        if content_rows:
            bulk_insert(session, CONTENT, content_rows)
        if result_rows:
            bulk_insert(session, RESULT, result_rows)
    record_decisions(decisions)
    return [r for r in records if r is not None]


def submit(sessions: sessionmaker[Session], item: Submission) -> ContentRecord:
    """Commit content for asynchronous moderation; idempotent on external_id."""
    now = utcnow()
    content_id = uuid.uuid4()
    row = {"id": content_id, "tenant": item.tenant, "external_id": item.external_id, "text": item.text,
           "metadata": item.meta, "status": ContentStatus.PENDING, "attempts": 0, "created_at": now, "queued_at": now,
           "callback_url": item.callback_url, "delivery_attempts": 0,
           # Names, not rules: the worker decides with them as they are then.
           "policy": item.rules.policy if item.rules else None,
           "blocklists": list(item.rules.extra) if item.rules and item.rules.extra else None}
    with sessions() as session, session.begin():
        if item.external_id is None:
            session.execute(insert(CONTENT), [row])
        elif not _insert_ignoring_duplicate(session, row):
            return _existing(session, item)
    callback = None if item.callback_url is None else CallbackRecord(item.callback_url, None, 0, None, None)
    return ContentRecord(content_id, item.tenant, item.external_id, ContentStatus.PENDING, now, item.meta, None,
                         callback=callback)


def get(sessions: sessionmaker[Session], content_id: uuid.UUID, tenant: str | None) -> ContentRecord | None:
    """A content item; tenant None (admin) sees every tenant's content."""
    with sessions() as session:
        query = select(Content).where(Content.id == content_id)
        if tenant is not None:
            query = query.where(Content.tenant == tenant)
        content = session.scalar(query)
        return None if content is None else to_record(content)


def find_external(sessions: sessionmaker[Session], tenant: str, external_id: str) -> ContentRecord | None:
    with sessions() as session:
        content = _by_external_id(session, tenant, external_id)
        return None if content is None else to_record(content)


def process(sessions: sessionmaker[Session], engine: Engine, content_id: uuid.UUID, max_attempts: int,
            on_callback: Callable[[uuid.UUID], None] | None = None, policies: PolicyCatalog | None = None) -> str:
    """Moderate one pending item. Safe to run twice or concurrently: the row
    lock and the status check make the second run a no-op. The attempt is
    counted in its own transaction first, so a task that always fails (and
    rolls its work back) still uses up its attempts; past `max_attempts` the
    item is marked failed with the last error, and nobody re-queues it.
    An item with a callback has its delivery made due in the decision's
    transaction, and `on_callback` queues it once that is committed (the
    sweeper delivers it if that message is lost). The item's tenant policy and
    blocklists are taken from `policies` as they are now; one deleted since
    the submission is left out rather than failing the item."""
    with sessions() as session, session.begin():
        content = _pending(session, content_id)
        if content is None:
            return "skipped"
        if content.attempts >= max_attempts:
            content.status = ContentStatus.FAILED
            content.failure_reason = (f"gave up after {content.attempts} attempts"
                                      + (f": {content.failure_reason}" if content.failure_reason else ""))[:512]
            CONTENT_FAILED.inc()
            return "failed"
        content.attempts += 1
    try:
        with sessions() as session, session.begin():
            content = _pending(session, content_id)
            if content is None:
                return "skipped"
            rules = None if policies is None else policies.rules(content.policy, content.blocklists or (), strict=False)
            decision = engine.moderate([content.text], [rules])[0]
            now = utcnow()
            session.execute(insert(RESULT), [_result_row(content.id, decision, now)])
            content.status = ContentStatus.DONE
            content.failure_reason = None
            has_callback = content.callback_url is not None
            if has_callback:
                content.delivery_status = DeliveryStatus.PENDING
                content.delivery_id = uuid.uuid4()  # stable across this item's attempts: the receivers' dedupe key
                content.next_delivery_at = now
    except Exception as exc:
        # The error's type and first line, never the content.
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:400]
        with sessions() as session, session.begin():
            session.execute(update(Content).where(Content.id == content_id).values(failure_reason=reason))
        raise
    record_decisions([decision])
    if has_callback and on_callback is not None:
        on_callback(content_id)
    return "flagged" if decision.flagged else "clean"


def _pending(session: Session, content_id: uuid.UUID) -> Content | None:
    return session.scalar(
        select(Content).where(Content.id == content_id, Content.status == ContentStatus.PENDING)
        .with_for_update(skip_locked=True, of=Content)
    )


def claim_stale_pending(sessions: sessionmaker[Session], older_than: timedelta, limit: int = 500) -> list[uuid.UUID]:
    """Ids of content pending for longer than `older_than`, stamped as queued
    now so the next sweep does not queue them again straight away."""
    now = utcnow()
    with sessions() as session, session.begin():
        ids = list(session.scalars(
            select(Content.id).where(Content.status == ContentStatus.PENDING,
                                     (Content.queued_at.is_(None)) | (Content.queued_at < now - older_than))
            .order_by(Content.created_at).limit(limit).with_for_update(skip_locked=True)
        ))
        if ids:
            session.execute(update(Content).where(Content.id.in_(ids)).values(queued_at=now))
    return ids


def cleanup(sessions: sessionmaker[Session], older_than: timedelta, batch_size: int = 1000,
            actor: str = "cleanup") -> int:
    """Delete content (and, by cascade, its results) older than the retention
    period, in batches so no transaction holds many locks for long."""
    cutoff = utcnow() - older_than
    total = 0
    while True:
        with sessions() as session, session.begin():
            ids = list(session.scalars(select(Content.id).where(Content.created_at < cutoff)
                                       .order_by(Content.created_at).limit(batch_size)))
            if not ids:
                break
            session.execute(delete(ModerationResult).where(ModerationResult.content_id.in_(ids)))
            session.execute(delete(Content).where(Content.id.in_(ids)))
            total += len(ids)
    with sessions() as session, session.begin():
        record(session, actor, "content.cleanup", None, {"deleted": total, "cutoff": cutoff.isoformat()})
    return total


def _array_elements(dialect: str, array: SQLColumnExpression[Any]) -> Any:
    """The elements of a JSON array of strings, as a table with one column `value`."""
    elements = func.jsonb_array_elements_text if dialect == "postgresql" else func.json_each
    return elements(array).table_valued("value")


def shadow_summary(sessions: sessionmaker[Session], seconds: int) -> ShadowCounts:
    """Live and shadow decisions of the last `seconds`, counted by the database
    in two queries (totals, then flags by category), however many rows."""
    r = ModerationResult
    window = (r.created_at >= utcnow() - timedelta(seconds=seconds), r.shadow.is_not(None))
    shadow_flagged = r.shadow["flagged"].as_boolean()
    # Not correlated: the newest row of the window, not of the outer query's row.
    newest = (select(r.shadow["policy_version"].as_string()).where(*window).order_by(r.created_at.desc()).limit(1)
              .correlate(None).scalar_subquery())
    totals = select(func.count(), func.count().filter(r.flagged), func.count().filter(shadow_flagged),
                    func.count().filter(r.flagged == shadow_flagged), newest).where(*window)
    with sessions() as session:
        decisions, live, shadow, agreeing, policy = session.execute(totals).one()
        dialect = session.get_bind().dialect.name
        by_source = []
        for source, array in (("live", r.categories), ("shadow", r.shadow["categories"])):
            category = _array_elements(dialect, array)
            by_source.append(select(literal_column(f"'{source}'"), category.c.value, func.count())
                             .select_from(r).join(category, true()).where(*window).group_by(category.c.value))
        counted = session.execute(union_all(*by_source)).all()
    categories: dict[str, dict[str, int]] = {}
    for source, name, n in counted:
        categories.setdefault(name, {"live": 0, "shadow": 0})[source] = n
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return ShadowCounts(decisions, live, shadow, agreeing, policy,
                         dict(sorted(categories.items(), key=lambda item: order.get(item[0], len(order)))))
