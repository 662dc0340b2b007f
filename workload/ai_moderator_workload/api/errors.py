"""One error shape for every route, OpenAI's (`{"error": {message, type,
param, code}}`), so the OpenAI SDK and humans both read a clear message.
Never 409: the OpenAI SDK retries it, and nothing here is worth retrying."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import ORJSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from .middleware import BodyTooLarge

log = logging.getLogger(__name__)

_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
          404: "not_found_error", 413: "request_too_large", 422: "invalid_request_error",
          429: "rate_limit_exceeded", 503: "service_unavailable"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


def unavailable(what: str) -> ApiError:
    return ApiError(503, f"{what} is unavailable; retry shortly", code="unavailable", headers={"Retry-After": "5"})


def error_response(status: int, message: str, code: str | None = None, param: str | None = None,
                   headers: dict[str, str] | None = None) -> ORJSONResponse:
    body = {"error": {"message": message, "type": _TYPES.get(status, "api_error"), "param": param, "code": code}}
    return ORJSONResponse(body, status_code=status, headers=headers)


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> ORJSONResponse:
        return error_response(exc.status, exc.message, exc.code, exc.param, exc.headers)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, _: BodyTooLarge) -> ORJSONResponse:
        limit = request.app.state.ai.runtime.settings.max_body_bytes
        return error_response(413, f"Request body exceeds the limit of {limit} bytes.", "body_too_large")

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> ORJSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            detail = errors[0].get("ctx", {}).get("error", "")
            return error_response(400, f"Request body is not valid JSON: {detail}".rstrip(": "), "invalid_json")
        first = errors[0]
        where = _location(tuple(first.get("loc", ())))
        messages = "; ".join(f"{_location(tuple(e.get('loc', ())))}: {e.get('msg')}" for e in errors[:5])
        return error_response(422, messages, "invalid_value", where)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> ORJSONResponse:
        status = 400 if exc.status_code == 409 else exc.status_code
        # An unknown route has the code of every other 404.
        return error_response(status, str(exc.detail), "not_found" if status == 404 else None,
                              headers=getattr(exc, "headers", None))

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _db_down(_: Request, exc: Exception) -> ORJSONResponse:
        log.warning("database unavailable", extra={"error": type(exc).__name__})
        e = unavailable("the database")
        return error_response(e.status, e.message, e.code, headers=e.headers)

    @app.exception_handler(DBAPIError)
    async def _db_error(_: Request, exc: DBAPIError) -> ORJSONResponse:
        if exc.connection_invalidated:
            e = unavailable("the database")
            return error_response(e.status, e.message, e.code, headers=e.headers)
        log.exception("database error")
        return error_response(500, "internal error", "internal_error")

    @app.exception_handler(RedisError)
    async def _redis_down(_: Request, exc: RedisError) -> ORJSONResponse:
        e = unavailable("the broker")
        return error_response(e.status, e.message, e.code, headers=e.headers)
