"""The migration gate on the in-memory cluster."""

from __future__ import annotations

from ai_moderator_operator.api import MigrationStatus
from ai_moderator_operator.reconcile.migration import migrate
from world import NS, World, context


async def test_a_new_version_gets_one_migration_job_and_keeps_the_old_version_until_it_succeeds(world: World) -> None:
    ctx = context(rolled="1.0.0", version="2.0.0")
    first = await migrate(world.applier, world.outcomes, ctx, "1.0.0", None, "")
    again = await migrate(world.applier, world.outcomes, ctx, "1.0.0", first.status, "")
    assert first.version == again.version == "1.0.0" and again.running
    assert world.kube.written("apply", "Job") == [("apply", "Job", first.status.job)]
    job = world.job(first.status.job)
    assert job["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":2.0.0")

    world.finish_job(first.status.job, ok=True)
    done = await migrate(world.applier, world.outcomes, ctx, "1.0.0", again.status, "")
    assert done.version == "2.0.0" and done.status.phase == "Succeeded" and not done.running
    assert done.status.completionTime is not None


async def test_a_failed_migration_is_reported_with_the_pods_last_line_and_not_retried(world: World) -> None:
    ctx = context(rolled="1.0.0", version="2.0.0")
    first = await migrate(world.applier, world.outcomes, ctx, "1.0.0", None, "")
    world.finish_job(first.status.job, ok=False, message="Job has reached the specified backoff limit")
    world.kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "m-1", "namespace": NS, "labels": {"batch.kubernetes.io/job-name": first.status.job}},
        "status": {"containerStatuses": [{"state": {"terminated": {
            "exitCode": 1, "reason": "Error", "finishedAt": "2026-11-26T03:00:00Z",
            "message": "alembic upgrade\nrelation \"content\" already exists\n"}}}]}})
    failed = await migrate(world.applier, world.outcomes, ctx, "1.0.0", first.status, "")
    assert failed.failed and failed.version == "1.0.0"
    assert 'relation "content" already exists' in failed.status.message
    await migrate(world.applier, world.outcomes, ctx, "1.0.0", failed.status, "")
    assert len(world.kube.written("apply", "Job")) == 1, "a failed migration must not start a second Job by itself"


async def test_the_retry_annotation_starts_a_new_job_once(world: World) -> None:
    ctx = context(rolled="1.0.0", version="2.0.0")
    first = await migrate(world.applier, world.outcomes, ctx, "1.0.0", None, "")
    world.finish_job(first.status.job, ok=False)
    retried = await migrate(world.applier, world.outcomes, ctx, "1.0.0", first.status, "try-2")
    await migrate(world.applier, world.outcomes, ctx, "1.0.0", retried.status, "try-2")
    assert retried.status.job != first.status.job and retried.running
    assert len(world.kube.written("apply", "Job")) == 2


async def test_nothing_happens_when_the_version_is_already_rolled_out(world: World) -> None:
    previous = MigrationStatus(job="shop-migrate-x", phase="Succeeded", targetVersion="1.0.0")
    rollout = await migrate(world.applier, world.outcomes, context(), "1.0.0", previous, "")
    assert rollout.version == "1.0.0" and rollout.status == previous and world.kube.writes == []
