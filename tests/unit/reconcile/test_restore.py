"""Restore: the app is held, the Job starts only once no app pod is left, and
a finished restore is not redone."""

from __future__ import annotations

from ai_moderator_operator.api import RestoreStatus
from ai_moderator_operator.reconcile.restore import restore_state, start_restore
from world import NS, World, context

FILE = "db-backup-20261126T030000Z.sql.gz"


async def test_the_restore_job_waits_for_every_app_pod_to_be_gone_terminating_ones_too(world: World) -> None:
    ctx = context(backup={"schedule": "0 3 * * *"})
    # The Deployment already reports 0 replicas: its terminating pods are not counted there.
    world.kube.put({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "shop-worker", "namespace": NS, "labels": {"app.kubernetes.io/instance": "shop"}},
        "status": {"replicas": 0}})
    world.kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "shop-worker-1", "namespace": NS, "deletionTimestamp": "2026-11-26T03:00:00Z",
        "labels": {"app.kubernetes.io/instance": "shop", "app.kubernetes.io/component": "worker"}}})
    await start_restore(world.applier, ctx, "1.0.0", FILE)
    assert world.kube.written("apply", "Job") == []
    await world.kube.delete("v1", "Pod", NS, "shop-worker-1")
    await start_restore(world.applier, ctx, "1.0.0", FILE)
    await start_restore(world.applier, ctx, "1.0.0", FILE)
    assert world.kube.written("apply", "Job") == [("apply", "Job", ctx.names.restore_job(FILE))]


async def test_restore_state_follows_its_job(world: World) -> None:
    ctx = context()
    waiting = await restore_state(world.applier, world.outcomes, ctx, FILE, None)
    assert waiting.phase == "Running" and waiting.job == ctx.names.restore_job(FILE)
    await start_restore(world.applier, ctx, "1.0.0", FILE)
    world.finish_job(ctx.names.restore_job(FILE), ok=False, message="restore failed")
    failed = await restore_state(world.applier, world.outcomes, ctx, FILE, waiting)
    assert failed.phase == "Failed" and "restore failed" in (failed.message or "")


async def test_a_finished_restore_is_not_redone(world: World) -> None:
    done = RestoreStatus(request=FILE, job="shop-restore-x", phase="Succeeded")
    assert await restore_state(world.applier, world.outcomes, context(), FILE, done) is done
    other = await restore_state(world.applier, world.outcomes, context(), "other.sql.gz", done)
    assert other.request == "other.sql.gz" and other.phase == "Running"


def test_scheduled_jobs_are_suspended_while_the_app_is_held() -> None:
    from dataclasses import replace

    from ai_moderator_operator.builders import desired_children

    ctx = context(backup={"schedule": "0 3 * * *", "verify": {"schedule": "0 5 1 * *"}})
    held = [c for c in desired_children(replace(ctx, hold_app=True)) if c["kind"] == "CronJob"]
    running = [c for c in desired_children(ctx) if c["kind"] == "CronJob"]
    assert len(held) == 3 and all(c["spec"]["suspend"] for c in held)
    assert not any(c["spec"]["suspend"] for c in running)
