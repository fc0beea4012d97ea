"""JSON Schemas of the request bodies, for the OpenAPI document (``/docs``, schemathesis).

The handlers do not trust these: every body is parsed by the engine's own validators
(``app.commands.validate``, ``core.portfolio.parse_portfolio``), which name the field they refuse.
Decimal amounts travel as strings (exact) or JSON numbers (read as Decimal, never float).
"""

from __future__ import annotations

from typing import Any

ACCOUNT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SYMBOL = {"type": "string", "minLength": 1, "maxLength": 32, "examples": ["ETHUSDT"]}
COMMAND_ID = {
    "type": "string",
    "minLength": 1,
    "maxLength": 128,
    "description": "idempotency key: a repeated id returns the first result and changes nothing",
}
POSITIVE = {
    "anyOf": [
        {"type": "string", "pattern": r"^[0-9]{1,15}(\.[0-9]{1,12})?$"},
        {"type": "number", "exclusiveMinimum": 0, "maximum": 1e15},
    ],
    "description": "a positive decimal; send a string to keep every digit",
}
RATE = {
    "anyOf": [
        {"type": "string", "pattern": r"^-?0(\.[0-9]{1,12})?$"},
        {"type": "number", "exclusiveMinimum": -1, "exclusiveMaximum": 1},
    ],
    "description": "a funding rate strictly between -1 and 1",
}


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {**properties, "command_id": COMMAND_ID},
        "required": required,
        "additionalProperties": False,
    }


def choice(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


OPEN_ACCOUNT = _object(
    {"account": {"type": "string", "pattern": ACCOUNT_PATTERN, "examples": ["alice"]}},
    ["account"],
)
AMOUNT = _object({"amount": POSITIVE}, ["amount"])
ORDER = _object(
    {
        "order_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "symbol": SYMBOL,
        "side": choice("buy", "sell"),
        "order_type": choice("market", "limit"),
        "quantity": POSITIVE,
        "price": POSITIVE,
        "reduce_only": {"type": "boolean"},
        "position_side": choice("long", "short"),
    },
    ["order_id", "symbol", "side", "order_type", "quantity"],
)
LEVERAGE = _object({"symbol": SYMBOL, "leverage": POSITIVE}, ["symbol", "leverage"])
MARGIN_MODE = _object(
    {"symbol": SYMBOL, "margin_mode": choice("cross", "isolated")}, ["symbol", "margin_mode"]
)
POSITION_MODE = _object({"position_mode": choice("one-way", "hedge")}, ["position_mode"])
ISOLATED_MARGIN = _object(
    {
        "symbol": SYMBOL,
        "amount": POSITIVE,
        "action": choice("add", "remove"),
        "position_side": choice("long", "short"),
    },
    ["symbol", "amount", "action"],
)
MARKS = _object(
    {
        "prices": {
            "type": "object",
            "additionalProperties": POSITIVE,
            "minProperties": 1,
            "examples": [{"ETHUSDT": "1850.5"}],
        }
    },
    ["prices"],
)
FUNDING = _object({"symbol": SYMBOL, "rate": RATE}, ["symbol", "rate"])
FILL = _object(
    {
        "order_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "quantity": POSITIVE,
        "price": POSITIVE,
        "liquidity": choice("maker", "taker"),
    },
    ["order_id", "quantity", "price"],
)
SHOCK = {
    "type": "string",
    "pattern": r"^[A-Z0-9]{1,32}=(-?[0-9]{1,3}(\.[0-9]{1,4})?%|[0-9]{1,9}(\.[0-9]{1,8})?)$",
    "examples": ["ETHUSDT=-20%", "BTCUSDT=25000"],
}
SHOCK_LIST = {"type": "array", "items": SHOCK, "minItems": 1, "maxItems": 16}
SHOCKS = {
    "type": "object",
    "properties": {"shocks": SHOCK_LIST},
    "required": ["shocks"],
    "additionalProperties": False,
}
PORTFOLIO = {
    "type": "object",
    "description": "a portfolio of the `crossmargin risk` contract (see docs/service.md)",
    "required": ["wallet_balance", "positions"],
    "additionalProperties": False,
    "properties": {
        "venue": {"type": "string"},
        "wallet_balance": POSITIVE,
        "position_mode": choice("one-way", "hedge"),
        "positions": {
            "type": "array",
            "maxItems": 50,
            "items": {
                "type": "object",
                "required": [
                    "symbol",
                    "side",
                    "quantity",
                    "entry_price",
                    "leverage",
                    "margin_mode",
                ],
                "properties": {
                    "symbol": SYMBOL,
                    "side": choice("long", "short"),
                    "quantity": POSITIVE,
                    "entry_price": POSITIVE,
                    "leverage": POSITIVE,
                    "margin_mode": choice("cross", "isolated"),
                    "isolated_margin": POSITIVE,
                },
                "additionalProperties": False,
            },
        },
        "mark_prices": {"type": "object", "additionalProperties": POSITIVE},
    },
}
PORTFOLIO_SCENARIO = {
    "type": "object",
    "properties": {"portfolio": PORTFOLIO, "shocks": SHOCK_LIST},
    "required": ["portfolio", "shocks"],
    "additionalProperties": False,
}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` declaring a required JSON body of ``schema``."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    }
