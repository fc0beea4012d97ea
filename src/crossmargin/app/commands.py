"""Command parsing: JSON-shaped dicts in, validated fields out, errors naming the field.

Every command is an object with ``type`` and ``command_id`` (the client's idempotency key) plus
its fields. Malformed commands raise InvalidInput (rejected as INVALID_COMMAND by the writer,
changing nothing).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crossmargin.core.errors import InvalidInput
from crossmargin.core.ids import parse_id
from crossmargin.core.numbers import (
    RATE_QUANTUM,
    parse_command_amount,
    parse_decimal,
    parse_leverage,
)

COMMAND_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # type: (required fields, optional fields)
    "open_account": (frozenset({"account"}), frozenset()),
    "deposit": (frozenset({"account", "amount"}), frozenset()),
    "withdraw": (frozenset({"account", "amount"}), frozenset()),
    "add_isolated_margin": (
        frozenset({"account", "symbol", "amount"}),
        frozenset({"position_side"}),
    ),
    "remove_isolated_margin": (
        frozenset({"account", "symbol", "amount"}),
        frozenset({"position_side"}),
    ),
    "set_leverage": (frozenset({"account", "symbol", "leverage"}), frozenset()),
    "set_margin_mode": (frozenset({"account", "symbol", "margin_mode"}), frozenset()),
    "set_position_mode": (frozenset({"account", "position_mode"}), frozenset()),
    "place_order": (
        frozenset({"account", "order_id", "symbol", "side", "order_type", "quantity"}),
        frozenset({"price", "reduce_only", "position_side"}),
    ),
    "cancel_order": (frozenset({"account", "order_id"}), frozenset()),
    "report_fill": (
        frozenset({"account", "order_id", "quantity", "price"}),
        frozenset({"liquidity"}),
    ),
    "update_mark": (frozenset({"symbol", "price"}), frozenset()),
    "settle_funding": (frozenset({"symbol", "rate"}), frozenset()),
    "seed_insurance_fund": (frozenset({"amount"}), frozenset()),
}


def validate(command: object) -> dict[str, Any]:
    """Check shape and field types; return the command unchanged (plain dict) if valid."""
    if not isinstance(command, dict):
        raise InvalidInput("command", "expected an object")
    kind = command.get("type")
    if kind not in COMMAND_FIELDS:
        known = ", ".join(sorted(COMMAND_FIELDS))
        raise InvalidInput("type", f"unknown command {kind!r} (known: {known})")
    parse_id(command.get("command_id"), "command_id")
    required, optional = COMMAND_FIELDS[kind]
    unknown = sorted(set(command) - required - optional - {"type", "command_id"})
    if unknown:
        raise InvalidInput(unknown[0], f"unknown field for {kind}")
    for name in sorted(required):
        if command.get(name) is None:
            raise InvalidInput(name, "is required")
    for name in ("account", "order_id"):
        if name in command:
            parse_id(command[name], name)
    if "symbol" in command and not isinstance(command["symbol"], str):
        raise InvalidInput("symbol", "expected a string")
    for name in ("amount", "quantity", "price"):
        if command.get(name) is not None:
            parse_command_amount(command[name], name)
    if "leverage" in command:
        parse_leverage(command["leverage"], "leverage")
    if "rate" in command:
        rate = parse_decimal(command["rate"], "rate")
        if abs(rate) >= 1:
            raise InvalidInput("rate", "a funding rate must lie strictly between -1 and 1")
        if rate != rate.quantize(RATE_QUANTUM):
            raise InvalidInput("rate", f"must be a multiple of {RATE_QUANTUM:f}")
    _choices(command)
    return command


def _choices(command: dict[str, Any]) -> None:
    options = {
        "side": ("buy", "sell"),
        "order_type": ("market", "limit"),
        "margin_mode": ("cross", "isolated"),
        "position_mode": ("one-way", "hedge"),
        "position_side": ("long", "short"),
        "liquidity": ("maker", "taker"),
    }
    for name, allowed in options.items():
        if command.get(name) is not None and command[name] not in allowed:
            raise InvalidInput(name, f"expected one of {', '.join(allowed)}, got {command[name]!r}")
    if "reduce_only" in command and not isinstance(command["reduce_only"], bool):
        raise InvalidInput("reduce_only", "expected true or false")
    if command.get("order_type") == "limit" and command.get("price") is None:
        raise InvalidInput("price", "is required for a limit order")
    if command.get("order_type") == "market" and command.get("price") is not None:
        raise InvalidInput("price", "a market order takes no price")


def decimal_field(command: dict[str, Any], name: str) -> Decimal:
    return parse_decimal(command[name], name)
