"""Tenant policies (admin keys): thresholds, allowlist and blocklists layered
on the stack's policy, for the API keys bound to them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import ORJSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ... import policy_admin
from ...db.models import TenantPolicy
from ...policies import NAME_PATTERN, UnknownName
from ..changes import change, delete, read
from ..deps import ADMIN_ERRORS, Admin, State
from ..errors import ApiError
from ..policy_schemas import PolicyList, PolicyRequest, PolicyView
from ..schemas import ErrorResponse
from ..state import AppState

router = APIRouter(prefix="/api/v1/policies", tags=["Tenant policies"])

PolicyName = Annotated[str, Path(pattern=NAME_PATTERN, description="The policy's name.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "No such policy."}}


def _not_found(name: str) -> ApiError:
    return ApiError(404, f"No tenant policy named {name!r}.", code="not_found")


def _view(state: AppState, row: TenantPolicy, keys: list[str]) -> dict[str, Any]:
    rules = state.runtime.policies.rules(row.name, strict=False)
    return {"name": row.name, "description": row.description, "thresholds": row.thresholds,
            "default_threshold": row.default_threshold, "allowlist": row.allowlist, "blocklists": row.blocklists,
            "fingerprint": None if rules is None else rules.version, "keys": keys,
            "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat()}


async def _fresh(state: AppState) -> None:
    # Reads show the fingerprint of what they return, even if this process has not checked yet.
    await run_in_threadpool(state.runtime.policies.refresh, state.runtime.sessions)


@router.get("", response_model=PolicyList, summary="All tenant policies (admin keys)", responses=ADMIN_ERRORS)
async def list_policies(_: Admin, state: State) -> ORJSONResponse:
    await _fresh(state)
    found = await read(state, lambda session: [(p, policy_admin.bound_keys(session, p.name))
                                               for p in policy_admin.policies(session)])
    return ORJSONResponse({"items": [_view(state, row, keys) for row, keys in found]})


@router.get("/{name}", response_model=PolicyView, summary="One tenant policy (admin keys)",
            responses={**ADMIN_ERRORS, **NOT_FOUND})
async def get_policy(name: PolicyName, _: Admin, state: State) -> ORJSONResponse:
    await _fresh(state)

    def one(session: Session) -> tuple[TenantPolicy, list[str]] | None:
        row = session.get(TenantPolicy, name)
        return None if row is None else (row, policy_admin.bound_keys(session, name))

    found = await read(state, one)
    if found is None:
        raise _not_found(name)
    return ORJSONResponse(_view(state, *found))


@router.put("/{name}", response_model=PolicyView, summary="Create or replace a tenant policy (admin keys)",
            description="The whole policy: fields left out take their defaults. Keys bound to it decide with the "
                        "new version within POLICY_REFRESH_SECONDS on every API pod and worker.",
            responses={**ADMIN_ERRORS, 201: {"model": PolicyView, "description": "Created."}})
async def put_policy(name: PolicyName, body: PolicyRequest, principal: Admin, state: State) -> ORJSONResponse:
    thresholds: dict[str, float] = {str(c): t for c, t in body.thresholds.items()}
    fields = policy_admin.PolicyFields(body.description, thresholds, body.default_threshold, list(body.allowlist),
                                       list(body.blocklists))

    def put(session: Session) -> tuple[TenantPolicy, list[str], bool]:
        row, created = policy_admin.put_policy(session, name, fields, principal.key_id)
        return row, policy_admin.bound_keys(session, name), created

    try:
        row, keys, created = await change(state, put)
    except UnknownName as exc:
        raise ApiError(422, f"{exc}: create it first with PUT /api/v1/blocklists/{exc.name}.",
                       code="unknown_blocklist", param="blocklists") from None
    return ORJSONResponse(_view(state, row, keys), status_code=201 if created else 200)


@router.delete("/{name}", status_code=204, summary="Delete a tenant policy (admin keys)",
               responses={**ADMIN_ERRORS, **NOT_FOUND, 400: {
                   "model": ErrorResponse, "description": "Active API keys are still bound to the policy."}})
async def delete_policy(name: PolicyName, principal: Admin, state: State) -> Response:
    return await delete(state, lambda session: policy_admin.delete_policy(session, name, principal.key_id),
                        _not_found(name), "policy_in_use")
