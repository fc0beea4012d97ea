"""Errors over HTTP: the exception tree and engine rejections -> status codes and one body shape.

Body of every refusal: ``{"status": "rejected" | "error", "reason": CODE, "message": TEXT,
"field": NAME?}``. ``field`` names the offending input (``amount``, ``prices.ETHUSDT``,
``positions[1].quantity``) whenever one input is at fault.

  InvalidInput / INVALID_COMMAND / UNKNOWN_SYMBOL   422
  Unauthorized                                     401
  Forbidden                                        403
  NotFound / UNKNOWN_ACCOUNT / UNKNOWN_ORDER       404
  Conflict / any other rejection reason            409
  StorageError                                     503
  InvariantViolation                               500 (the writer has stopped)
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

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
    if isinstance(error, StorageError):
        return 503, error_body("STORAGE_UNAVAILABLE", str(error))
    if isinstance(error, InvariantViolation):
        return 500, error_body("INVARIANT_VIOLATION", str(error))
    return 500, error_body("ERROR", str(error))


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "path", "query", "header")]
    return ".".join(parts) or "request"


def install(app: FastAPI) -> None:
    async def crossmargin_error(_: Request, error: Exception) -> JSONResponse:
        status, body = describe(error)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body, status_code=status, headers=headers)

    async def validation_error(_: Request, error: Exception) -> JSONResponse:
        problems = error.errors() if isinstance(error, RequestValidationError) else []
        first = problems[0] if problems else {}
        field = _location(tuple(first.get("loc", ())))
        message = f"{field}: {first.get('msg', 'invalid')}"
        return JSONResponse(error_body("INVALID_INPUT", message, field), status_code=422)

    app.add_exception_handler(CrossmarginError, crossmargin_error)
    app.add_exception_handler(RequestValidationError, validation_error)
