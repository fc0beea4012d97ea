"""What the route modules share: the refusal responses, building and running a command, shocks.

Commands are validated at the edge by the engine's own validator (a bad field is a 422 and
nothing is logged), then queued to the single writer; the response is the engine's result.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import JSONResponse

from crossmargin.app.commands import validate
from crossmargin.core.errors import InvalidInput
from crossmargin.core.portfolio import report_json
from crossmargin.core.risk import Book, account_report
from crossmargin.core.scenario import Shock, apply_shocks, parse_shock
from crossmargin.service.context import ServiceContext
from crossmargin.service.errors import rejection_status, with_field

ERROR_SCHEMA = {
    "type": "object",
    "required": ["status", "reason", "message"],
    "properties": {
        "status": {"type": "string", "enum": ["rejected", "error"]},
        "reason": {"type": "string"},
        "message": {"type": "string"},
        "field": {"type": "string"},
    },
}


def _response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


REFUSALS: dict[int | str, dict[str, Any]] = {
    401: _response("no key, or a key that matches nothing"),
    403: _response("a key used outside its scope"),
    404: _response("no such account, order or symbol"),
    409: _response("refused by the engine's state (the reason says why)"),
    422: _response("a malformed field (named in `field`)"),
    503: _response("the event store is unavailable"),
}


def command_from(body: dict[str, Any], kind: str, **fixed: str) -> dict[str, Any]:
    for name in ("type", *fixed):
        if name in body:
            raise InvalidInput(name, "is set by the route, not the body")
    command_id = body["command_id"] if "command_id" in body else f"http-{uuid.uuid4().hex}"
    command = {"type": kind, **fixed, **body, "command_id": command_id}
    validate(command)
    return command


async def run_command(context: ServiceContext, command: dict[str, Any]) -> JSONResponse:
    result = await context.host.submit(command)
    return JSONResponse(with_field(result), status_code=rejection_status(result))


def parse_shocks(body: dict[str, Any], *, allowed: set[str]) -> list[Shock]:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(unknown[0], "unknown field")
    raw = body.get("shocks")
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("shocks", "a list of at least one shock like ETHUSDT=-20%")
    if len(raw) > 64:
        raise InvalidInput("shocks", "at most 64 shocks")
    shocks = []
    for index, text in enumerate(raw):
        if not isinstance(text, str):
            raise InvalidInput(f"shocks[{index}]", "expected a string like ETHUSDT=-20%")
        shocks.append(parse_shock(text, f"shocks[{index}]"))
    return shocks


def scenario_report(book: Book, shocks: list[Shock]) -> dict[str, Any]:
    for index, shock in enumerate(shocks):
        if shock.symbol not in book.marks:
            raise InvalidInput(f"shocks[{index}]", f"no {shock.symbol} position to shock")
    shocked = apply_shocks(book, shocks)
    return {
        "shocks": [shock.describe() for shock in shocks],
        "current": report_json(account_report(book)),
        "shocked": report_json(account_report(shocked)),
    }
