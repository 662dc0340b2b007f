"""An in-memory `Kube` for the reconcile steps' unit tests: objects keyed by
(apiVersion, kind, namespace, name), server-side apply as a deep merge
(lists replaced, as for atomic lists), JSON merge patch, label-selector lists,
and every write recorded. What a watch would deliver goes to the ChildCache
it is given, so the operator's cache-first reads behave as in a cluster."""

from __future__ import annotations

import base64
import copy
import itertools
from typing import Any

from ai_moderator_operator.status import now_iso
from ai_moderator_operator.children import ChildCache
from ai_moderator_operator.kube import ApiError

Key = tuple[str, str, str, str]


def _merge(base: dict[str, Any], patch: dict[str, Any], *, nulls_delete: bool) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        if value is None and nulls_delete:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value, nulls_delete=nulls_delete)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class FakeKube:
    def __init__(self, watch: ChildCache | None = None) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.writes: list[tuple[str, str, str]] = []  # (verb, kind, name)
        self.watch = watch
        self.refuse: dict[str, ApiError] = {}  # kind -> the error any apply of it gets
        # (namespace, Service, path) -> what the Service answers through the API server's proxy
        self.services: dict[tuple[str, str, str], dict[str, Any]] = {}
        self._uids = itertools.count(1)

    @staticmethod
    def key_of(obj: dict[str, Any]) -> Key:
        meta = obj["metadata"]
        return obj["apiVersion"], obj["kind"], meta.get("namespace") or "", meta["name"]

    def _store(self, obj: dict[str, Any], event: str) -> dict[str, Any]:
        self.objects[self.key_of(obj)] = obj
        if self.watch is not None:
            self.watch.observe(event, copy.deepcopy(obj))
        return copy.deepcopy(obj)

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        """An object made by someone else (a user's Secret, a controller's Pod)."""
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("uid", f"uid-{next(self._uids)}")
        return self._store(obj, "ADDED")

    def set_status(self, api_version: str, kind: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """What a controller would report (a Job finishing, a Deployment rolling out)."""
        obj = self.objects[(api_version, kind, namespace, name)]
        self._store({**obj, "status": status}, "MODIFIED")

    def written(self, verb: str | None = None, kind: str | None = None) -> list[tuple[str, str, str]]:
        return [w for w in self.writes if (verb is None or w[0] == verb) and (kind is None or w[1] == kind)]

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        if manifest["kind"] in self.refuse:
            raise self.refuse[manifest["kind"]]
        key = self.key_of(manifest)
        self.writes.append(("apply", manifest["kind"], manifest["metadata"]["name"]))
        if "stringData" in manifest:  # the API server stores a Secret's stringData as data
            manifest = copy.deepcopy(manifest)
            encoded = {k: base64.b64encode(v.encode()).decode() for k, v in manifest.pop("stringData").items()}
            manifest["data"] = {**manifest.get("data", {}), **encoded}
        live = self.objects.get(key)
        if live is None:
            obj = copy.deepcopy(manifest)
            obj["metadata"].update(uid=f"uid-{next(self._uids)}", generation=1,
                                   creationTimestamp=now_iso())
            return self._store(obj, "ADDED")
        merged = _merge(live, manifest, nulls_delete=False)
        if merged.get("spec") != live.get("spec"):
            merged["metadata"]["generation"] = live["metadata"].get("generation", 1) + 1
        return self._store(merged, "MODIFIED")

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(manifest)
        meta = obj["metadata"]
        meta.setdefault("name", f"{meta.get('generateName', 'x')}{next(self._uids)}")
        self.writes.append(("create", obj["kind"], meta["name"]))
        return self.put(obj)

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        found = self.objects.get((api_version, kind, namespace or "", name))
        return copy.deepcopy(found) if found is not None else None

    async def list(self, api_version: str, kind: str, namespace: str | None,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        wanted = dict(term.split("=", 1) for term in label_selector.split(",")) if label_selector else {}
        return [copy.deepcopy(o) for (v, k, ns, _), o in self.objects.items()
                if v == api_version and k == kind and (namespace is None or ns == namespace)
                and wanted.items() <= ((o["metadata"].get("labels") or {}).items())]

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str,
                     propagation: str = "Background") -> None:
        self.writes.append(("delete", kind, name))
        obj = self.objects.pop((api_version, kind, namespace or "", name), None)
        if obj is not None and self.watch is not None:
            self.watch.observe("DELETED", obj)

    async def service_get(self, namespace: str, service: str, port: str, path: str,
                          params: dict[str, str] | None = None) -> dict[str, Any] | None:
        answer = self.services.get((namespace, service, path))
        if answer is None:
            raise ApiError(503, "ServiceUnavailable", f'no endpoints available for service "{service}"')
        return answer

    async def merge_patch(self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict[str, Any],
                          subresource: str | None = None) -> dict[str, Any] | None:
        key = (api_version, kind, namespace or "", name)
        if key not in self.objects:
            raise ApiError(404, "NotFound", f"{kind} {name} not found")
        self.writes.append(("patch" + (f"/{subresource}" if subresource else ""), kind, name))
        return self._store(_merge(self.objects[key], patch, nulls_delete=True), "MODIFIED")
