"""Authentication before the body: a request that carries a body has its API
key checked from the headers first, so an unauthenticated client cannot make
the API receive and parse up to MAX_BODY_BYTES of JSON. Every route with a
body needs a key; the principal reaches the `caller` dependency through the
request state."""

from __future__ import annotations

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .deps import authenticate
from .errors import ApiError, error_response


class KeyFirstMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            try:
                principal = await authenticate(Request(scope), scope["app"].state.ai)
            except ApiError as exc:
                await error_response(exc.status, exc.message, exc.code, exc.param, exc.headers)(scope, receive, send)
                return
            except Exception:  # noqa: BLE001 - e.g. the database is down: the route's handlers answer it (503)
                principal = None
            if principal is not None:
                scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
