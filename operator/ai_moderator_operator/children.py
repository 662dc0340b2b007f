"""What the operator knows of existing children: a cache fed by kopf watch
events on every kind it manages (labelled managed-by), read by the reconciler
instead of polling the API server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .naming import MANAGER

Key = tuple[str, str, str, str]  # apiVersion, kind, namespace, name

MANAGED_SELECTOR = {"app.kubernetes.io/managed-by": MANAGER}


class ChildCache:
    def __init__(self) -> None:
        self._objects: dict[Key, dict[str, Any]] = {}
        # (namespace, Secret name) -> stacks whose spec references that Secret.
        self._references: dict[tuple[str, str], set[str]] = {}

    @staticmethod
    def key(obj: dict[str, Any]) -> Key:
        meta = obj["metadata"]
        return obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"]

    def observe(self, event_type: str | None, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self._objects.pop(self.key(obj), None)
        else:
            self._objects[self.key(obj)] = obj

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get((api_version, kind, namespace, name))

    def owned_by(self, namespace: str, stack: str) -> Iterator[dict[str, Any]]:
        for (_, _, ns, _), obj in list(self._objects.items()):
            if ns == namespace and obj["metadata"].get("labels", {}).get("app.kubernetes.io/instance") == stack:
                yield obj

    def set_references(self, namespace: str, stack: str, secrets: set[str]) -> None:
        """Record which user Secrets a stack references (empty when it is gone)."""
        for key in [k for k, stacks in self._references.items() if k[0] == namespace and stack in stacks]:
            if key[1] not in secrets:
                self._references[key].discard(stack)
                if not self._references[key]:
                    del self._references[key]
        for secret in secrets:
            self._references.setdefault((namespace, secret), set()).add(stack)

    def referencing(self, namespace: str, secret: str) -> set[str]:
        return set(self._references.get((namespace, secret), ()))

    def referenced(self) -> set[tuple[str, str]]:
        """Every (namespace, Secret name) some stack references."""
        return set(self._references)
