"""What happens when a stack is deleted: optionally one more backup (the
final backup Job, waited for), then the deletion policy. Retain: the data
Secret and backup volume lose their owner reference, so garbage collection
keeps them (database and Redis volumes are never owned). Delete: those
volumes go too -- except the backup volume holding a final backup.
Called by the kopf delete handler, which turns a `Wait` into a retry."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..api import API_VERSION, KIND, parse_spec
from ..builders import Context, final_backup_job
from ..kube import ApiError
from ..naming import Names
from ..status import deleting, now_iso
from .applier import Applier
from .jobs import JobOutcomes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Wait:
    """Deletion must wait: why, and when to look again."""

    message: str
    delay: float


async def final_backup(applier: Applier, outcomes: JobOutcomes, body: dict[str, Any]) -> Wait | None:
    meta = body["metadata"]
    version = (body.get("status") or {}).get("version")
    if version is None:
        log.info("no final backup of %s/%s: no version was ever rolled out", meta["namespace"], meta["name"])
        return None
    ctx = Context(meta["name"], meta["namespace"], meta["uid"], parse_spec(body.get("spec") or {}), version, "")
    name = ctx.names.final_backup_job(ctx.uid)
    try:
        job = await applier.ensure_once(final_backup_job(ctx, version))
    except ApiError as exc:
        if exc.status != 403 or "being terminated" not in exc.message:
            raise
        # The namespace is going: no Job can start in it, and waiting would
        # block its deletion forever. Say so where `kubectl get events` shows it.
        await _skipped_event(applier, body, f"final backup {name} not taken: the namespace is being deleted")
        return None
    state = await outcomes.of(job)
    if state.phase == "Succeeded":
        log.info("final backup of %s/%s done", ctx.namespace, ctx.name)
        return None
    if state.phase == "Failed":
        wait = Wait(f"the final backup Job {name} failed ({state.message}); deletion waits: delete "
                    "the Job to try again, or set spec.backup.finalBackupOnDelete to false to delete without it", 30)
    else:
        wait = Wait(f"waiting for the final backup Job {name} before deleting", 2)
    await applier.write_status(body, deleting(body.get("status") or {}, wait.message))
    return wait


async def _skipped_event(applier: Applier, body: dict[str, Any], message: str) -> None:
    meta = body["metadata"]
    stamp = now_iso()
    log.warning(message, extra={"stack": meta["name"], "namespace": meta["namespace"]})
    try:
        await applier.kube.create({
            "apiVersion": "v1", "kind": "Event", "metadata": {"generateName": f"{meta['name']}.",
                                                             "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": API_VERSION, "kind": KIND, "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"]},
            "reason": "FinalBackupSkipped", "message": message, "type": "Warning",
            "source": {"component": "ai-moderator-operator"}, "firstTimestamp": stamp, "lastTimestamp": stamp,
            "count": 1})
    except ApiError as exc:  # in a terminating namespace the Event may be refused too
        log.debug("could not post event: %s", exc)


async def apply_deletion_policy(applier: Applier, outcomes: JobOutcomes, body: dict[str, Any]) -> Wait | None:
    meta = body["metadata"]
    namespace, names = meta["namespace"], Names(meta["name"])
    spec = dict(body.get("spec") or {})
    final = bool((spec.get("backup") or {}).get("finalBackupOnDelete"))
    if final and (wait := await final_backup(applier, outcomes, body)) is not None:
        return wait
    retain = spec.get("deletionPolicy", "Retain") == "Retain"
    kept = ([("Secret", names.app_secret)] if retain else []) + (
        [("PersistentVolumeClaim", names.backups_pvc)] if retain or final else [])
    kube = applier.kube
    for kind, child in kept:
        if await kube.get("v1", kind, namespace, child) is not None:
            await kube.merge_patch("v1", kind, namespace, child, {"metadata": {"ownerReferences": None}})
    if not retain:
        claims = [f"data-{names.postgres}-0", f"data-{names.redis}-0"] + ([] if final else [names.backups_pvc])
        for claim in claims:
            await kube.delete("v1", "PersistentVolumeClaim", namespace, claim)
    log.info("deletion policy %s applied to %s/%s", "Retain" if retain else "Delete", namespace, meta["name"],
             extra={"kept": [c for _, c in kept]})
    return None
