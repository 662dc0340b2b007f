"""Feedback from content owners and human review by admins: the queue of
items that need a human, and the decision that overrides the model's."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from ... import review
from ...views import view
from ..deps import ADMIN_ERRORS, CALLER_ERRORS, Admin, Caller, State, tenant_scope
from ..errors import ApiError
from ..paging import Cursor, Limit, decode_cursor, encode_cursor
from ..schemas import ContentView, ErrorResponse, FeedbackRequest, FeedbackView, ReviewQueuePage, ReviewRequest

router = APIRouter(prefix="/api/v1", tags=["Feedback and review"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {
    "model": ErrorResponse, "description": "No such content among the key's own (an admin key's: among all)."}}
NOT_DECIDED: dict[int | str, dict[str, Any]] = {400: {
    "model": ErrorResponse, "description": "The content is not decided yet (pending or failed)."}}


def _not_found(content_id: uuid.UUID) -> ApiError:
    return ApiError(404, f"No content with id {content_id}.", code="not_found")


def _not_decided(content_id: uuid.UUID) -> ApiError:
    # 400, not 409: the API never answers 409 (the OpenAI SDK would retry it).
    return ApiError(400, f"Content {content_id} has no decision yet (still pending, or failed): there is nothing "
                         "to judge; send this once its status is done.", code="not_decided")


@router.post("/content/{content_id}/feedback", response_model=FeedbackView, status_code=201,
             summary="Tell whether the decision on your content was right",
             description="By the key that submitted the content (or an admin key). An item may get several "
                         "feedbacks; each is kept, and the latest one labels the item in `export-feedback`. A "
                         "false_positive or false_negative puts the item in the review queue.",
             responses={**CALLER_ERRORS, **NOT_FOUND, **NOT_DECIDED})
async def add_feedback(content_id: uuid.UUID, body: FeedbackRequest, principal: Caller,
                       state: State) -> ORJSONResponse:
    try:
        stored = await run_in_threadpool(review.add_feedback, state.runtime.sessions, content_id,
                                         tenant_scope(principal), principal.key_id, body.verdict, body.categories,
                                         body.note)
    except review.NotDecided:
        raise _not_decided(content_id) from None
    if stored is None:
        raise _not_found(content_id)
    return ORJSONResponse({"id": str(stored.id), "content_id": str(stored.content_id), "verdict": stored.verdict,
                           "categories": stored.categories, "note": stored.note,
                           "created_at": stored.created_at.isoformat()}, status_code=201)


@router.get("/review", response_model=ReviewQueuePage, summary="Items that need a human review (admin keys)",
            description="Decided items without a human review that are flagged, have a category score within "
                        "REVIEW_BAND of the live policy's threshold, or were reported false_positive or "
                        "false_negative; every tenant's, oldest first. Reading the first page also refreshes "
                        "the queue's metrics.",
            responses=ADMIN_ERRORS)
async def review_queue(_: Admin, state: State, limit: Limit = 50, cursor: Cursor = None) -> ORJSONResponse:
    after = None if cursor is None else decode_cursor(cursor, uuid.UUID)
    policy, band = state.runtime.engine.policy, state.runtime.settings.review_band
    items, more = await run_in_threadpool(review.queue, state.runtime.sessions, policy, band, after, limit)
    if after is None:
        await run_in_threadpool(review.measure_queue, state.runtime.sessions, policy, band)
    page: dict[str, Any] = {"items": [view(i) for i in items], "next_cursor": None}
    if more:
        page["next_cursor"] = encode_cursor(items[-1].created_at, items[-1].id)
    return ORJSONResponse(page)


@router.post("/review/{content_id}", response_model=ContentView, summary="Record a human decision (admin keys)",
             description="Overrides the model's decision: the item then reports `decided_by: human` and this "
                         "`review`, with the model's `result` unchanged. A second review replaces the first; "
                         "every review is audited (GET /api/v1/audit).",
             responses={**ADMIN_ERRORS, **NOT_FOUND, **NOT_DECIDED})
async def review_item(content_id: uuid.UUID, body: ReviewRequest, principal: Admin, state: State) -> ORJSONResponse:
    decision = review.HumanDecision(body.flagged, body.categories, body.note)
    try:
        reviewed = await run_in_threadpool(review.record_review, state.runtime.sessions, content_id,
                                           principal.key_id, decision)
    except review.NotDecided:
        raise _not_decided(content_id) from None
    if reviewed is None:
        raise _not_found(content_id)
    return ORJSONResponse(view(reviewed))
