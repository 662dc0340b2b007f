"""The shadow policy: a summary of live versus shadow decisions over the last
hour, asked of the stack's API through the API server's Service proxy (at
most every few minutes: each answer is a status write), and promotion of the
shadow to the live policy when the promote-shadow annotation asks for it."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from ..api import API_VERSION, KIND, ShadowStatus
from ..builders import Context
from ..kube import ApiError, Kube
from ..status import status_patch

log = logging.getLogger(__name__)
SUMMARY_SECONDS = 3600
REFRESH = timedelta(minutes=5)


def _rate(part: int | None, whole: int) -> float | None:
    return None if part is None or not whole else round(part / whole, 4)


async def shadow_status(kube: Kube, ctx: Context, previous: ShadowStatus | None, now: datetime) -> ShadowStatus | None:
    promoted = previous.promoted if previous else None
    if ctx.spec.shadowPolicy is None:
        return ShadowStatus(promoted=promoted) if promoted else None
    # Until there are numbers, ask on every pass: a new shadow policy shows its first ones within a minute.
    if previous is not None and previous.decisions and previous.observedAt and now - previous.observedAt < REFRESH:
        return previous
    try:
        summary = await kube.service_get(ctx.namespace, ctx.names.api, "http", "/shadow/summary",
                                         {"seconds": str(SUMMARY_SECONDS)})
    except (ApiError, aiohttp.ClientError, TimeoutError) as exc:
        failed = ShadowStatus(observedAt=now, windowSeconds=SUMMARY_SECONDS, promoted=promoted,
                              message=f"the API did not answer the summary: {str(exc)[:200]}")
        return previous if previous is not None and _same(previous, failed) else failed
    summary = summary or {}
    decisions = int(summary.get("decisions") or 0)
    fresh = ShadowStatus(observedAt=now, windowSeconds=SUMMARY_SECONDS, decisions=decisions,
                         liveFlagRate=_rate(summary.get("liveFlagged"), decisions),
                         shadowFlagRate=_rate(summary.get("shadowFlagged"), decisions),
                         agreement=summary.get("agreement"), policy=summary.get("shadowPolicy"), promoted=promoted)
    return previous if previous is not None and _same(previous, fresh) else fresh


def _same(a: ShadowStatus, b: ShadowStatus) -> bool:
    """The same numbers: keeping the old block (and its time) saves a status write."""
    return a.model_dump(exclude={"observedAt"}) == b.model_dump(exclude={"observedAt"})


def promoted_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """spec.policy and spec.shadowPolicy after promotion: the shadow, with the
    live allowlist and engine (which it shared), becomes the policy."""
    policy = dict(spec.get("policy") or {})
    live = {k: policy[k] for k in ("allowlist", "engine") if k in policy}
    return {"policy": {**spec["shadowPolicy"], **live}}


async def promote_shadow(kube: Kube, body: dict[str, Any], request: str, status: ShadowStatus | None
                         ) -> ShadowStatus | None:
    """Carry out a promote-shadow request once (its value is the token)."""
    if not request or (status is not None and status.promoted == request):
        return status
    meta, spec = body["metadata"], body.get("spec") or {}
    if spec.get("shadowPolicy"):
        before = {"policy": spec.get("policy"), "shadowPolicy": spec["shadowPolicy"]}
        patch = status_patch(before, promoted_spec(spec))
        await kube.merge_patch(API_VERSION, KIND, meta["namespace"], meta["name"], {"spec": patch})
        log.info("shadow policy promoted to the live policy", extra={"stack": meta["name"],
                                                                      "namespace": meta["namespace"]})
    return (status or ShadowStatus()).model_copy(update={"promoted": request})
