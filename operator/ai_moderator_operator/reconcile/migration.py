"""The migration gate: the API and workers move to the target version only
after its migration Job succeeded. One Job per (image, retry token) -- its
name is the idempotency key, so an operator restart never starts a second
one; a failed Job stays failed until the spec or the retry annotation
changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..api import MigrationStatus
from ..builders import Context, migration_job
from ..metrics import MIGRATION_DURATION
from .applier import Applier
from .jobs import JobOutcomes, parse_time


@dataclass
class Rollout:
    version: str | None  # the version the app runs (None before the first migration)
    status: MigrationStatus | None
    failed: bool = False
    running: bool = False


def _seconds(start: str, end: datetime) -> float:
    return max(0.0, (end - parse_time(start)).total_seconds())


async def migrate(applier: Applier, outcomes: JobOutcomes, ctx: Context, rolled: str | None,
                  previous: MigrationStatus | None, retry: str) -> Rollout:
    target = ctx.spec.version
    if rolled == target:
        return Rollout(rolled, previous)
    name = ctx.names.migration_job(ctx.image(target), retry)
    job = await applier.read("batch/v1", "Job", ctx.namespace, name)
    if job is None:
        manifest = migration_job(ctx, target)
        manifest["metadata"]["name"] = name
        job = await applier.apply(manifest)
    state = await outcomes.of(job)
    status = MigrationStatus(job=name, phase=state.phase, targetVersion=target, message=state.message or None,
                             completionTime=state.completed)
    if state.phase == "Succeeded":
        start = (job.get("status") or {}).get("startTime")
        if start and status.completionTime and (previous is None or previous.phase != "Succeeded"):
            MIGRATION_DURATION.observe(_seconds(start, status.completionTime))
        return Rollout(target, status)
    return Rollout(rolled, status, failed=state.phase == "Failed", running=state.phase == "Running")
