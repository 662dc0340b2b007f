"""Cursor paging for list routes: keyset on (created_at, id), so a page
never repeats or skips an item however many rows come and go between
requests. The cursor is opaque to clients (base64 of the last item's key)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Query

from .errors import ApiError

Key = TypeVar("Key")

Limit = Annotated[int, Query(ge=1, le=200, description="Most items on one page.")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page; omit it for "
                                                                 "the first page.")]


def encode_cursor(created_at: datetime, key: object) -> str:
    raw = f"{created_at.isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, parse_key: Callable[[str], Key]) -> tuple[datetime, Key]:
    """The (created_at, key) a cursor holds, or a 422 naming the parameter."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, key = raw.split("|", 1)
        return datetime.fromisoformat(created_at), parse_key(key)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(422, "cursor is not a next_cursor this route returned; omit it to start from the first page.",
                       code="invalid_cursor", param="query.cursor") from None
