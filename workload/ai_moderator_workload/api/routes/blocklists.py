"""Named blocklists (admin keys): create, describe, delete, add and remove
terms. A request applies them through its key's tenant policy or by naming
them (`blocklists`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from fastapi.responses import ORJSONResponse
from sqlalchemy.orm import Session

from ... import policy_admin
from ...db.models import BlocklistItem
from ...policies import MAX_BLOCKLIST_TERMS, NAME_PATTERN, UnknownName
from ..changes import change, delete, read
from ..deps import ADMIN_ERRORS, Admin, State
from ..errors import ApiError
from ..paging import Cursor, Limit, decode_cursor, encode_cursor
from ..policy_schemas import BlocklistList, BlocklistRequest, BlocklistView, TermsPage, TermsRequest, TermsView
from ..schemas import ErrorResponse

router = APIRouter(prefix="/api/v1/blocklists", tags=["Blocklists"])

ListName = Annotated[str, Path(pattern=NAME_PATTERN, description="The blocklist's name.")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "No such blocklist."}}


def _not_found(name: str) -> ApiError:
    return ApiError(404, f"No blocklist named {name!r}.", code="not_found")


def _view(info: policy_admin.BlocklistInfo) -> dict[str, Any]:
    row = info.row
    return {"name": row.name, "description": row.description, "items": info.items,
            "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat()}


def _term(item: BlocklistItem) -> dict[str, Any]:
    return {"id": str(item.id), "term": item.term, "category": item.category,
            "created_at": item.created_at.isoformat()}


@router.get("", response_model=BlocklistList, summary="All blocklists (admin keys)", responses=ADMIN_ERRORS)
async def list_blocklists(_: Admin, state: State) -> ORJSONResponse:
    found = await read(state, policy_admin.blocklists)
    return ORJSONResponse({"items": [_view(i) for i in found]})


@router.get("/{name}", response_model=BlocklistView, summary="One blocklist (admin keys)",
            responses={**ADMIN_ERRORS, **NOT_FOUND})
async def get_blocklist(name: ListName, _: Admin, state: State) -> ORJSONResponse:
    found = await read(state, lambda session: policy_admin.blocklist(session, name))
    if found is None:
        raise _not_found(name)
    return ORJSONResponse(_view(found))


@router.put("/{name}", response_model=BlocklistView, summary="Create a blocklist or change its description "
                                                                 "(admin keys)",
            responses={**ADMIN_ERRORS, 201: {"model": BlocklistView, "description": "Created."}})
async def put_blocklist(name: ListName, body: BlocklistRequest, principal: Admin, state: State) -> ORJSONResponse:
    info, created = await change(state, lambda session: policy_admin.put_blocklist(
        session, name, body.description, principal.key_id))
    return ORJSONResponse(_view(info), status_code=201 if created else 200)


@router.delete("/{name}", status_code=204, summary="Delete a blocklist and its terms (admin keys)",
               responses={**ADMIN_ERRORS, **NOT_FOUND, 400: {
                   "model": ErrorResponse, "description": "A tenant policy still attaches the blocklist."}})
async def delete_blocklist(name: ListName, principal: Admin, state: State) -> Response:
    return await delete(state, lambda session: policy_admin.delete_blocklist(session, name, principal.key_id),
                        _not_found(name), "blocklist_in_use")


@router.post("/{name}/items", response_model=TermsView, summary="Add terms to a blocklist (admin keys)",
             description=f"Up to 1,000 terms per request and {MAX_BLOCKLIST_TERMS} per list. A term already on "
                         "the list (in any case) takes the new spelling and category.",
             responses={**ADMIN_ERRORS, **NOT_FOUND, 400: {
                 "model": ErrorResponse, "description": f"The list would hold more than {MAX_BLOCKLIST_TERMS} "
                                                        "terms."}})
async def add_terms(name: ListName, body: TermsRequest, principal: Admin, state: State) -> ORJSONResponse:
    terms = [(t.term, t.category) for t in body.items]

    def add(session: Session) -> list[dict[str, Any]]:
        return [_term(i) for i in policy_admin.add_items(session, name, terms, principal.key_id)]

    try:
        stored = await change(state, add)
    except UnknownName:
        raise _not_found(name) from None
    except policy_admin.TooManyTerms as exc:
        raise ApiError(400, str(exc), code="blocklist_full", param="items") from None
    return ORJSONResponse({"items": stored})


@router.get("/{name}/items", response_model=TermsPage, summary="A blocklist's terms, oldest first (admin keys)",
            responses={**ADMIN_ERRORS, **NOT_FOUND})
async def list_terms(name: ListName, _: Admin, state: State, limit: Limit = 100,
                     cursor: Cursor = None) -> ORJSONResponse:
    after = None if cursor is None else decode_cursor(cursor, uuid.UUID)

    def page(session: Session) -> tuple[list[dict[str, Any]], str | None]:
        found, more = policy_admin.items(session, name, after, limit)
        return [_term(i) for i in found], encode_cursor(found[-1].created_at, found[-1].id) if more else None

    try:
        terms, next_cursor = await read(state, page)
    except UnknownName:
        raise _not_found(name) from None
    return ORJSONResponse({"items": terms, "next_cursor": next_cursor})


@router.delete("/{name}/items/{item_id}", status_code=204, summary="Remove a term from a blocklist (admin keys)",
               responses={**ADMIN_ERRORS, 404: {"model": ErrorResponse,
                                                "description": "No such blocklist, or no such term on it."}})
async def delete_term(name: ListName, item_id: uuid.UUID, principal: Admin, state: State) -> Response:
    try:
        deleted = await change(state, lambda session: policy_admin.delete_item(session, name, item_id,
                                                                               principal.key_id))
    except UnknownName:
        raise _not_found(name) from None
    if not deleted:
        raise ApiError(404, f"Blocklist {name!r} has no term with id {item_id}.", code="not_found")
    return Response(status_code=204)
