"""Restore from a backup file: the API and workers are held out of service
(scaled to zero by the builders), and once no pod of theirs is left the
restore Job runs. Each file is restored once: its Job is the record, and a
finished restore is not redone."""

from __future__ import annotations

from ..api import RestoreStatus
from ..builders import Context, restore_job
from .applier import Applier
from .jobs import JobOutcomes


async def restore_state(applier: Applier, outcomes: JobOutcomes, ctx: Context, request: str,
                        previous: RestoreStatus | None) -> RestoreStatus:
    """Where the restore of `request` stands."""
    if previous and previous.request == request and previous.phase in ("Succeeded", "Failed"):
        return previous
    name = ctx.names.restore_job(request)
    job = await applier.read("batch/v1", "Job", ctx.namespace, name)
    if job is None:
        return RestoreStatus(request=request, job=name, phase="Running")
    state = await outcomes.of(job)
    return RestoreStatus(request=request, job=name, phase=state.phase, message=state.message or None,
                         completionTime=state.completed)


def app_scaled_down(applier: Applier, ctx: Context) -> bool:
    for deployment in (ctx.names.api, ctx.names.worker):
        live = applier.cached("apps/v1", "Deployment", ctx.namespace, deployment)
        if live and int((live.get("status") or {}).get("replicas", 0)) > 0:
            return False
    return True


async def start_restore(applier: Applier, ctx: Context, version: str, request: str) -> None:
    """Once no API or worker pod is left, run the restore Job."""
    if app_scaled_down(applier, ctx):
        await applier.ensure_once(restore_job(ctx, version, request))
