"""Pruning: what the spec no longer asks for goes, data never does."""

from __future__ import annotations

from ai_moderator_operator.builders import desired_children
from ai_moderator_operator.reconcile.pruning import prune
from world import NS, World, context


async def test_children_the_spec_dropped_are_deleted_but_never_volumes(world: World) -> None:
    backup = {"schedule": "0 3 * * *"}
    with_ingress = context(api={"ingress": {"enabled": True, "host": "m.example.com"}}, backup=backup)
    for manifest in desired_children(with_ingress):
        await world.applier.ensure(manifest)
    without = context(backup=backup)
    desired = desired_children(without)
    await prune(world.applier, without, desired)
    assert world.kube.written("delete") == [("delete", "Ingress", "shop-api")]
    assert ("v1", "PersistentVolumeClaim", NS, "shop-backups") in world.kube.objects


async def test_only_the_last_three_migration_jobs_are_kept(world: World) -> None:
    for i in range(5):
        world.kube.put({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
            "name": f"shop-migrate-{i}", "namespace": NS, "creationTimestamp": f"2026-11-2{i}T00:00:00Z",
            "labels": {"app.kubernetes.io/instance": "shop", "app.kubernetes.io/component": "migration"}}})
    ctx = context()
    await prune(world.applier, ctx, desired_children(ctx))
    assert [name for _, _, name in world.kube.written("delete")] == ["shop-migrate-0", "shop-migrate-1"]
