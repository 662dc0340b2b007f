"""Backup status from the backup and test-restore Jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ai_moderator_operator.builders import backup_cronjob, backup_now_job, verify_cronjob
from ai_moderator_operator.reconcile.backups import BackupReport, backup_now, backup_status
from ai_moderator_operator.reconcile.jobs import parse_time
from world import World, context

NOV_26 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)

BACKUP = {"schedule": "0 3 * * *", "verify": {"schedule": "0 5 1 * *"}}


async def test_no_backup_spec_no_backup_status(world: World) -> None:
    assert await backup_status(world.applier, world.outcomes, context(), None) == BackupReport(None, False)


async def test_success_then_failure_then_success(world: World) -> None:
    ctx = context(backup=BACKUP)
    await backup_now(world.applier, ctx, "1.0.0", "a")
    world.finish_job(ctx.names.backup_now_job("a"), ok=True, at="2026-11-26T03:00:00Z")
    status, failed, _ = await backup_status(world.applier, world.outcomes, ctx, None, NOV_26)
    assert not failed and status.lastSuccessTime.isoformat().startswith("2026-11-26T03:00:00")
    assert status.location == "/backups"

    await backup_now(world.applier, ctx, "1.0.0", "b")
    world.finish_job(ctx.names.backup_now_job("b"), ok=False, at="2026-11-26T04:00:00Z", message="pg_dump: error")
    status, failed, _ = await backup_status(world.applier, world.outcomes, ctx, status, NOV_26)
    assert failed and "pg_dump: error" in status.lastError
    assert status.lastSuccessTime.isoformat().startswith("2026-11-26T03:00:00"), "the last success is kept"

    await backup_now(world.applier, ctx, "1.0.0", "c")
    world.finish_job(ctx.names.backup_now_job("c"), ok=True, at="2026-11-26T05:00:00Z")
    status, failed, _ = await backup_status(world.applier, world.outcomes, ctx, status, NOV_26)
    assert not failed and status.lastError is None


async def test_a_test_restore_outcome_is_recorded(world: World) -> None:
    ctx = context(backup=BACKUP)
    job = verify_cronjob(ctx, "1.0.0")["spec"]["jobTemplate"]
    world.kube.put({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": "shop-backup-verify-1", "namespace": "prod", "labels": job["metadata"]["labels"]}, "spec": job["spec"]})
    world.finish_job("shop-backup-verify-1", ok=False, at="2026-11-26T05:00:00Z", message="row counts differ")
    status, failed, _ = await backup_status(world.applier, world.outcomes, ctx, None, NOV_26)
    assert status.lastVerifyResult == "Failed" and "row counts differ" in status.lastVerifyError
    assert not failed, "a failed test restore is not a failed backup"


async def test_backups_that_never_succeeded_are_overdue_after_two_intervals(world: World) -> None:
    ctx = context(backup=BACKUP)
    await world.applier.ensure(backup_cronjob(ctx, "1.0.0"))
    began = parse_time(world.kube.objects[("batch/v1", "CronJob", "prod", ctx.names.backup)]["metadata"][
        "creationTimestamp"])
    await backup_now(world.applier, ctx, "1.0.0", "a")
    world.finish_job(ctx.names.backup_now_job("a"), ok=False, message="pg_dump: connection refused")
    report = await backup_status(world.applier, world.outcomes, ctx, None, began + timedelta(hours=47))
    assert report.failed and report.overdue is None, "within two daily runs: failed, not yet overdue"
    report = await backup_status(world.applier, world.outcomes, ctx, None, began + timedelta(hours=49))
    assert report.overdue and "no backup has succeeded since the schedule began" in report.overdue


async def test_an_old_last_success_is_overdue_a_recent_one_is_not(world: World) -> None:
    ctx = context(backup=BACKUP)
    await backup_now(world.applier, ctx, "1.0.0", "a")
    world.finish_job(ctx.names.backup_now_job("a"), ok=True, at="2026-11-26T03:00:00Z")
    recent = await backup_status(world.applier, world.outcomes, ctx, None, NOV_26 + timedelta(days=1))
    assert recent.overdue is None
    old = await backup_status(world.applier, world.outcomes, ctx, None, NOV_26 + timedelta(days=3))
    assert old.overdue and "the last successful backup finished at 2026-11-26T03:00:00" in old.overdue


async def test_backup_now_runs_once_per_request(world: World) -> None:
    ctx = context(backup=BACKUP)
    for _ in range(3):
        await backup_now(world.applier, ctx, "1.0.0", "tok")
    assert world.kube.written("apply", "Job") == [("apply", "Job", backup_now_job(ctx, "1.0.0", "tok")["metadata"]["name"])]


async def test_backup_series_exist_only_while_the_stack_backs_up(world: World) -> None:
    from prometheus_client import REGISTRY

    from ai_moderator_operator.metrics import forget_stack

    def sample(name: str, stack: str = "shop") -> float | None:
        return REGISTRY.get_sample_value(name, {"namespace": "prod", "stack": stack})

    forget_stack("prod", "shop")  # the registry is process-wide: start from no series
    ctx = context(backup=BACKUP)
    await world.applier.ensure(backup_cronjob(ctx, "1.0.0"))
    await backup_now(world.applier, ctx, "1.0.0", "a")
    world.finish_job(ctx.names.backup_now_job("a"), ok=False, at="2026-11-26T04:00:00Z")
    await backup_status(world.applier, world.outcomes, ctx, None)
    assert sample("ai_moderator_backup_schedule_start_timestamp_seconds") is not None
    assert sample("ai_moderator_backup_failed_jobs") == 1
    assert sample("ai_moderator_last_backup_attempt_timestamp_seconds") is not None
    assert sample("ai_moderator_last_backup_success_timestamp_seconds") is None, "never succeeded: no success series"
    await backup_status(world.applier, world.outcomes, context(), None)  # spec.backup removed
    assert sample("ai_moderator_backup_interval_seconds") is None
    assert sample("ai_moderator_backup_schedule_start_timestamp_seconds") is None
