"""The applier writes only differences, creates Jobs once, names refusals."""

from __future__ import annotations

import pytest

from ai_moderator_operator.builders import desired_children, migration_job
from ai_moderator_operator.kube import ApiError
from ai_moderator_operator.reconcile.applier import Rejected
from world import World, context


async def test_ensure_twice_writes_once(world: World) -> None:
    children = desired_children(context())
    for manifest in children + children:
        await world.applier.ensure(manifest)
    assert len(world.kube.written("apply")) == len(children)


async def test_a_job_is_created_once_and_never_updated(world: World) -> None:
    job = migration_job(context(), "1.0.0")
    await world.applier.ensure_once(job)
    job["spec"]["backoffLimit"] = 9
    await world.applier.ensure_once(job)
    assert len(world.kube.written("apply", "Job")) == 1


async def test_a_child_the_api_server_refuses_is_named(world: World) -> None:
    world.kube.refuse["Deployment"] = ApiError(422, "Invalid", 'spec.template.spec.nodeSelector: Invalid value: "a b"')
    deployment = next(m for m in desired_children(context()) if m["kind"] == "Deployment")
    with pytest.raises(Rejected, match=r"rejected Deployment shop-api: .*nodeSelector"):
        await world.applier.ensure(deployment)
