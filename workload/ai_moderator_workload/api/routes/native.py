"""The native API: synchronous moderation, asynchronous content submission
and lookup. Every decision is stored with its engine and policy version."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query
from fastapi.responses import ORJSONResponse
from starlette.concurrency import run_in_threadpool

from ... import store
from ...apikeys import Principal
from ...callbacks import CallbackRefused, check_url
from ...settings import Settings
from ...store import Submission
from ...views import view
from ..deps import Authenticated, Caller, State, policy_rules, tenant_scope
from ..errors import ApiError, unavailable
from ..schemas import ContentRequest, ContentView, ModerateRequest
from .limits import admit_texts

router = APIRouter(prefix="/api/v1", tags=["Moderation"])


@router.post("/moderate", response_model=ContentView, summary="Moderate one text now and store the decision")
async def moderate(body: ModerateRequest, principal: Authenticated, state: State) -> ORJSONResponse:
    rules = policy_rules(state, principal, body.blocklists)
    await admit_texts([body.text], principal, state, body.metadata)
    [record] = await state.batcher.submit([Submission(principal.tenant, body.text, body.external_id, body.metadata,
                                                      rules=rules)])
    return ORJSONResponse(view(record))


@router.post("/content", response_model=ContentView, status_code=202,
             summary="Submit content for asynchronous moderation",
             responses={200: {"description": "Already submitted with this external_id; the stored item."}})
async def submit_content(body: ContentRequest, principal: Authenticated, state: State) -> ORJSONResponse:
    if state.broker.up is False:
        # Before the charges: a request refused for the broker's sake costs the key nothing.
        raise unavailable("the broker")
    callback_url = await run_in_threadpool(_callback_url, body.callback_url, principal, state.runtime.settings)
    rules = policy_rules(state, principal, body.blocklists)
    await admit_texts([body.text], principal, state, body.metadata)
    item = Submission(principal.tenant, body.text, body.external_id, body.metadata, callback_url, rules)
    # Committed before it is queued: a lost message only delays it (sweeper).
    record = await run_in_threadpool(store.submit, state.runtime.sessions, item)
    if record.existed:
        return ORJSONResponse(view(record), status_code=200)
    await run_in_threadpool(state.dispatcher.dispatch, record.id)
    return ORJSONResponse(view(record), status_code=202, headers={"Location": f"/api/v1/content/{record.id}"})


def _callback_url(requested: str | None, principal: Principal, settings: Settings) -> str | None:
    """The request's callback URL, else the key's default, checked now (it
    resolves the host: run off the event loop) and again at every attempt."""
    url = requested or principal.callback_url
    if url is None:
        return None
    whose = "callback_url" if requested else "the key's default callback_url"
    if not principal.can_sign_callbacks:
        raise ApiError(422, "callback_url needs an API key with a callback secret: keys from `ai-moderator apikey "
                            "create` have one, older keys get one from `apikey rotate-callback-secret`.",
                       code="invalid_value", param="callback_url")
    try:
        return check_url(url, settings)
    except CallbackRefused as exc:
        raise ApiError(422, f"{whose} {exc}.", code="invalid_value", param="callback_url") from None


@router.get("/content/{content_id}", response_model=ContentView, summary="Content and its decision")
async def get_content(content_id: uuid.UUID, principal: Caller, state: State) -> ORJSONResponse:
    record = await run_in_threadpool(store.get, state.runtime.sessions, content_id, tenant_scope(principal))
    if record is None:
        raise ApiError(404, f"No content with id {content_id}.", code="not_found")
    return ORJSONResponse(view(record))


@router.get("/content", response_model=ContentView, summary="Look content up by your external_id")
async def find_content(principal: Caller, state: State,
                       external_id: str = Query(min_length=1, max_length=255)) -> ORJSONResponse:
    record = await run_in_threadpool(store.find_external, state.runtime.sessions, principal.tenant, external_id)
    if record is None:
        raise ApiError(404, f"No content with external_id {external_id!r} for this API key.", code="not_found")
    return ORJSONResponse(view(record))
