"""Children the spec no longer asks for go (only prunable kinds: never what
holds data); migration and quality-gate Jobs beyond the last three of each go too."""

from __future__ import annotations

import logging
from typing import Any

from ..builders import Context
from ..children import ChildCache
from ..naming import Component
from ..resources import PRUNABLE
from .applier import Applier

log = logging.getLogger(__name__)
KEPT_JOBS = 3  # for inspection


async def prune(applier: Applier, ctx: Context, desired: list[dict[str, Any]]) -> None:
    wanted = {ChildCache.key(m) for m in desired}
    for obj in list(applier.cache.owned_by(ctx.namespace, ctx.name)):
        if obj["kind"] in PRUNABLE and ChildCache.key(obj) not in wanted:
            log.info("pruning child no longer in the spec",
                     extra={"kind": obj["kind"], "child": obj["metadata"]["name"]})
            await applier.delete(obj)
    for component in (Component.MIGRATION, Component.QUALITY_GATE):
        jobs = sorted(applier.owned(ctx.namespace, ctx.name, "Job", (component,)),
                      key=lambda j: j["metadata"].get("creationTimestamp", ""))
        for job in jobs[:-KEPT_JOBS]:
            await applier.delete(job)
