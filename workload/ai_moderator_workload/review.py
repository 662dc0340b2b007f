"""Feedback on decisions, human review and its queue, and the export of both
as training examples. The model's decision (moderation_result) is never
changed: a review is stored beside it. Synchronous, like store.py: run in a
worker thread by the API and directly by the CLI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, tuple_, union
from sqlalchemy.orm import Session, contains_eager, defer, sessionmaker

from .audit import record
from .db.models import Content, Feedback, ModerationResult, Review, as_utc, utcnow
from .engine.categories import CATEGORIES, with_implied
from .engine.corpus import Example
from .engine.policy import Policy
from .metrics import FEEDBACK, REVIEW_OLDEST_AGE, REVIEW_QUEUE_DEPTH, REVIEWS
from .store import ContentRecord, to_record

Verdict = Literal["correct", "false_positive", "false_negative"]
# Verdicts that say the model was wrong: the item then needs a human.
REPORTED: Final = ("false_positive", "false_negative")
Outcome = Literal["agree", "overturn"]


class NotDecided(Exception):
    """The item has no decision yet (pending, or failed): nothing to judge."""


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    id: uuid.UUID
    content_id: uuid.UUID
    verdict: str
    categories: list[str]
    note: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class HumanDecision:
    flagged: bool
    categories: Sequence[str]
    note: str | None


def add_feedback(sessions: sessionmaker[Session], content_id: uuid.UUID, tenant: str | None, key_id: str,
                 verdict: Verdict, categories: Sequence[str], note: str | None) -> FeedbackRecord | None:
    """Store a key's feedback on a decided item; None when the item is not
    there for `tenant` (None: an admin, any tenant's)."""
    with sessions() as session, session.begin():
        query = (select(Content.tenant, ModerationResult.id).outerjoin(ModerationResult)
                 .where(Content.id == content_id))
        if tenant is not None:
            query = query.where(Content.tenant == tenant)
        found = session.execute(query).one_or_none()
        if found is None:
            return None
        if found[1] is None:
            raise NotDecided
        # The item's tenant, not the caller's: an admin's feedback belongs with the item.
        row = Feedback(content_id=content_id, tenant=found[0], key_id=key_id, verdict=verdict,
                       categories=list(categories), note=note)
        session.add(row)
        session.flush()
        stored = FeedbackRecord(row.id, content_id, row.verdict, list(row.categories), row.note, row.created_at)
    for category in categories or ("none",):
        FEEDBACK.labels(verdict, category).inc()
    return stored


def outcome(model_flagged: bool, model_categories: Sequence[str], human: HumanDecision) -> Outcome:
    agree = human.flagged == model_flagged and set(human.categories) == set(model_categories)
    return "agree" if agree else "overturn"


def _summary(decided_by: str, flagged: bool, categories: Sequence[str]) -> dict[str, Any]:
    return {"decided_by": decided_by, "flagged": flagged, "categories": list(categories)}


def record_review(sessions: sessionmaker[Session], content_id: uuid.UUID, reviewer: str,
                  decision: HumanDecision) -> ContentRecord | None:
    """Store (or replace) the human decision on an item and audit it, with
    the decision it replaced and the model's; never the text or the note,
    which may quote it. None when there is no such item."""
    with sessions() as session, session.begin():
        # Locked first and read after: a second reviewer waits here and then
        # sees the first one's review, so it replaces it (and audits it as
        # "before") instead of inserting a second one.
        if session.scalar(select(Content.id).where(Content.id == content_id).with_for_update()) is None:
            return None
        content = session.get_one(Content, content_id)
        model = content.result
        if model is None:
            raise NotDecided
        previous = content.review
        before = (_summary("model", model.flagged, model.categories) if previous is None
                  else _summary("human", previous.flagged, previous.categories))
        if previous is None:
            content.review = Review(reviewer=reviewer, flagged=decision.flagged, categories=list(decision.categories),
                                    note=decision.note, created_at=utcnow())
        else:
            previous.reviewer, previous.flagged = reviewer, decision.flagged
            previous.categories = list(decision.categories)
            previous.note, previous.created_at = decision.note, utcnow()
        verdict = outcome(model.flagged, model.categories, decision)
        record(session, reviewer, "review.record", str(content_id), {
            "tenant": content.tenant, "outcome": verdict,
            "model": _summary("model", model.flagged, model.categories), "before": before,
            "after": _summary("human", decision.flagged, decision.categories)})
        session.flush()
        reviewed = to_record(content)
    REVIEWS.labels(verdict).inc()
    return reviewed


def needs_review(policy: Policy, band: float) -> ColumnElement[bool]:
    """Decided items that need a human and have not had one: flagged, a
    category score within `band` of the policy's threshold, or reported wrong
    by feedback. Over content joined with its moderation_result."""
    r = ModerationResult
    near_threshold = [r.scores[c].as_float().between(policy.threshold(c) - band, policy.threshold(c) + band)
                      for c in CATEGORIES]
    reported = exists().where(Feedback.content_id == Content.id, Feedback.verdict.in_(REPORTED))
    return and_(or_(r.flagged, *near_threshold, reported), ~exists().where(Review.content_id == Content.id))


def queue(sessions: sessionmaker[Session], policy: Policy, band: float,
          after: tuple[datetime, uuid.UUID] | None, limit: int) -> tuple[list[ContentRecord], bool]:
    """Up to `limit` items of the queue, oldest first, after the (created_at,
    id) of the previous page's last item; and whether more follow."""
    # The band is the live policy's and REVIEW_BAND's, so it is computed here
    # rather than stored with each decision: a policy change re-sorts the
    # queue at once. The scan follows idx_content_created_at and stops after
    # limit + 1 matches.
    query = (select(Content).join(Content.result).options(contains_eager(Content.result), defer(Content.text))
             .where(needs_review(policy, band)).order_by(Content.created_at, Content.id).limit(limit + 1))
    if after is not None:
        query = query.where(tuple_(Content.created_at, Content.id) > tuple_(*after))
    with sessions() as session:
        items = [to_record(c) for c in session.scalars(query)]
    return items[:limit], len(items) > limit


def measure_queue(sessions: sessionmaker[Session], policy: Policy, band: float) -> tuple[int, float]:
    """The queue's depth and the age in seconds of its oldest item, also set
    as the gauges (see metrics.REVIEW_QUEUE_DEPTH for why here)."""
    query = (select(func.count(), func.min(Content.created_at)).select_from(Content).join(Content.result)
             .where(needs_review(policy, band)))
    with sessions() as session:
        depth, oldest = session.execute(query).one()
    # as_utc: SQLite gives times back without their zone.
    age = 0.0 if oldest is None else max(0.0, (utcnow() - as_utc(oldest)).total_seconds())
    REVIEW_QUEUE_DEPTH.set(depth)
    REVIEW_OLDEST_AGE.set(age)
    return depth, age


def training_labels(model: Sequence[str], verdict: str, reported: Sequence[str]) -> list[str]:
    """The categories that apply by an owner's feedback on the model's."""
    if verdict == "false_negative":
        return [c for c in CATEGORIES if c in model or c in reported]
    if verdict == "false_positive":
        if not reported:
            return []
        # A category goes with every one that implies it: a sub-category
        # left in would bring its parent back when the corpus is loaded.
        return [c for c in model if not set(with_implied([c])) & set(reported)]
    return list(model)


def training_example(text: str, labels: Sequence[str], model_flagged: bool, source: str) -> Example:
    # Flagged by the model and labelled clean: what LABELLING.md calls a hard negative.
    tags = ["hard-negative"] if model_flagged and not labels else []
    return Example.model_validate({"text": text, "labels": list(labels), "register": "other", "tags": tags,
                                   "source": source})


def corpus_line(example: Example) -> str:
    """One line of a corpus JSONL file, keys and unicode as the shipped files write them."""
    line = example.model_dump(mode="json", by_alias=True, exclude_none=True)
    if not line["tags"]:
        del line["tags"]
    return json.dumps(line, ensure_ascii=False)


def export_examples(sessions: sessionmaker[Session], since: datetime, until: datetime | None) -> Iterator[Example]:
    """A training example per item reviewed, or given feedback, in [since,
    until): labelled by its review if it has one, else by its latest feedback."""
    window = []
    for table in (Review, Feedback):
        in_window = select(table.content_id).where(table.created_at >= since)
        window.append(in_window if until is None else in_window.where(table.created_at < until))
    latest_feedback = (select(Feedback.id).where(Feedback.content_id == Content.id)
                       .order_by(Feedback.created_at.desc(), Feedback.id.desc()).limit(1)
                       .correlate(Content).scalar_subquery())
    query = (select(Content.id, Content.text, ModerationResult.flagged, ModerationResult.categories,
                    Review.categories.label("reviewed"), Feedback.verdict, Feedback.categories.label("reported"))
             .join(ModerationResult, ModerationResult.content_id == Content.id)
             .outerjoin(Review, Review.content_id == Content.id)
             .outerjoin(Feedback, Feedback.id == latest_feedback)
             .where(Content.id.in_(union(*window)))
             .order_by(Content.created_at, Content.id).execution_options(yield_per=500))
    with sessions() as session:
        for content_id, text, flagged, model, reviewed, verdict, reported in session.execute(query):
            if reviewed is not None:
                yield training_example(text, reviewed, flagged, f"review:{content_id}")
            else:
                yield training_example(text, training_labels(model, verdict, reported), flagged,
                                       f"feedback:{verdict}:{content_id}")
