"""The one way the reconcile steps touch the cluster: reads that prefer the
watch-fed child cache, server-side apply of whatever differs, create-once for
Jobs, deletes, and the status write. Every write keeps the cache current, so
the next read in the same pass sees it. Called by every step; calls `Kube`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..api import API_VERSION, KIND
from ..children import ChildCache
from ..diff import contains
from ..kube import ApiError, Kube
from ..naming import COMPONENT_LABEL
from ..status import status_patch, transition_event

log = logging.getLogger(__name__)


class Retry(Exception):
    """The stack cannot converge yet (e.g. a referenced Secret is missing);
    `reason` becomes the Degraded condition's reason."""

    def __init__(self, message: str, reason: str = "SecretNotFound") -> None:
        super().__init__(message)
        self.reason = reason


class Rejected(Exception):
    """The API server refused a child built from the spec: something the CRD
    schema cannot check (say, a label value in nodeSelector)."""


@dataclass
class Applier:
    kube: Kube
    cache: ChildCache

    def cached(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.cache.get(api_version, kind, namespace, name)

    async def read(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """From the cache, or (not seen by a watch yet) from the API server, so
        a warming cache never causes a write."""
        found = self.cache.get(api_version, kind, namespace, name)
        if found is None:
            found = await self.kube.get(api_version, kind, namespace, name)
        return found

    def owned(self, namespace: str, stack: str, kind: str, components: tuple[str, ...]) -> list[dict[str, Any]]:
        """Cached children of a stack of one kind and component."""
        return [o for o in self.cache.owned_by(namespace, stack) if o["kind"] == kind
                and (o["metadata"].get("labels") or {}).get(COMPONENT_LABEL) in components]

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        try:
            applied = await self.kube.apply(manifest)
        except ApiError as exc:
            if exc.status in (400, 422):
                meta = manifest["metadata"]
                raise Rejected(f"the API server rejected {manifest['kind']} {meta['name']}: {exc.message}") from exc
            raise
        self.cache.observe("MODIFIED", applied)
        return applied

    async def ensure(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Apply the manifest unless the live object already holds all of it."""
        meta = manifest["metadata"]
        live = await self.read(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])
        if live is not None and contains(live, manifest):
            return live
        applied = await self.apply(manifest)
        log.info("applied %s %s/%s", manifest["kind"], meta["namespace"], meta["name"],
                 extra={"kind": manifest["kind"], "child": meta["name"], "new": live is None})
        return applied

    async def ensure_once(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """Create a one-shot Job unless it exists; never update it (a Job's
        template is immutable, and a finished Job is a record to keep)."""
        meta = manifest["metadata"]
        live = await self.read(manifest["apiVersion"], manifest["kind"], meta["namespace"], meta["name"])
        if live is not None:
            return live
        created = await self.apply(manifest)
        log.info("created %s %s/%s", manifest["kind"], meta["namespace"], meta["name"],
                 extra={"kind": manifest["kind"], "child": meta["name"]})
        return created

    async def delete(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        await self.kube.delete(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
        self.cache.observe("DELETED", obj)

    async def write_status(self, body: dict[str, Any], status: dict[str, Any]) -> None:
        """Patch only what changed, and post an Event when the phase did."""
        meta = body["metadata"]
        old = body.get("status") or {}
        patch = status_patch(old, status)
        if patch is None:
            return
        await self.kube.merge_patch(API_VERSION, KIND, meta["namespace"], meta["name"],
                                    {"status": patch}, "status")
        event = transition_event(meta["name"], meta["namespace"], meta["uid"], old.get("phase"), status)
        if event is not None:
            try:
                await self.kube.create(event)
            except ApiError as exc:  # an Event is informative; never fail a reconcile over it
                log.debug("could not post event: %s", exc)
