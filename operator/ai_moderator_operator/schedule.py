"""How often a cron schedule fires, roughly: enough to tell when a backup is
overdue (the ModerationBackupTooOld alert) without a cron library."""

from __future__ import annotations

MACROS = {"@yearly": 365 * 86400, "@annually": 365 * 86400, "@monthly": 31 * 86400, "@weekly": 7 * 86400,
          "@daily": 86400, "@midnight": 86400, "@hourly": 3600}


def _fires(field: str, size: int) -> int | None:
    """How many of a field's `size` values fire, or None for every value ('*')."""
    if field in ("*", "?"):
        return None
    count = 0
    for part in field.split(","):
        base, _, step = part.partition("/")
        if step:
            span = size if base in ("*", "") else size - int(base.split("-")[0])
            count += max(1, span // int(step))
            continue
        if "-" in base:
            lo, hi = base.split("-", 1)
            count += (int(hi) - int(lo) + 1) if lo.isdigit() and hi.isdigit() else 1
        else:
            count += 1
    return count


def interval_seconds(expression: str) -> float:
    """The longest expected gap between two runs of a 5-field cron schedule."""
    expression = expression.strip()
    if expression in MACROS:
        return float(MACROS[expression])
    minute, hour, dom, month, dow = expression.split()
    if month != "*":
        return 365 * 86400.0
    if dom != "*":
        return 31 * 86400.0
    if dow not in ("*", "?"):
        return 7 * 86400.0
    per_day = _fires(hour, 24)
    if per_day is None:
        return 3600.0
    return 86400.0 / max(1, per_day)
