"""API keys seen and changed by admin keys: which tenant policy a key is
decided with and its default callback URL. Keys are created, rotated and
revoked with `ai-moderator apikey` (a token is shown once, on a terminal)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import ORJSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ... import apikeys
from ...callbacks import CallbackRefused, check_url
from ...policies import UnknownName
from ..changes import change, read
from ..deps import ADMIN_ERRORS, Admin, State
from ..errors import ApiError
from ..policy_schemas import KeyList, KeyUpdateRequest, KeyView
from ..schemas import ErrorResponse

router = APIRouter(prefix="/api/v1/keys", tags=["API keys"])


@router.get("", response_model=KeyList, summary="All API keys, without their tokens (admin keys)",
            responses=ADMIN_ERRORS)
async def list_keys(_: Admin, state: State) -> ORJSONResponse:
    found = await read(state, lambda session: [apikeys.describe(k) for k in apikeys.list_keys(session)])
    return ORJSONResponse({"items": found})


@router.patch("/{key_id}", response_model=KeyView, summary="Bind a key to a tenant policy, or set its default "
                                                            "callback URL (admin keys)",
              description="Only the fields sent change; null clears one. A policy change applies within "
                          "POLICY_REFRESH_SECONDS, a callback URL change within API_KEY_CACHE_SECONDS.",
              responses={**ADMIN_ERRORS, 404: {"model": ErrorResponse, "description": "No such active key."}})
async def update_key(key_id: str, body: KeyUpdateRequest, principal: Admin, state: State) -> ORJSONResponse:
    changes = body.model_dump(exclude_unset=True)
    if changes.get("callback_url") is not None:
        try:
            await run_in_threadpool(check_url, changes["callback_url"], state.runtime.settings)
        except CallbackRefused as exc:
            raise ApiError(422, f"callback_url {exc}.", code="invalid_value", param="callback_url") from None

    def update(session: Session) -> dict[str, Any] | None:
        key = apikeys.update_key(session, key_id, changes, principal.key_id)
        return None if key is None else apikeys.describe(key)

    try:
        updated = await change(state, update)
    except UnknownName as exc:
        raise ApiError(422, f"{exc}: create it first with PUT /api/v1/policies/{exc.name}.",
                       code="unknown_policy", param="policy") from None
    if updated is None:
        raise ApiError(404, f"No active API key with id or prefix {key_id!r}.", code="not_found")
    return ORJSONResponse(updated)
