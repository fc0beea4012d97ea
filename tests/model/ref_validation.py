"""Reference model, part 4: command validation (INVALID_COMMAND: not logged, nothing changes).

Shapes per command type; ids (account, order_id, command_id) of 1-64 characters of
[A-Za-z0-9._-] starting alphanumeric; amount, quantity, price and each of a tick's prices (1 to
1,000 symbols) positive, at most 10^12, on the 1e-8 quantum; leverage 1 to 1000 on 0.01; a funding rate strictly between -1 and 1 on 1e-12.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.model.ref_liquidation import Event

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LIMIT = Decimal(10) ** 12
FIELDS: dict[str, tuple[set[str], set[str]]] = {
    "open_account": ({"account"}, set()),
    "deposit": ({"account", "amount"}, set()),
    "withdraw": ({"account", "amount"}, set()),
    "add_isolated_margin": ({"account", "symbol", "amount"}, {"position_side"}),
    "remove_isolated_margin": ({"account", "symbol", "amount"}, {"position_side"}),
    "set_leverage": ({"account", "symbol", "leverage"}, set()),
    "set_margin_mode": ({"account", "symbol", "margin_mode"}, set()),
    "set_position_mode": ({"account", "position_mode"}, set()),
    "place_order": (
        {"account", "order_id", "symbol", "side", "order_type", "quantity"},
        {"price", "reduce_only", "position_side"},
    ),
    "cancel_order": ({"account", "order_id"}, set()),
    "report_fill": ({"account", "order_id", "quantity", "price"}, {"liquidity"}),
    "update_mark": ({"symbol", "price"}, set()),
    "update_marks": ({"prices"}, set()),
    "settle_funding": ({"symbol", "rate"}, set()),
    "seed_insurance_fund": ({"amount"}, set()),
}


class Rejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Outcome:
    status: str  # "accepted" | "rejected"
    reason: str | None = None
    events: list[Event] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"


def number(command: dict[str, Any], name: str) -> Decimal:
    try:
        return Decimal(str(command[name]))
    except (InvalidOperation, ValueError):
        raise Rejected("INVALID_COMMAND") from None


def validate(command: dict[str, Any]) -> None:
    """INVALID_COMMAND: shape, ids, and the ranges and quanta of numbers."""
    kind = command.get("type")
    if kind not in FIELDS:
        raise Rejected("INVALID_COMMAND")
    required, optional = FIELDS[kind]
    if set(command) - required - optional - {"type", "command_id"}:
        raise Rejected("INVALID_COMMAND")
    if any(command.get(name) is None for name in required):
        raise Rejected("INVALID_COMMAND")
    for name in ("command_id", "account", "order_id"):
        if name in command and not (isinstance(command[name], str) and ID.fullmatch(command[name])):
            raise Rejected("INVALID_COMMAND")
    amounts = [
        command[name] for name in ("amount", "quantity", "price") if command.get(name) is not None
    ]
    if kind == "update_marks":
        prices = command["prices"]
        if not isinstance(prices, dict) or not 1 <= len(prices) <= 1000:
            raise Rejected("INVALID_COMMAND")
        amounts += list(prices.values())
    for amount in amounts:
        value = number({"value": amount}, "value")
        if not (value.is_finite() and 0 < value <= LIMIT and value % Decimal("1e-8") == 0):
            raise Rejected("INVALID_COMMAND")
    if "leverage" in command:
        value = number(command, "leverage")
        if not (value.is_finite() and 1 <= value <= 1000 and value % Decimal("0.01") == 0):
            raise Rejected("INVALID_COMMAND")
    if "rate" in command:
        value = number(command, "rate")
        if not (value.is_finite() and -1 < value < 1 and value % Decimal("1e-12") == 0):
            raise Rejected("INVALID_COMMAND")
    limit = command.get("order_type") == "limit"
    if kind == "place_order" and limit != (command.get("price") is not None):
        raise Rejected("INVALID_COMMAND")
