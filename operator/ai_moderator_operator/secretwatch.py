"""Watches of the user Secrets that stacks reference (a database URL, S3
credentials): one watch per Secret, narrowed to its name by a field selector
on the server, so the operator never receives the other Secrets of a
namespace. The Secrets it generates carry the managed-by label and are
watched with the other children."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import aiohttp

from .kube import ApiError

log = logging.getLogger(__name__)

SecretKey = tuple[str, str]  # namespace, name
# After an error; a refusal (RBAC) is not going to change in seconds.
RETRY_SECONDS = 5.0
FORBIDDEN_RETRY_SECONDS = 60.0


class Watcher(Protocol):
    def watch(self, api_version: str, kind: str, namespace: str, field_selector: str,
              resource_version: str | None = None) -> AsyncIterator[dict[str, Any]]: ...


class ReferencedSecrets:
    def __init__(self, kube: Watcher, changed: Callable[[str, str], None]) -> None:
        self._kube = kube
        self._changed = changed
        self._tasks: dict[SecretKey, asyncio.Task[None]] = {}

    @property
    def watched(self) -> set[SecretKey]:
        return set(self._tasks)

    def sync(self, wanted: set[SecretKey]) -> None:
        """Watch exactly the Secrets in `wanted`."""
        for key in self._tasks.keys() - wanted:
            self._tasks.pop(key).cancel()
        for key in wanted - self._tasks.keys():
            self._tasks[key] = asyncio.create_task(self._follow(*key), name=f"watch-secret-{key[0]}/{key[1]}")

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(self, namespace: str, name: str) -> None:
        version: str | None = None
        while True:
            try:
                async for event in self._kube.watch("v1", "Secret", namespace, f"metadata.name={name}", version):
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        # 410 Gone: the version is too old to resume from; start afresh.
                        version = None
                        break
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if kind != "BOOKMARK":
                        self._changed(namespace, name)
            except ApiError as exc:
                log.warning("cannot watch Secret %s/%s: %s", namespace, name, exc,
                            extra={"namespace": namespace, "secret": name})
                await asyncio.sleep(FORBIDDEN_RETRY_SECONDS if exc.status == 403 else RETRY_SECONDS)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("watch of Secret %s/%s interrupted: %s", namespace, name, type(exc).__name__,
                            extra={"namespace": namespace, "secret": name})
                await asyncio.sleep(RETRY_SECONDS)
