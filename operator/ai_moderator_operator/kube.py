"""The Kubernetes API as the reconcile steps see it (`Kube`), and its asyncio
HTTP implementation: server-side apply with one field manager, reads,
deletes and status patches. `HttpKube` reuses the credentials kopf logged in
with, so the operator has one notion of "the cluster"; the unit tests use an
in-memory implementation of the same protocol."""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import kopf

from .metrics import API_REQUESTS
from .naming import MANAGER
from .resources import BY_KIND

# A watch ends after this long on the server's side and is resumed from its
# last resourceVersion, so a connection silently lost is noticed.
WATCH_SECONDS = 300


class ApiError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class Kube(Protocol):
    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]: ...

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]: ...

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None: ...

    async def list(self, api_version: str, kind: str, namespace: str | None,
                   label_selector: str | None = None) -> list[dict[str, Any]]: ...

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str,
                     propagation: str = "Background") -> None: ...

    async def merge_patch(self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict[str, Any],
                          subresource: str | None = None) -> dict[str, Any] | None: ...

    async def service_get(self, namespace: str, service: str, port: str, path: str,
                          params: dict[str, str] | None = None) -> dict[str, Any] | None: ...


def resource_path(api_version: str, kind: str, namespace: str | None, name: str | None = None,
                  subresource: str | None = None) -> str:
    resource = BY_KIND[(api_version, kind)]
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = (f"{base}/namespaces/{namespace}/{resource.plural}" if resource.namespaced and namespace
            else f"{base}/{resource.plural}")
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


def _ssl_context(conn: kopf.ConnectionInfo) -> ssl.SSLContext | bool:
    if conn.insecure:
        return False
    context = ssl.create_default_context(cafile=str(conn.ca_path) if conn.ca_path else None)
    if conn.ca_data:
        data = conn.ca_data.decode() if isinstance(conn.ca_data, bytes) else conn.ca_data
        context.load_verify_locations(cadata=base64.b64decode(data).decode())
    if conn.certificate_data:
        # ssl reads a client certificate from files only: they live in a
        # private directory for as long as the load takes.
        with tempfile.TemporaryDirectory(prefix="ai-moderator-") as private:
            cert, key = Path(private, "cert.pem"), Path(private, "key.pem")
            cert.write_bytes(base64.b64decode(conn.certificate_data))
            key.write_bytes(base64.b64decode(conn.private_key_data or b""))
            context.load_cert_chain(str(cert), str(key))
    elif conn.certificate_path:
        key_path = conn.private_key_path
        context.load_cert_chain(str(conn.certificate_path), str(key_path) if key_path else None)
    return context


def _raise_for(resp: aiohttp.ClientResponse, text: str) -> None:
    if resp.status < 400:
        return
    try:
        status = json.loads(text)
    except ValueError:
        raise ApiError(resp.status, resp.reason or "", text) from None
    raise ApiError(resp.status, status.get("reason", ""), status.get("message", text))


@dataclass
class HttpKube:
    conn: kopf.ConnectionInfo
    session: aiohttp.ClientSession | None = None

    async def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            headers = {"User-Agent": MANAGER}
            if self.conn.token:
                headers["Authorization"] = f"{self.conn.scheme or 'Bearer'} {self.conn.token}"
            self.session = aiohttp.ClientSession(
                base_url=self.conn.server.rstrip("/") + "/", headers=headers,
                connector=aiohttp.TCPConnector(ssl=_ssl_context(self.conn), limit=20),
                timeout=aiohttp.ClientTimeout(total=30))
        return self.session

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def request(self, method: str, path: str, body: Any = None, content_type: str = "application/json",
                      params: dict[str, str] | None = None, timeout: float | None = None) -> dict[str, Any] | None:
        session = await self._session()
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        # The session's timeout unless this request has its own (None would mean no timeout at all).
        options: dict[str, Any] = {"timeout": aiohttp.ClientTimeout(total=timeout)} if timeout else {}
        async with session.request(method, path.lstrip("/"), data=data, headers=headers, params=params,
                                   **options) as resp:
            API_REQUESTS.labels(method, str(resp.status)).inc()
            text = await resp.text()
            if resp.status == 404 and method in ("GET", "DELETE"):
                return None
            _raise_for(resp, text)
            return json.loads(text) if text else None

    async def watch(self, api_version: str, kind: str, namespace: str, field_selector: str,
                    resource_version: str | None = None) -> AsyncIterator[dict[str, Any]]:
        """Watch events of the objects a field selector picks, until the server
        ends the watch (WATCH_SECONDS). Starting without a resourceVersion
        delivers the existing objects as ADDED first."""
        params = {"watch": "true", "fieldSelector": field_selector, "allowWatchBookmarks": "true",
                  "timeoutSeconds": str(WATCH_SECONDS)}
        if resource_version:
            params["resourceVersion"] = resource_version
        session = await self._session()
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=WATCH_SECONDS + 30)
        path = resource_path(api_version, kind, namespace).lstrip("/")
        async with session.get(path, params=params, timeout=timeout) as resp:
            API_REQUESTS.labels("WATCH", str(resp.status)).inc()
            if resp.status >= 400:
                _raise_for(resp, await resp.text())
            # One JSON event per line; an object (a Secret with a CA bundle)
            # can be longer than aiohttp's line limit, so split by hand.
            pending = b""
            async for chunk in resp.content.iter_any():
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)

    async def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        meta = manifest["metadata"]
        path = resource_path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"])
        result = await self.request("PATCH", path, manifest, "application/apply-patch+yaml",
                                    {"fieldManager": MANAGER, "force": "true"})
        assert result is not None
        return result

    async def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        path = resource_path(manifest["apiVersion"], manifest["kind"], manifest["metadata"].get("namespace"))
        result = await self.request("POST", path, manifest)
        assert result is not None
        return result

    async def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        return await self.request("GET", resource_path(api_version, kind, namespace, name))

    async def list(self, api_version: str, kind: str, namespace: str | None,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        result = await self.request("GET", resource_path(api_version, kind, namespace), params=params)
        return list((result or {}).get("items", []))

    async def delete(self, api_version: str, kind: str, namespace: str | None, name: str,
                     propagation: str = "Background") -> None:
        await self.request("DELETE", resource_path(api_version, kind, namespace, name),
                           {"propagationPolicy": propagation})

    async def service_get(self, namespace: str, service: str, port: str, path: str,
                          params: dict[str, str] | None = None) -> dict[str, Any] | None:
        """GET a path of a Service through the API server's proxy (the
        operator talks to the API server only; the proxy drops credentials)."""
        # Short: a stack whose API does not answer must not hold up its reconcile.
        return await self.request("GET", f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{path}",
                                  params=params, timeout=5)

    async def merge_patch(self, api_version: str, kind: str, namespace: str | None, name: str, patch: dict[str, Any],
                          subresource: str | None = None) -> dict[str, Any] | None:
        return await self.request("PATCH", resource_path(api_version, kind, namespace, name, subresource), patch,
                                  "application/merge-patch+json")
