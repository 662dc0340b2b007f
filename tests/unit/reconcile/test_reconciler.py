"""Whole passes of the reconciler on the in-memory cluster: the order of the
steps (data, migration, app), the status it derives, and that a pass over a
converged stack writes nothing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from ai_moderator_operator.naming import BACKUP_NOW_ANNOTATION, PAUSED_ANNOTATION, RESTORE_ANNOTATION
from ai_moderator_operator.reconcile.capabilities import Capabilities
from ai_moderator_operator.reconciler import Degraded, Reconciler
from kube import ROOT
from world import NS, World

STACK_KEY = ("moderation.ai-moderator.io/v1alpha1", "ModerationStack", NS, "shop")


def add_stack(world: World, **spec: Any) -> None:
    example = yaml.safe_load((ROOT / "examples" / "moderationstack.yaml").read_text())
    world.kube.put({**example, "metadata": {"name": "shop", "namespace": NS, "generation": 1},
                    "spec": {**example["spec"], **spec}})


async def one_pass(world: World) -> tuple[dict[str, Any], float | None]:
    reconciler = Reconciler(world.applier, Capabilities(world.kube), world.outcomes)
    body = copy.deepcopy(world.kube.objects[STACK_KEY])
    status, delay = await reconciler.reconcile(body)
    await world.applier.write_status(body, status)
    return status, delay


def settle(world: World) -> None:
    """What the controllers would do: every Deployment and StatefulSet rolled out and ready."""
    for (version, kind, ns, name), obj in list(world.kube.objects.items()):
        replicas = obj.get("spec", {}).get("replicas", 1)
        if kind == "Deployment":
            world.kube.set_status(version, kind, ns, name, {
                "observedGeneration": obj["metadata"]["generation"], "replicas": replicas,
                "updatedReplicas": replicas, "readyReplicas": replicas})
        elif kind == "StatefulSet":
            world.kube.set_status(version, kind, ns, name, {"readyReplicas": replicas})


async def test_a_new_stack_migrates_then_rolls_out_then_is_ready_and_then_writes_nothing(world: World) -> None:
    add_stack(world)
    status, delay = await one_pass(world)
    assert status["phase"] == "Migrating" and delay is not None
    kinds = {kind for _, kind, _ in world.kube.written("apply")}
    assert "Deployment" not in kinds and {"StatefulSet", "Secret", "Job"} <= kinds, "no app before its migration"

    world.finish_job(status["migration"]["job"], ok=True)
    status, _ = await one_pass(world)
    deployments = [o for k, o in world.kube.objects.items() if k[1] == "Deployment"]
    assert len(deployments) == 2 and all(
        d["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.0") for d in deployments)
    assert status["phase"] == "Progressing" and status["version"] == "0.1.0"

    settle(world)
    status, delay = await one_pass(world)
    assert status["phase"] == "Ready" and delay is None
    writes = len(world.kube.writes)
    await one_pass(world)
    assert world.kube.writes[writes:] == [], "a pass over a converged stack must write nothing"


async def test_a_missing_secret_degrades_the_stack_and_names_it(world: World) -> None:
    add_stack(world, database={"external": {"urlSecretRef": {"name": "db", "key": "url"}}})
    with pytest.raises(Degraded) as raised:
        await one_pass(world)
    assert raised.value.status["phase"] == "Degraded"
    assert "Secret 'db' referenced by spec.database.external.urlSecretRef" in raised.value.status["conditions"][0]["message"]


async def test_a_paused_stack_is_reported_and_left_alone(world: World) -> None:
    add_stack(world)
    world.kube.objects[STACK_KEY]["metadata"]["annotations"] = {PAUSED_ANNOTATION: "true"}
    status, _ = await one_pass(world)
    assert status["phase"] == "Paused"
    assert [w for w in world.kube.writes if w[1] not in ("ModerationStack", "Event")] == []


async def test_a_restore_without_a_backup_location_is_refused_and_the_app_keeps_serving(world: World) -> None:
    add_stack(world, backup=None)
    world.kube.objects[STACK_KEY]["spec"].pop("backup")
    status, _ = await one_pass(world)
    world.finish_job(status["migration"]["job"], ok=True)
    await one_pass(world)
    world.kube.objects[STACK_KEY]["metadata"]["annotations"] = {RESTORE_ANNOTATION: "db-backup-x.sql.gz"}
    status, _ = await one_pass(world)
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "RestoreRefused" and "spec.backup is not set" in degraded["message"]
    api = world.kube.objects[("apps/v1", "Deployment", NS, "shop-api")]
    assert api["spec"]["replicas"] == 2, "the API must not be held for a restore that cannot run"
    assert not [k for k in world.kube.objects if k[1] == "Job" and "restore" in k[3]]


async def test_a_stack_whose_backups_never_succeeded_is_degraded_until_one_does(world: World) -> None:
    add_stack(world)
    status, _ = await one_pass(world)
    world.finish_job(status["migration"]["job"], ok=True)
    await one_pass(world)
    settle(world)
    status, _ = await one_pass(world)
    assert status["phase"] == "Ready", "a schedule that just began is not overdue"

    cron = world.kube.objects[("batch/v1", "CronJob", NS, "shop-backup")]
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    cron["metadata"]["creationTimestamp"] = three_days_ago.strftime("%Y-%m-%dT%H:%M:%SZ")
    world.kube.put(cron)
    status, _ = await one_pass(world)
    conditions = {c["type"]: c for c in status["conditions"]}
    assert status["phase"] == "Degraded" and conditions["Degraded"]["reason"] == "BackupOverdue"
    assert "no backup has succeeded since the schedule began" in conditions["Degraded"]["message"]
    assert conditions["BackupSucceeded"]["status"] == "False"
    assert conditions["BackupSucceeded"]["reason"] == "BackupOverdue"
    assert "previous version" not in conditions["Ready"]["message"], "the version is not the problem"

    world.kube.objects[STACK_KEY]["metadata"]["annotations"] = {BACKUP_NOW_ANNOTATION: "1"}
    await one_pass(world)
    backup_job = next(k[3] for k in world.kube.objects if k[1] == "Job" and "backup-now" in k[3])
    world.finish_job(backup_job, ok=True, at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    status, _ = await one_pass(world)
    assert status["phase"] == "Ready"
    assert {c["type"]: c for c in status["conditions"]}["BackupSucceeded"]["status"] == "True"
