"""Deletion: the final backup is waited for; the policy keeps or deletes data."""

from __future__ import annotations

from typing import Any

from ai_moderator_operator.reconcile.deletion import apply_deletion_policy
from world import NS, World


def body(policy: str, final: bool = False, version: str | None = "1.0.0") -> dict[str, Any]:
    spec: dict[str, Any] = {"version": "1.0.0", "deletionPolicy": policy}
    if final:
        spec["backup"] = {"schedule": "0 3 * * *", "finalBackupOnDelete": True}
    return {"apiVersion": "moderation.ai-moderator.io/v1alpha1", "kind": "ModerationStack",
            "metadata": {"name": "shop", "namespace": NS, "uid": "uid-shop"}, "spec": spec,
            "status": {"phase": "Ready", **({"version": version} if version else {})}}


def owned(world: World, kind: str, name: str) -> None:
    world.kube.put({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": NS,
                                                                   "ownerReferences": [{"uid": "uid-shop"}]}})


def owners(world: World, kind: str, name: str) -> Any:
    return world.kube.objects[("v1", kind, NS, name)]["metadata"].get("ownerReferences")


async def test_retain_orphans_the_data_secret_and_backup_volume(world: World) -> None:
    owned(world, "Secret", "shop-app")
    owned(world, "PersistentVolumeClaim", "shop-backups")
    assert await apply_deletion_policy(world.applier, world.outcomes, body("Retain")) is None
    assert owners(world, "Secret", "shop-app") is None and owners(world, "PersistentVolumeClaim", "shop-backups") is None
    assert world.kube.written("delete") == []


async def test_delete_removes_the_data_volumes(world: World) -> None:
    assert await apply_deletion_policy(world.applier, world.outcomes, body("Delete")) is None
    assert {name for _, _, name in world.kube.written("delete")} == {
        "data-shop-postgres-0", "data-shop-redis-0", "shop-backups"}


async def test_deletion_waits_for_the_final_backup_and_keeps_its_volume(world: World) -> None:
    stack = body("Delete", final=True)
    world.kube.put(stack)
    wait = await apply_deletion_policy(world.applier, world.outcomes, stack)
    assert wait is not None and wait.delay == 2 and "waiting for the final backup Job shop-final-backup" in wait.message
    assert world.kube.objects[(stack["apiVersion"], stack["kind"], NS, "shop")]["status"]["phase"] == "Deleting"
    world.finish_job("shop-final-backup", ok=False, message="pg_dump failed")
    failed = await apply_deletion_policy(world.applier, world.outcomes, stack)
    assert failed is not None and failed.delay == 30 and "pg_dump failed" in failed.message
    assert world.kube.written("delete") == []
    world.kube.objects.pop(("batch/v1", "Job", NS, "shop-final-backup"))
    world.cache.observe("DELETED", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "shop-final-backup",
                                                                                         "namespace": NS}})
    await apply_deletion_policy(world.applier, world.outcomes, stack)
    world.finish_job("shop-final-backup", ok=True)
    assert await apply_deletion_policy(world.applier, world.outcomes, stack) is None
    assert "shop-backups" not in {name for _, _, name in world.kube.written("delete")}


async def test_no_final_backup_without_a_rolled_out_version(world: World) -> None:
    assert await apply_deletion_policy(world.applier, world.outcomes, body("Retain", final=True, version=None)) is None
    assert world.kube.written("apply", "Job") == []
