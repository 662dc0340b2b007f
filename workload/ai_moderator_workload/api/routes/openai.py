"""`POST /v1/moderations`, compatible with OpenAI's moderation endpoint and SDK."""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import ORJSONResponse

from ...engine.categories import CATEGORIES
from ...store import Submission
from ..deps import Authenticated, State, policy_rules
from ..errors import ApiError
from ..schemas import ImagePart, OpenAIModerationRequest, OpenAIModerationResponse
from .limits import admit_texts

router = APIRouter(tags=["OpenAI-compatible"])

# Names OpenAI clients send; all are served by this engine.
MODEL_ALIASES = frozenset({"omni-moderation-latest", "omni-moderation-2024-09-26", "text-moderation-latest",
                           "text-moderation-stable", "text-moderation-007", "ai-moderator"})
_APPLIED = {c: ["text"] for c in CATEGORIES}


def _texts(body: OpenAIModerationRequest) -> list[str]:
    if isinstance(body.input, str):
        return [body.input]
    texts: list[str] = []
    for index, part in enumerate(body.input):
        if isinstance(part, ImagePart):
            raise ApiError(400, f"input[{index}] is an image; this model moderates text only.",
                           code="unsupported_input", param=f"input[{index}]")
        texts.append(part if isinstance(part, str) else part.text)
    return texts


@router.post("/v1/moderations", response_model=OpenAIModerationResponse,
             summary="Classify text (OpenAI moderation API)")
async def create_moderation(body: OpenAIModerationRequest, principal: Authenticated, state: State) -> ORJSONResponse:
    if body.model is not None and body.model not in MODEL_ALIASES:
        raise ApiError(400, f"Unknown model {body.model!r}; use one of {sorted(MODEL_ALIASES)} or omit it.",
                       code="model_not_found", param="model")
    texts = _texts(body)
    rules = policy_rules(state, principal, body.blocklists)
    await admit_texts(texts, principal, state)
    records = await state.batcher.submit([Submission(principal.tenant, t, rules=rules) for t in texts])
    results = []
    for record in records:
        assert record.result is not None
        flagged = set(record.result.categories)
        results.append({
            "flagged": record.result.flagged,
            "categories": {c: c in flagged for c in CATEGORIES},
            "category_scores": record.result.scores,
            "category_applied_input_types": _APPLIED,
        })
    return ORJSONResponse({"id": f"modr-{uuid.uuid4().hex}", "model": state.runtime.engine.engine_version,
                           "results": results})
