"""What the route modules share: the refusal responses, building and running a command.

Commands are validated at the edge by the engine's own validator (a bad field is a 422 and
nothing is logged), then queued to the single writer under the key's principal (``operator`` or
``account:<id>``): command ids are unique per principal, so no key can claim, block or read the
result of another key's command. The response is the engine's result.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.responses import JSONResponse

from crossmargin.app.commands import Command, UpdateMarks, parse_command
from crossmargin.core.errors import InvalidInput
from crossmargin.service.context import ServiceContext
from crossmargin.service.errors import rejection_status, with_field
from crossmargin.service.keys import Principal

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
    413: _response("the body is larger than the route's limit"),
    422: _response("a malformed field (named in `field`)"),
    503: _response("the event store is unavailable"),
}
BUSY: dict[int | str, dict[str, Any]] = {
    429: _response("this key (or the server) has enough risk calculations running: retry later"),
}


def new_command_id() -> str:
    return f"http-{uuid.uuid4().hex}"


def command_from(body: dict[str, Any], kind: str, **fixed: str) -> Command:
    """The typed command a route's body describes: parsed once, here (the engine trusts it)."""
    for name in ("type", *fixed):
        if name in body:
            raise InvalidInput(name, "is set by the route, not the body")
    command_id = body["command_id"] if "command_id" in body else new_command_id()
    return parse_command({"type": kind, **fixed, **body, "command_id": command_id})


def _symbols(command: Command) -> list[tuple[str, str]]:
    """The symbols a command names, each with its field: ``symbol``, or a tick's
    ``prices.<SYMBOL>``."""
    if isinstance(command, UpdateMarks):
        return [(f"prices.{symbol[:40]}", symbol) for symbol, _ in command.prices]
    symbol = getattr(command, "symbol", None)
    return [] if symbol is None else [("symbol", str(symbol))]


async def run_command(context: ServiceContext, command: Command, who: Principal) -> JSONResponse:
    # checked here, not left to the engine: a repeated command id is answered with its first
    # result before the engine looks at the rest, and a malformed request must still be a 422
    for field, symbol in _symbols(command):
        if symbol not in context.symbols:
            raise InvalidInput(field, f"{symbol[:40]!a} is not traded on this engine")
    result = await context.host.submit(command, principal=who.name)
    return JSONResponse(with_field(result), status_code=rejection_status(result))
