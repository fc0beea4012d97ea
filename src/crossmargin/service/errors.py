"""Errors over HTTP: the exception tree and engine rejections -> status codes and one body shape.

Body of every refusal, FastAPI's and Starlette's own included (unknown route 404, wrong method
405, malformed request 422): ``{"status": "rejected" | "error", "reason": CODE, "message":
TEXT, "field": NAME?}``. ``field`` names the offending input (``amount``, ``prices.ETHUSDT``,
``positions[1].quantity``) whenever one input is at fault.

  InvalidInput / INVALID_COMMAND / UNKNOWN_SYMBOL   422
  Unauthorized                                     401
  Forbidden                                        403
  NotFound / UNKNOWN_ACCOUNT / UNKNOWN_ORDER       404
  Conflict / any other rejection reason            409
  PayloadTooLarge                                  413 (service: the body limit)
  TooManyRequests                                  429 with Retry-After (service: busy)
  StorageError                                     503
  InvariantViolation                               500 (the writer has stopped)
  anything else                                    500 INTERNAL_ERROR (a bug: logged, no detail)
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from crossmargin.core.errors import (
    Conflict,
    CrossmarginError,
    Forbidden,
    InvalidInput,
    InvariantViolation,
    NotFound,
    StorageError,
    Unauthorized,
)

LOG = logging.getLogger("crossmargin.service")


class PayloadTooLarge(CrossmarginError):
    """A request body over the route's limit (refused while reading, before it is buffered)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the body is larger than {limit:,} bytes")


class TooManyRequests(CrossmarginError):
    """Expensive work refused because the key (or the server) has enough of it in flight."""

    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message)


REJECTION_STATUS = {
    "INVALID_COMMAND": 422,
    "UNKNOWN_SYMBOL": 422,
    "UNKNOWN_ACCOUNT": 404,
    "UNKNOWN_ORDER": 404,
}
REJECTION_FIELD = {"UNKNOWN_SYMBOL": "symbol", "UNKNOWN_ACCOUNT": "account"}


def rejection_status(result: dict[str, Any]) -> int:
    if result.get("status") != "rejected":
        return 200
    return REJECTION_STATUS.get(str(result.get("reason")), 409)


def with_field(result: dict[str, Any]) -> dict[str, Any]:
    if result.get("status") == "rejected" and "field" not in result:
        field = REJECTION_FIELD.get(str(result.get("reason")))
        if field is not None:
            return {**result, "field": field}
    return result


def error_body(reason: str, message: str, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "reason": reason, "message": message}
    if field:
        body["field"] = field
    return body


def describe(error: Exception) -> tuple[int, dict[str, Any]]:
    if isinstance(error, InvalidInput):
        return 422, error_body("INVALID_INPUT", str(error), error.field)
    if isinstance(error, Unauthorized):
        return 401, error_body("UNAUTHORIZED", str(error))
    if isinstance(error, Forbidden):
        return 403, error_body("FORBIDDEN", str(error))
    if isinstance(error, NotFound):
        return 404, error_body("NOT_FOUND", str(error), error.what)
    if isinstance(error, Conflict):
        return 409, error_body(error.code.upper(), error.message)
    if isinstance(error, PayloadTooLarge):
        return 413, error_body("PAYLOAD_TOO_LARGE", str(error), "body")
    if isinstance(error, TooManyRequests):
        return 429, error_body("TOO_MANY_REQUESTS", str(error))
    if isinstance(error, StorageError):
        return 503, error_body("STORAGE_UNAVAILABLE", str(error))
    if isinstance(error, InvariantViolation):
        return 500, error_body("INVARIANT_VIOLATION", str(error))
    return 500, error_body("ERROR", str(error))


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "path", "query", "header")]
    return ".".join(parts) or "request"


def headers_for(error: Exception) -> dict[str, str] | None:
    if isinstance(error, Unauthorized):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(error, TooManyRequests):
        return {"Retry-After": str(error.retry_after_seconds)}
    return None


def error_response(error: Exception) -> JSONResponse:
    status, body = describe(error)
    return JSONResponse(body, status_code=status, headers=headers_for(error))


def http_error_body(status: int, detail: object) -> dict[str, Any]:
    try:
        phrase = HTTPStatus(status)
        reason, text = phrase.name, phrase.phrase
    except ValueError:
        reason, text = "ERROR", "error"
    message = detail if isinstance(detail, str) and detail else text
    return error_body(reason, message)


def install(app: FastAPI) -> None:
    """Every error response of ``app`` in the one body shape."""

    async def crossmargin_error(_: Request, error: Exception) -> JSONResponse:
        return error_response(error)

    async def validation_error(_: Request, error: Exception) -> JSONResponse:
        problems = error.errors() if isinstance(error, RequestValidationError) else []
        first = problems[0] if problems else {}
        field = _location(tuple(first.get("loc", ())))
        message = f"{field}: {first.get('msg', 'invalid')}"
        return JSONResponse(error_body("INVALID_INPUT", message, field), status_code=422)

    async def http_error(_: Request, error: Exception) -> JSONResponse:
        status = error.status_code if isinstance(error, HTTPException) else 500
        detail = error.detail if isinstance(error, HTTPException) else None
        headers = error.headers if isinstance(error, HTTPException) else None
        return JSONResponse(http_error_body(status, detail), status_code=status, headers=headers)

    async def unexpected(_: Request, error: Exception) -> JSONResponse:
        # a bug, not the caller's fault: Starlette logs the traceback; the caller gets no detail
        return JSONResponse(
            error_body("INTERNAL_ERROR", "internal error; the server log has the details"),
            status_code=500,
        )

    app.add_exception_handler(CrossmarginError, crossmargin_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
