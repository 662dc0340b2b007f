"""Does a live object already hold what we would apply? Comparing before
applying is what makes an idle stack cost no API writes."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_SUFFIX: dict[str, Decimal | int] = {
    "": 1, "m": Decimal("0.001"), "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def quantity(value: Any) -> Decimal | None:
    match = _QUANTITY.match(str(value))
    if not match:
        return None
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""]
    except InvalidOperation:
        return None


def _same_leaf(live: Any, desired: Any) -> bool:
    if live == desired:
        return True
    if isinstance(live, bool) or isinstance(desired, bool):
        return False
    if str(live) == str(desired):
        return True
    # The API server canonicalises quantities ("0.5" is stored as "500m").
    a, b = quantity(live), quantity(desired)
    return a is not None and a == b


def contains(live: Any, desired: Any) -> bool:
    """True when every field of `desired` is present and equal in `live`;
    fields the server or other controllers added are ignored."""
    if isinstance(desired, dict):
        # The API server drops empty lists and maps: absent equals empty.
        return isinstance(live, dict) and all(
            contains(live[k], v) if k in live else v in ([], {}) for k, v in desired.items())
    if isinstance(desired, list):
        return isinstance(live, list) and len(live) == len(desired) and all(
            contains(a, b) for a, b in zip(live, desired, strict=True))
    return _same_leaf(live, desired)
