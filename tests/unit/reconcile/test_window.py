"""Outside the maintenance window a version change (and, with includePolicy,
a policy change) waits while what serves keeps serving; apply-now releases it."""

from __future__ import annotations

from typing import Any

from ai_moderator_operator.naming import APPLY_NOW_ANNOTATION
from test_quality_gate import edit_policy, policy_served
from test_reconciler import STACK_KEY, add_stack, one_pass, settle
from world import NS, World

CLOSED = {"schedule": "0 0 1 1 *", "duration": "1m"}  # one minute a year
ALWAYS = {"schedule": "* * * * *", "duration": "1h"}


def set_spec(world: World, **spec: Any) -> None:
    stack = world.kube.objects[STACK_KEY]
    stack["spec"] = {**stack["spec"], **spec}
    stack["metadata"]["generation"] += 1


def migration_jobs(world: World) -> list[str]:
    return sorted(k[3] for k in world.kube.objects if k[1] == "Job" and "-migrate-" in k[3])


def api_image(world: World) -> str:
    return world.kube.objects[("apps/v1", "Deployment", NS, "shop-api")]["spec"]["template"]["spec"][
        "containers"][0]["image"]


async def ready_stack(world: World, window: dict[str, Any]) -> None:
    add_stack(world, maintenanceWindow=window)
    status, _ = await one_pass(world)
    assert status["phase"] == "Migrating", "the first rollout never waits"
    world.finish_job(status["migration"]["job"], ok=True)
    await one_pass(world)
    settle(world)
    status, _ = await one_pass(world)
    assert status["phase"] == "Ready" and status["maintenance"]["open"] is (window is ALWAYS)


async def test_a_version_change_waits_for_the_window_and_apply_now_releases_it(world: World) -> None:
    await ready_stack(world, CLOSED)
    jobs = migration_jobs(world)
    set_spec(world, version="0.2.0")
    status, _ = await one_pass(world)
    assert status["phase"] == "Pending" and status["maintenance"]["waiting"] == "version 0.2.0"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "Pending" and "waits for the maintenance window at 2027-01-01T00:00:00+00:00" in ready["message"]
    assert migration_jobs(world) == jobs and api_image(world).endswith(":0.1.0"), "no migration, the old version serves"

    world.kube.objects[STACK_KEY]["metadata"]["annotations"] = {APPLY_NOW_ANNOTATION: "true"}
    status, _ = await one_pass(world)
    assert status["phase"] == "Migrating" and len(migration_jobs(world)) == len(jobs) + 1


async def test_policy_changes_wait_only_when_the_window_includes_them(world: World) -> None:
    await ready_stack(world, CLOSED)
    edit_policy(world, allowlist=["kill the process", "shoot the messenger"])
    await one_pass(world)
    assert "shoot the messenger" in policy_served(world), "policy changes do not wait by default"

    set_spec(world, maintenanceWindow={**CLOSED, "includePolicy": True})
    await one_pass(world)
    served = policy_served(world)
    edit_policy(world, thresholds={"sexual": 0.9})
    status, _ = await one_pass(world)
    assert status["maintenance"]["waiting"] == "the policy change" and policy_served(world) == served

    set_spec(world, maintenanceWindow={**ALWAYS, "includePolicy": True})
    status, _ = await one_pass(world)
    assert "sexual: 0.9" in policy_served(world) and "waiting" not in status["maintenance"]
