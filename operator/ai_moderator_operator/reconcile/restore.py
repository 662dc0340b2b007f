"""Restore from a backup file: the API and workers are held out of service
(the builders scale them to zero and suspend the scheduled Jobs), and once
no pod of theirs is left, terminating ones included, the restore Job runs.
Each file is restored once: its Job is the record, and a finished restore is
not redone."""

from __future__ import annotations

from ..api import RestoreStatus
from ..builders import Context, restore_job
from ..naming import COMPONENT_LABEL, Component
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


async def app_pods_left(applier: Applier, ctx: Context) -> int:
    """API and worker pods that still exist, terminating ones included (a
    Deployment's status does not count those, and a worker's sweeper can
    still write while it shuts down)."""
    left = 0
    for component in (Component.API, Component.WORKER):
        selector = f"app.kubernetes.io/instance={ctx.name},{COMPONENT_LABEL}={component}"
        left += len(await applier.kube.list("v1", "Pod", ctx.namespace, selector))
    return left


async def start_restore(applier: Applier, ctx: Context, version: str, request: str) -> None:
    """Once no API or worker pod is left, run the restore Job."""
    if await app_pods_left(applier, ctx) == 0:
        await applier.ensure_once(restore_job(ctx, version, request))
