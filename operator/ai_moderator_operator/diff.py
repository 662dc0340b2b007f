"""Does a live object already hold what we would apply? Comparing before
applying is what makes an idle stack cost no API writes."""

from __future__ import annotations

from typing import Any

from .quantity import quantity


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
