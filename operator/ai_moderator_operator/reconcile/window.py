"""The maintenance window: outside it, a version change (with its migration
and quality gate) waits, and so does a policy change when the window says
includePolicy; the annotation apply-now lets them through at once. The first
rollout of a stack never waits: nothing serves yet."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from ..api import MaintenanceStatus, ModerationStackSpec
from ..maintenance import Window


@dataclass(frozen=True)
class Hold:
    version: bool = False
    policy: bool = False
    status: MaintenanceStatus | None = None


def window_hold(spec: ModerationStackSpec, rolled: str | None, apply_now: bool, now: datetime) -> Hold:
    settings = spec.maintenanceWindow
    if settings is None:
        return Hold()
    window = Window.of(settings.schedule, settings.duration, settings.timeZone)
    is_open = window.is_open(now)
    closed = not (is_open or apply_now)
    start = window.next_start(now)
    status = MaintenanceStatus(open=is_open, nextWindowStart=start and start.astimezone(UTC))
    return Hold(version=closed and rolled is not None and rolled != spec.version,
                policy=closed and settings.includePolicy, status=status)


def waiting(hold: Hold, version: str, policy_changes: bool) -> MaintenanceStatus | None:
    """The status block, saying what waits for the window."""
    if hold.status is None:
        return None
    parts = ([f"version {version}"] if hold.version else []) + (["the policy change"] if policy_changes else [])
    return hold.status.model_copy(update={"waiting": " and ".join(parts) or None})
