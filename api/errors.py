"""API errors and their mapping to ``application/problem+json`` responses (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class ApiError(Exception):
    """Base of every error the API turns into a problem response."""

    status = 500
    title = "Internal Server Error"

    def __init__(self, detail: str | None = None, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = headers or {}


class BadRequest(ApiError):
    """The request is well-formed but cannot be served (e.g. a rejected SQL statement)."""

    status = 400
    title = "Bad Request"


class Unauthorized(ApiError):
    """No or an invalid credential; the detail never says which."""

    status = 401
    title = "Unauthorized"

    def __init__(self) -> None:
        super().__init__(None, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(ApiError):
    """A valid credential without the needed role."""

    status = 403
    title = "Forbidden"


class NotFound(ApiError):
    """The addressed resource does not exist."""

    status = 404
    title = "Not Found"


class ResultTooLarge(ApiError):
    """A query's result would exceed the response size limit."""

    status = 422
    title = "Result Too Large"


class Conflict(ApiError):
    """The request contradicts the current state."""

    status = 409
    title = "Conflict"


class ServiceUnavailable(ApiError):
    """A dependency (database, log, ingest, projector, analytics snapshot) cannot serve now."""

    status = 503
    title = "Service Unavailable"

    def __init__(self, detail: str | None = None, *, retry_after_s: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_s)})


def problem_response(
    status: int,
    title: str,
    *,
    detail: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    """A problem+json response."""
    body = Problem(title=title, status=status, detail=detail, instance=instance, errors=errors)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_TYPE,
    )


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem bodies for ``codes``."""
    descriptions = {
        400: "Bad request",
        401: "Missing or invalid credentials",
        403: "Not allowed",
        404: "Not found",
        409: "Conflict",
        422: "Validation error",
        503: "A dependency is unavailable",
    }
    content = {PROBLEM_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        code: {"description": descriptions.get(code, "Error"), "content": content} for code in codes
    }


def install_error_handlers(app: FastAPI) -> None:
    """Register every exception handler of the app."""

    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return problem_response(
            exc.status, exc.title, detail=exc.detail, instance=request.url.path, headers=exc.headers
        )

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {
                "loc": [str(p) for p in e.get("loc", ())],
                "msg": str(e.get("msg", "")),
                "type": str(e.get("type", "")),
            }
            for e in exc.errors()
        ]
        return problem_response(
            422,
            "Unprocessable Content",
            detail="request validation failed",
            instance=request.url.path,
            errors=errors,
        )

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        title = _title(exc.status_code)
        # Starlette's detail defaults to the title; ours say what happened (e.g. the body limit).
        detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
        return problem_response(
            exc.status_code,
            title,
            detail=detail,
            instance=request.url.path,
            headers=dict(exc.headers or {}),
        )

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "Internal Server Error", instance=request.url.path)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)


def _title(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
