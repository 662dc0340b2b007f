"""Request dependencies: the app state, the authenticated, rate-limited caller,
and the charges against a key's limits."""

from __future__ import annotations

from typing import Annotated, Any, cast

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from ..apikeys import Principal
from ..engine.policy_rules import PolicyRules
from ..metrics import STORAGE_QUOTA_REFUSED
from ..quota import human_bytes
from ..settings import UNIT_CHARS
from .errors import ApiError, unavailable
from .schemas import ErrorResponse
from .state import AppState


async def get_state(request: Request) -> AppState:
    # async on purpose: FastAPI runs plain `def` dependencies in a thread pool.
    return cast(AppState, request.app.state.ai)


State = Annotated[AppState, Depends(get_state)]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "Missing API key: send 'Authorization: Bearer <key>'.", code="missing_api_key",
                       headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


async def authenticate(request: Request, state: AppState) -> Principal:
    """The caller's key, checked from the headers alone (the body is not needed,
    so KeyFirstMiddleware runs this before a body is read)."""
    token = _bearer(request)
    known, principal = state.verifier.cached(token)
    if not known:
        def load() -> Principal | None:
            with state.runtime.sessions() as session:
                return state.verifier.load(session, token)

        principal = await run_in_threadpool(load)
    if principal is None:
        raise ApiError(401, "Invalid or revoked API key.", code="invalid_api_key",
                       headers={"WWW-Authenticate": "Bearer"})
    return principal


async def authenticated(request: Request, state: State) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal if principal is not None else await authenticate(request, state)


async def charge(state: AppState, principal: Principal, units: int) -> None:
    """Take `units` from the key's token bucket, or answer 429. Routes that
    moderate text charge by work (limits.text_units); others one unit."""
    settings = state.runtime.settings
    per_minute = principal.rate_limit_per_minute if principal.rate_limit_per_minute is not None \
        else settings.rate_limit_per_minute
    if per_minute > 0:
        # A bucket never holds more than a minute's worth of units.
        burst = min(settings.rate_limit_burst, per_minute)
        verdict = await state.limiter.hit(principal.key_id, per_minute, burst, units)
        if not verdict.allowed:
            raise ApiError(429, f"Rate limit of {per_minute} units per minute exceeded for this key (a unit is one "
                                f"request, or one input per started {UNIT_CHARS} characters).",
                           code="rate_limit_exceeded", headers={"Retry-After": verdict.retry_after_header})


async def charge_storage(state: AppState, principal: Principal, size: int) -> None:
    """Count `size` bytes against the key's storage quota of the UTC day, or answer 429."""
    quota = principal.daily_storage_quota_bytes if principal.daily_storage_quota_bytes is not None \
        else state.runtime.settings.daily_storage_quota_bytes
    if quota > 0:
        verdict = await state.quota.take(principal.key_id, size, quota)
        if not verdict.allowed:
            STORAGE_QUOTA_REFUSED.inc()
            raise ApiError(429, f"This key stored {human_bytes(verdict.used)} of its {human_bytes(quota)} daily "
                                f"quota; this request needs {human_bytes(size)}. The quota resets at 00:00 UTC.",
                           code="daily_quota_exceeded", headers={"Retry-After": verdict.retry_after_header})


async def caller(request: Request, state: State) -> Principal:
    principal = await authenticated(request, state)
    await charge(state, principal, 1)
    return principal


Authenticated = Annotated[Principal, Depends(authenticated)]
Caller = Annotated[Principal, Depends(caller)]


async def admin(principal: Caller) -> Principal:
    if not principal.is_admin:
        raise ApiError(403, "This route needs an admin API key (ai-moderator apikey create --admin); this key is not "
                            "one.", code="admin_key_required")
    return principal


Admin = Annotated[Principal, Depends(admin)]

# The errors these dependencies (and request validation) answer, for a
# route's OpenAPI `responses`: FastAPI would document 422 in its own shape.
CALLER_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing, invalid or revoked API key."},
    422: {"model": ErrorResponse, "description": "A parameter or the body is invalid; `param` names it."},
    429: {"model": ErrorResponse, "description": "The key's rate limit is spent; retry after Retry-After seconds."},
}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    **CALLER_ERRORS, 403: {"model": ErrorResponse, "description": "The key is not an admin key."}}


def policy_rules(state: AppState, principal: Principal, blocklists: list[str]) -> PolicyRules | None:
    """The rules a request is decided with: its key's tenant policy and the
    blocklists it names (None: the stack's policy). An unknown blocklist is a
    422; a key's policy is always known (keys cannot be bound to a missing one)."""
    catalog = state.runtime.policies
    if not catalog.loaded:
        # Until then, a key bound to a tenant policy would be decided with the stack's.
        raise unavailable("the tenant policy catalog (not loaded yet)")
    unknown = catalog.unknown_blocklists(blocklists)
    if unknown:
        raise ApiError(422, f"No blocklist named {unknown[0]!r} (GET /api/v1/blocklists lists them).",
                       code="unknown_blocklist", param="blocklists")
    return catalog.rules(catalog.policy_of(principal.key_id), blocklists, strict=False)


def tenant_scope(principal: Principal) -> str | None:
    """Admins read every tenant's content; other keys only their own."""
    return None if principal.is_admin else principal.tenant
