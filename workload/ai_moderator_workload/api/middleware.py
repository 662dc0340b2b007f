"""A single pure-ASGI middleware for what every response needs: request
metrics by route template, the security headers a reverse proxy would add, a body-size
limit checked before the body is read, and gzip for clients that ask for it
(the check is a scan of raw headers, so other requests pay nothing)."""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import HTTP_DURATION, HTTP_REQUESTS

SECURITY_HEADERS = [
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"x-xss-protection", b"1; mode=block"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]


def _too_large(limit: int) -> tuple[dict[str, Any], bytes]:
    body = orjson.dumps({"error": {"message": f"Request body exceeds the limit of {limit} bytes.",
                                   "type": "request_too_large", "param": None, "code": "body_too_large"}})
    start = {"type": "http.response.start", "status": 413,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    return start, body


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int, gzip_minimum_size: int = 1000) -> None:
        self.app = app
        self.gzip_app = GZipMiddleware(app, minimum_size=gzip_minimum_size)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        try:
            declared = None
            app = self.app
            for name, value in scope["headers"]:
                if name == b"content-length":
                    declared = value
                elif name == b"accept-encoding" and b"gzip" in value:
                    app = self.gzip_app
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                start, body = _too_large(self.max_body_bytes)
                await send_with_headers(start)
                await send({"type": "http.response.body", "body": body})
                return
            await app(scope, receive_limited(receive, self.max_body_bytes), send_with_headers)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_DURATION.labels(method, template).observe(time.perf_counter() - started)


class BodyTooLarge(Exception):
    pass


def receive_limited(receive: Receive, limit: int) -> Receive:
    """Guards chunked bodies that declared no Content-Length."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
        return message

    return wrapped
