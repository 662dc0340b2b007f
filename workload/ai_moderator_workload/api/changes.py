"""Running an admin change to policies, blocklists or keys: one transaction,
then this process's policy catalog refreshed at once, so the change applies
here from the next request (other processes follow within
POLICY_REFRESH_SECONDS)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ..policy_admin import InUse
from .errors import ApiError
from .state import AppState

T = TypeVar("T")


async def change(state: AppState, fn: Callable[[Session], T]) -> T:
    def run() -> T:
        sessions = state.runtime.sessions
        try:
            with sessions() as session, session.begin():
                result = fn(session)
        except IntegrityError:
            # Another request created the same name first: run again, against its row.
            with sessions() as session, session.begin():
                result = fn(session)
        state.runtime.policies.refresh(sessions)
        return result

    return await run_in_threadpool(run)


async def read(state: AppState, fn: Callable[[Session], T]) -> T:
    def run() -> T:
        with state.runtime.sessions() as session:
            return fn(session)

    return await run_in_threadpool(run)


async def delete(state: AppState, fn: Callable[[Session], bool], not_found: ApiError, in_use_code: str) -> Response:
    """204 when `fn` deleted the thing, `not_found` when there was none, and
    400 `in_use_code` when something still uses it (400, not 409: the API
    never answers 409, the OpenAI SDK would retry it)."""
    try:
        deleted = await change(state, fn)
    except InUse as exc:
        raise ApiError(400, str(exc), code=in_use_code) from None
    if not deleted:
        raise not_found
    return Response(status_code=204)
