"""JSON Schemas of the request bodies, for the OpenAPI document (``/docs``, schemathesis).

The handlers do not trust these: every body is parsed by the engine's own validators
(``app.commands.parse_command``, ``contract.portfolio.parse_portfolio``), which name the field they refuse.
Decimal amounts travel as strings (exact) or JSON numbers (read as Decimal, never float).
"""

from __future__ import annotations

from typing import Any

from crossmargin.core.ids import ID_PATTERN, MAX_ID_LENGTH
from crossmargin.service.compute import MAX_PORTFOLIOS, MAX_POSITIONS, MAX_SHOCKS

ACCOUNT_PATTERN = ID_PATTERN
ID = {"type": "string", "pattern": ID_PATTERN, "minLength": 1, "maxLength": MAX_ID_LENGTH}
SYMBOL = {"type": "string", "minLength": 1, "maxLength": 32, "examples": ["ETHUSDT"]}
COMMAND_ID = {
    **ID,
    "description": "idempotency key, per key: the same key sending an id again gets the first "
    "result and changes nothing; another key's ids are its own",
}


def _decimal(pattern: str, description: str, **bounds: float) -> dict[str, Any]:
    """A decimal sent as a string (matching ``pattern``, every digit kept) or a JSON number
    (within ``bounds``, JSON Schema keywords)."""
    return {
        "anyOf": [{"type": "string", "pattern": pattern}, {"type": "number", **bounds}],
        "description": description,
    }


POSITIVE = _decimal(
    r"^[0-9]{1,15}(\.[0-9]{1,12})?$",
    "a positive decimal; send a string to keep every digit",
    exclusiveMinimum=0,
    maximum=1e15,
)
AMOUNT_VALUE = _decimal(
    r"^[0-9]{1,13}(\.[0-9]{1,8})?$",
    "a positive amount, quantity or price: at most 10^12, on the 1e-8 quantum",
    exclusiveMinimum=0,
    maximum=1e12,
)
LEVERAGE_VALUE = _decimal(
    r"^[0-9]{1,4}(\.[0-9]{1,2})?$", "1 to 1000 in steps of 0.01", minimum=1, maximum=1000
)
RATE = _decimal(
    r"^-?0(\.[0-9]{1,12})?$",
    "a funding rate strictly between -1 and 1",
    exclusiveMinimum=-1,
    exclusiveMaximum=1,
)


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
    {"account": {**ID, "examples": ["alice"]}},
    ["account"],
)
AMOUNT = _object({"amount": AMOUNT_VALUE}, ["amount"])
ORDER = _object(
    {
        "order_id": ID,
        "symbol": SYMBOL,
        "side": choice("buy", "sell"),
        "order_type": choice("market", "limit"),
        "quantity": AMOUNT_VALUE,
        "price": AMOUNT_VALUE,
        "reduce_only": {"type": "boolean"},
        "position_side": choice("long", "short"),
    },
    ["order_id", "symbol", "side", "order_type", "quantity"],
)
LEVERAGE = _object({"symbol": SYMBOL, "leverage": LEVERAGE_VALUE}, ["symbol", "leverage"])
MARGIN_MODE = _object(
    {"symbol": SYMBOL, "margin_mode": choice("cross", "isolated")}, ["symbol", "margin_mode"]
)
POSITION_MODE = _object({"position_mode": choice("one-way", "hedge")}, ["position_mode"])
ISOLATED_MARGIN = _object(
    {
        "symbol": SYMBOL,
        "amount": AMOUNT_VALUE,
        "action": choice("add", "remove"),
        "position_side": choice("long", "short"),
    },
    ["symbol", "amount", "action"],
)
MARKS = _object(
    {
        "prices": {
            "type": "object",
            "additionalProperties": AMOUNT_VALUE,
            "minProperties": 1,
            "examples": [{"ETHUSDT": "1850.5"}],
        }
    },
    ["prices"],
)
FUNDING = _object({"symbol": SYMBOL, "rate": RATE}, ["symbol", "rate"])
FILL = _object(
    {
        "account": ID,
        "order_id": ID,
        "quantity": AMOUNT_VALUE,
        "price": AMOUNT_VALUE,
        "liquidity": choice("maker", "taker"),
    },
    ["account", "order_id", "quantity", "price"],
)
SHOCK = {
    "type": "string",
    "pattern": r"^[A-Z0-9]{1,32}=(-?[0-9]{1,3}(\.[0-9]{1,4})?%|[0-9]{1,9}(\.[0-9]{1,8})?)$",
    "examples": ["ETHUSDT=-20%", "BTCUSDT=25000"],
}
SHOCK_LIST = {"type": "array", "items": SHOCK, "minItems": 1, "maxItems": MAX_SHOCKS}
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
            "maxItems": MAX_POSITIONS,
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
RISK_DOCUMENT = {
    "anyOf": [PORTFOLIO, {"type": "array", "items": PORTFOLIO, "maxItems": MAX_PORTFOLIOS}],
    "description": "one portfolio, or a list of them (each answered in turn)",
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
