"""Deletion: the final backup is waited for; the policy keeps or deletes data."""

from __future__ import annotations

from typing import Any

from ai_moderator_operator.kube import ApiError
from ai_moderator_operator.naming import Names
from ai_moderator_operator.reconcile.deletion import apply_deletion_policy
from world import NS, World

FINAL = Names("shop").final_backup_job("uid-shop")


def body(policy: str, final: bool = False, version: str | None = "1.0.0", uid: str = "uid-shop") -> dict[str, Any]:
    spec: dict[str, Any] = {"version": "1.0.0", "deletionPolicy": policy}
    if final:
        spec["backup"] = {"schedule": "0 3 * * *", "finalBackupOnDelete": True}
    return {"apiVersion": "moderation.ai-moderator.io/v1alpha1", "kind": "ModerationStack",
            "metadata": {"name": "shop", "namespace": NS, "uid": uid}, "spec": spec,
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
    assert wait is not None and wait.delay == 2 and f"waiting for the final backup Job {FINAL}" in wait.message
    assert world.kube.objects[(stack["apiVersion"], stack["kind"], NS, "shop")]["status"]["phase"] == "Deleting"
    world.finish_job(FINAL, ok=False, message="pg_dump failed")
    failed = await apply_deletion_policy(world.applier, world.outcomes, stack)
    assert failed is not None and failed.delay == 30 and "pg_dump failed" in failed.message
    assert world.kube.written("delete") == []
    world.kube.objects.pop(("batch/v1", "Job", NS, FINAL))
    world.cache.observe("DELETED", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": FINAL,
                                                                                         "namespace": NS}})
    await apply_deletion_policy(world.applier, world.outcomes, stack)
    world.finish_job(FINAL, ok=True)
    assert await apply_deletion_policy(world.applier, world.outcomes, stack) is None
    assert "shop-backups" not in {name for _, _, name in world.kube.written("delete")}


async def test_no_final_backup_without_a_rolled_out_version(world: World) -> None:
    assert await apply_deletion_policy(world.applier, world.outcomes, body("Retain", final=True, version=None)) is None
    assert world.kube.written("apply", "Job") == []


async def test_a_recreated_stack_takes_its_own_final_backup(world: World) -> None:
    first = body("Delete", final=True)
    world.kube.put(first)
    await apply_deletion_policy(world.applier, world.outcomes, first)
    world.finish_job(FINAL, ok=True)
    assert await apply_deletion_policy(world.applier, world.outcomes, first) is None
    second = body("Delete", final=True, uid="uid-shop-again")
    world.kube.put(second)
    wait = await apply_deletion_policy(world.applier, world.outcomes, second)
    assert wait is not None, "the first stack's finished Job must not count as this one's backup"
    assert len(world.kube.written("apply", "Job")) == 2


async def test_a_terminating_namespace_skips_the_final_backup_with_an_event(world: World) -> None:
    stack = body("Delete", final=True)
    world.kube.refuse["Job"] = ApiError(403, "Forbidden", f'jobs "{FINAL}" is forbidden: unable to create new '
                                        f'content in namespace {NS} because it is being terminated')
    assert await apply_deletion_policy(world.applier, world.outcomes, stack) is None
    [event] = [o for k, o in world.kube.objects.items() if k[1] == "Event"]
    assert event["reason"] == "FinalBackupSkipped" and "namespace is being deleted" in event["message"]
