"""Backups as status: from the backup and test-restore CronJobs and their
Jobs -- last schedule, last success, last error, the outcome of the last
test restore -- plus the on-demand backup Job and the backup metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from ..api import BackupStatus
from ..builders import Context, backup_location, backup_now_job
from ..metrics import (
    BACKUP_FAILURES,
    BACKUP_INTERVAL,
    BACKUP_SCHEDULE_START,
    BACKUP_SERIES,
    LAST_BACKUP_ATTEMPT,
    LAST_BACKUP_SUCCESS,
    LAST_VERIFY_SUCCESS,
    forget_stack,
)
from ..naming import COMPONENT_LABEL, Component
from ..schedule import interval_seconds
from .applier import Applier
from .jobs import JobOutcomes, finished_at, parse_time

# The same margin as the ModerationBackupNeverSucceeded alert: one missed run
# can be a slow night, two are a stack without backups.
OVERDUE_INTERVALS = 2


class BackupReport(NamedTuple):
    status: BackupStatus | None
    failed: bool  # the latest backup failed
    overdue: str | None = None  # why the stack has no recent enough backup, when it has none


def overdue_message(schedule_start: datetime | None, last_success: datetime | None, interval: float,
                    now: datetime) -> str | None:
    """Unset while a backup succeeded within OVERDUE_INTERVALS intervals (or the
    schedule began less than that ago); otherwise what is wrong, for status."""
    since = last_success or schedule_start
    limit = timedelta(seconds=OVERDUE_INTERVALS * interval)
    if since is None or now - since <= limit:
        return None
    every = f"{interval / 86400:g} d" if interval >= 86400 else f"{interval / 3600:g} h"
    if last_success is None:
        return (f"no backup has succeeded since the schedule began at {since.isoformat()} "
                f"(it runs about every {every})")
    return f"the last successful backup finished at {since.isoformat()}, more than {OVERDUE_INTERVALS} runs ago " \
           f"(about every {every})"


async def backup_status(applier: Applier, outcomes: JobOutcomes, ctx: Context,
                        previous: BackupStatus | None, now: datetime | None = None) -> BackupReport:
    if ctx.spec.backup is None:
        forget_stack(ctx.namespace, ctx.name, BACKUP_SERIES)
        return BackupReport(None, False)
    labels = (ctx.namespace, ctx.name)
    interval = interval_seconds(ctx.spec.backup.schedule)
    BACKUP_INTERVAL.labels(*labels).set(interval)
    result = (previous or BackupStatus()).model_copy(update={"location": backup_location(ctx)})
    cron = applier.cached("batch/v1", "CronJob", ctx.namespace, ctx.names.backup)
    schedule_start = None
    if cron and cron["metadata"].get("creationTimestamp"):
        schedule_start = parse_time(cron["metadata"]["creationTimestamp"])
        BACKUP_SCHEDULE_START.labels(*labels).set(schedule_start.timestamp())
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
    overdue = overdue_message(schedule_start, result.lastSuccessTime, interval, now or datetime.now(UTC))
    return BackupReport(result, bool(failed) or (failed is None and result.lastError is not None), overdue)


async def backup_now(applier: Applier, ctx: Context, version: str, request: str) -> None:
    """One on-demand backup per request token."""
    await applier.ensure_once(backup_now_job(ctx, version, request))
