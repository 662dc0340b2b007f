"""Backups as status: from the backup and test-restore CronJobs and their
Jobs -- last schedule, last success, last error, the outcome of the last
test restore -- plus the on-demand backup Job and the backup metrics."""

from __future__ import annotations

from ..api import BackupStatus
from ..builders import Context, backup_location, backup_now_job
from ..metrics import (
    BACKUP_FAILURES,
    BACKUP_INTERVAL,
    BACKUP_SCHEDULE_START,
    LAST_BACKUP_ATTEMPT,
    LAST_BACKUP_SUCCESS,
    LAST_VERIFY_SUCCESS,
    forget_stack,
)
from ..naming import COMPONENT_LABEL, Component
from ..schedule import interval_seconds
from .applier import Applier
from .jobs import JobOutcomes, finished_at, parse_time


async def backup_status(applier: Applier, outcomes: JobOutcomes, ctx: Context,
                        previous: BackupStatus | None) -> tuple[BackupStatus | None, bool]:
    """(status.backup, whether the latest backup failed)."""
    if ctx.spec.backup is None:
        forget_stack(ctx.namespace, ctx.name)
        return None, False
    labels = (ctx.namespace, ctx.name)
    BACKUP_INTERVAL.labels(*labels).set(interval_seconds(ctx.spec.backup.schedule))
    result = (previous or BackupStatus()).model_copy(update={"location": backup_location(ctx)})
    cron = applier.cached("batch/v1", "CronJob", ctx.namespace, ctx.names.backup)
    if cron and cron["metadata"].get("creationTimestamp"):
        BACKUP_SCHEDULE_START.labels(*labels).set(parse_time(cron["metadata"]["creationTimestamp"]).timestamp())
    if cron and (cron.get("status") or {}).get("lastScheduleTime"):
        result.lastScheduleTime = parse_time(cron["status"]["lastScheduleTime"])
    # Only backup and test-restore Jobs: a failed one costs a read of its pods.
    jobs = sorted(applier.owned(ctx.namespace, ctx.name, "Job", (Component.BACKUP, Component.BACKUP_VERIFY)),
                  key=finished_at)
    failed: bool | None = None
    failures = 0
    for job in jobs:
        state = await outcomes.of(job)
        if state.phase == "Running":
            continue
        name = job["metadata"]["name"]
        if job["metadata"]["labels"][COMPONENT_LABEL] == Component.BACKUP:
            failed = state.phase == "Failed"
            failures += failed
            LAST_BACKUP_ATTEMPT.labels(*labels).set(parse_time(finished_at(job)).timestamp())
            if state.completed and (result.lastSuccessTime is None or state.completed > result.lastSuccessTime):
                result.lastSuccessTime = state.completed
            if failed:
                result.lastError = f"{name}: {state.message}"
            continue
        ended = parse_time(finished_at(job))
        if result.lastVerifyTime is None or ended >= result.lastVerifyTime:
            result.lastVerifyTime = ended
            result.lastVerifyResult = state.phase
            result.lastVerifyError = f"{name}: {state.message}" if state.phase == "Failed" else None
            if state.phase == "Succeeded":
                LAST_VERIFY_SUCCESS.labels(ctx.namespace, ctx.name).set(ended.timestamp())
    BACKUP_FAILURES.labels(*labels).set(failures)
    if failed is False:
        result.lastError = None
    if result.lastSuccessTime is not None:
        LAST_BACKUP_SUCCESS.labels(ctx.namespace, ctx.name).set(result.lastSuccessTime.timestamp())
    return result, bool(failed) or (failed is None and result.lastError is not None)


async def backup_now(applier: Applier, ctx: Context, version: str, request: str) -> None:
    """One on-demand backup per request token."""
    await applier.ensure_once(backup_now_job(ctx, version, request))
