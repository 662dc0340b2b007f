"""The JSON of a content item: what GET /api/v1/content/{id} answers and what
a callback POSTs, built in one place so the two never differ."""

from __future__ import annotations

from typing import Any

from .engine.categories import CATEGORIES
from .store import ContentRecord


def view(record: ContentRecord) -> dict[str, Any]:
    r, h, c = record.result, record.review, record.callback
    return {
        "id": str(record.id),
        "external_id": record.external_id,
        "status": record.status,
        "attempts": record.attempts,
        "failure_reason": record.failure_reason,
        "created_at": record.created_at.isoformat(),
        "metadata": record.meta,
        "result": None if r is None else {
            # JSONB keeps keys in its own order: scores are put back in the API's category order.
            "flagged": r.flagged, "categories": r.categories,
            "category_scores": {c: r.scores[c] for c in CATEGORIES if c in r.scores}, "spans": r.spans,
            "engine_version": r.engine_version, "policy_version": r.policy_version,
            "decided_at": r.created_at.isoformat(), "shadow": r.shadow,
        },
        "decided_by": None if r is None else "model" if h is None else "human",
        "review": None if h is None else {
            "flagged": h.flagged, "categories": h.categories, "note": h.note, "reviewed_by": h.reviewer,
            "reviewed_at": h.created_at.isoformat(),
        },
        "callback": None if c is None else {
            "url": c.url, "status": c.status, "attempts": c.attempts,
            "delivered_at": c.delivered_at.isoformat() if c.delivered_at else None, "error": c.error,
        },
    }
