"""Domain errors and the one error envelope of API.md.

Routes raise typed `ApiError`s; the handlers here turn them, request
validation failures and anything unexpected into
`{"error": {code, normalized_code, message, issues}, "request_id"}`.
Nothing internal (a stack trace, a SQL statement, a token) ever reaches a body.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("herald.api")


class IssueOut(BaseModel):
    field: str
    code: str
    message: str


class ErrorBody(BaseModel):
    code: str
    normalized_code: str
    message: str
    issues: list[IssueOut] = []


class ErrorEnvelope(BaseModel):
    error: ErrorBody
    request_id: str | None = None


class ApiError(Exception):
    status = 400
    code = "VALIDATION_ERROR"

    def __init__(self, message: str, *, issues: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.issues = issues or []
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400


class ValidationFailed(ApiError):
    status = 422

    @classmethod
    def one(cls, field: str, code: str, message: str) -> ValidationFailed:
        return cls(message, issues=[{"field": field, "code": code, "message": message}])


class Unauthorized(ApiError):
    status = 401
    code = "UNAUTHORIZED"


class Forbidden(ApiError):
    status = 403
    code = "FORBIDDEN"


class QuotaExceeded(ApiError):
    status = 403
    code = "QUOTA_EXCEEDED"


class NotFound(ApiError):
    status = 404
    code = "NOT_FOUND"

    def __init__(self, what: str = "Resource"):
        super().__init__(f"{what} not found")


class Conflict(ApiError):
    status = 409
    code = "CONFLICT"


class AccountAlreadyConnected(ApiError):
    status = 409
    code = "ACCOUNT_ALREADY_CONNECTED"


class RateLimitExceeded(ApiError):
    status = 429
    code = "RATE_LIMITED"


class ServiceUnavailable(ApiError):
    status = 503
    code = "SERVICE_UNAVAILABLE"


def envelope(request: Request | None, status: int, code: str, message: str,
             issues: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    body = {
        "error": {"code": code, "normalized_code": code.lower(), "message": message, "issues": issues or []},
        "request_id": request_id,
    }
    return JSONResponse(body, status_code=status, headers=headers)


def api_error_response(request: Request, exc: ApiError) -> JSONResponse:
    return envelope(request, exc.status, exc.code, exc.message, exc.issues, exc.headers)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """("body", "platform_posts", 0, "caption") -> "platform_posts[0].caption"."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif str(p).startswith(("function-", "tagged-union")):
            continue
        else:
            out += ("." if out else "") + str(p)
    return out or "body"


# Pydantic error types that mean "wrong shape" (400) rather than "wrong value" (422).
_STRUCTURAL_SUFFIXES = ("_type", "_parsing")
_STRUCTURAL = {"json_invalid", "model_attributes_type", "is_instance_of"}


def _is_structural(err: dict[str, Any]) -> bool:
    kind = err.get("type", "")
    return kind in _STRUCTURAL or kind.endswith(_STRUCTURAL_SUFFIXES)


def validation_response(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = list(exc.errors())
    issues = []
    for err in errors:
        kind = err.get("type", "invalid")
        if kind == "json_invalid":
            issues.append({"field": "body", "code": "malformed_json", "message": "Request body is not valid JSON"})
            continue
        msg = str(err.get("msg", "Invalid value"))
        if kind == "missing":
            msg = "Field required"
        issues.append({"field": field_path(err.get("loc", ())), "code": kind, "message": msg})
    structural = any(_is_structural(e) for e in errors)
    if structural:
        message = "Malformed JSON" if any(e.get("type") == "json_invalid" for e in errors) else \
            "Request has fields of the wrong type"
        return envelope(request, 400, "VALIDATION_ERROR", message, issues)
    first = issues[0] if issues else {"field": "body", "message": "Invalid request"}
    return envelope(request, 422, "VALIDATION_ERROR", f"{first['field']}: {first['message']}", issues)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return api_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
                 409: "CONFLICT", 413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 429: "RATE_LIMITED"}
        code = codes.get(exc.status_code, "VALIDATION_ERROR" if exc.status_code < 500 else "INTERNAL_ERROR")
        message = exc.detail if isinstance(exc.detail, str) else "Request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = "No such route"
        return envelope(request, exc.status_code, code, message, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"request_id": getattr(request.state, "request_id", None)})
        return envelope(request, 500, "INTERNAL_ERROR", "Internal error. Retry with the same idempotency key.")


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorEnvelope, "description": desc}
    for status, desc in (
        (400, "Malformed JSON or wrong types"),
        (401, "Missing, unknown, revoked or expired API key"),
        (404, "Unknown id, or an id of another workspace"),
        (422, "Semantic validation failed; `issues[]` says which field and why"),
        (429, "Rate limited"),
    )
}
