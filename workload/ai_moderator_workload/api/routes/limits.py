"""Input limits shared by the moderation routes (configurable in settings)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ...apikeys import Principal
from ...quota import stored_bytes
from ...settings import UNIT_CHARS, Settings
from ..deps import charge, charge_storage
from ..errors import ApiError
from ..state import AppState


def check_texts(texts: Sequence[str], settings: Settings) -> None:
    if len(texts) > settings.max_inputs:
        raise ApiError(413, f"{len(texts)} inputs in one request; the limit is {settings.max_inputs}.",
                       code="too_many_inputs", param="input")
    for index, text in enumerate(texts):
        if len(text) > settings.max_text_chars:
            where = "input" if len(texts) == 1 else f"input[{index}]"
            raise ApiError(413, f"{where} has {len(text)} characters; the limit is {settings.max_text_chars}.",
                           code="input_too_long", param=where)
        if not text.strip():
            where = "input" if len(texts) == 1 else f"input[{index}]"
            raise ApiError(422, f"{where} is empty or only whitespace.", code="empty_input", param=where)


def text_units(texts: Sequence[str]) -> int:
    return sum(max(1, math.ceil(len(text) / UNIT_CHARS)) for text in texts)


async def admit_texts(texts: Sequence[str], principal: Principal, state: AppState,
                      metadata: dict[str, Any] | None = None) -> None:
    """Input limits first (a refused request costs nothing), then the charge by
    work, then the bytes the request will store against the key's daily quota
    (a request the rate limit refused is not counted there)."""
    check_texts(texts, state.runtime.settings)
    await charge(state, principal, text_units(texts))
    await charge_storage(state, principal, stored_bytes(texts, metadata))
