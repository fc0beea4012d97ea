"""Commands: parsed once, at the edge, into frozen dataclasses; errors name the field.

Every command arrives as an object with ``type``, ``command_id`` (the client's idempotency key,
an id of core.ids) and its fields. :func:`parse_command` checks the shape and every field once
and returns the typed command; ``decide`` and the handlers then trust it. A malformed command
raises ``InvalidInput`` naming the field (the engine answers INVALID_COMMAND, changes nothing
and does not log it, so the id stays free for the corrected retry).

Field rules: ids per core.ids; ``amount``, ``quantity`` and ``price`` positive, at most 10^12,
multiples of 1e-8; ``leverage`` 1 to 1000 in steps of 0.01; a funding ``rate`` strictly between
-1 and 1 on the 1e-12 quantum; choices as listed in ``CHOICES``; a limit order needs a price and
a market order takes none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, TypeVar, dataclass_transform

from crossmargin.app.model import OrderType
from crossmargin.core.errors import InvalidInput
from crossmargin.core.ids import parse_id
from crossmargin.core.numbers import (
    RATE_QUANTUM,
    parse_command_amount,
    parse_decimal,
    parse_leverage,
)
from crossmargin.core.position import MarginMode, PositionMode, Side


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """Base of every command; ``TYPE`` is its name on the wire and in the log."""

    TYPE: ClassVar[str] = ""
    command_id: str

    def to_record(self) -> dict[str, Any]:
        """The command as JSON-shaped data (what the log stores)."""
        record: dict[str, Any] = {"type": self.TYPE}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if value is None or (item.name == "reduce_only" and value is False):
                continue
            record[item.name] = _wire(item.name, value)
        return record


def _wire(name: str, value: Any) -> Any:
    if name == "side":
        return "buy" if value is Side.LONG else "sell"
    if name == "prices":
        return dict(value)
    return getattr(value, "value", value)


COMMAND_TYPES: dict[str, type[Command]] = {}
C = TypeVar("C", bound=Command)


@dataclass_transform(frozen_default=True, kw_only_default=True)
def command(name: str) -> Callable[[type[C]], type[C]]:
    """Declare a command type: a frozen dataclass whose wire and log name is ``name``."""

    def declare(cls: type[C]) -> type[C]:
        made = dataclass(frozen=True, slots=True, kw_only=True)(cls)
        made.TYPE = name
        COMMAND_TYPES[name] = made
        return made

    return declare


@command("open_account")
class OpenAccount(Command):
    account: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountAmount(Command):
    """Money in or out of an account's cross wallet."""

    account: str
    amount: Decimal


@command("deposit")
class Deposit(AccountAmount):
    """Pay money into the wallet."""


@command("withdraw")
class Withdraw(AccountAmount):
    """Take free margin out of the wallet."""


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedMarginMove(Command):
    """Margin between the wallet and an isolated position (``position_side`` in hedge mode)."""

    account: str
    symbol: str
    amount: Decimal
    position_side: str | None = None


@command("add_isolated_margin")
class AddIsolatedMargin(IsolatedMarginMove):
    """Wallet -> the position's margin."""


@command("remove_isolated_margin")
class RemoveIsolatedMargin(IsolatedMarginMove):
    """The position's margin -> wallet, keeping its initial margin."""


@command("set_leverage")
class SetLeverage(Command):
    account: str
    symbol: str
    leverage: Decimal


@command("set_margin_mode")
class SetMarginMode(Command):
    account: str
    symbol: str
    margin_mode: MarginMode


@command("set_position_mode")
class SetPositionMode(Command):
    account: str
    position_mode: PositionMode


@command("place_order")
class PlaceOrder(Command):
    account: str
    order_id: str
    symbol: str
    side: Side  # buy = LONG, sell = SHORT
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None = None
    reduce_only: bool = False
    position_side: str | None = None


@command("cancel_order")
class CancelOrder(Command):
    account: str
    order_id: str


@command("report_fill")
class ReportFill(Command):
    account: str
    order_id: str
    quantity: Decimal
    price: Decimal
    liquidity: str = "taker"


@command("update_mark")
class UpdateMark(Command):
    symbol: str
    price: Decimal


@command("update_marks")
class UpdateMarks(Command):
    """Several symbols' marks at one instant (a feed's tick): every mark is set, resting limits
    fill, and only then are the holders examined, so no account is judged at a mix of old and
    new prices that never stood in the market. ``prices`` is sorted by symbol."""

    prices: tuple[tuple[str, Decimal], ...]


@command("settle_funding")
class SettleFunding(Command):
    symbol: str
    rate: Decimal


@command("seed_insurance_fund")
class SeedInsuranceFund(Command):
    amount: Decimal


CHOICES: dict[str, dict[str, Any]] = {
    "side": {"buy": Side.LONG, "sell": Side.SHORT},
    "order_type": {"market": OrderType.MARKET, "limit": OrderType.LIMIT},
    "margin_mode": {"cross": MarginMode.CROSS, "isolated": MarginMode.ISOLATED},
    "position_mode": {"one-way": PositionMode.ONE_WAY, "hedge": PositionMode.HEDGE},
    "position_side": {"long": "long", "short": "short"},
    "liquidity": {"maker": "maker", "taker": "taker"},
}


def _symbol(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(name, "expected a string")
    return value


def _rate(value: object, name: str) -> Decimal:
    rate = parse_decimal(value, name)
    if abs(rate) >= 1:
        raise InvalidInput(name, "a funding rate must lie strictly between -1 and 1")
    if rate != rate.quantize(RATE_QUANTUM):
        raise InvalidInput(name, f"must be a multiple of {RATE_QUANTUM:f}")
    return rate


def _choice(name: str) -> Callable[[object, str], Any]:
    allowed = CHOICES[name]

    def parse(value: object, field_name: str) -> Any:
        if not isinstance(value, str) or value not in allowed:
            raise InvalidInput(field_name, f"expected one of {', '.join(allowed)}, got {value!r}")
        return allowed[value]

    return parse


MAX_MARKS = 1000  # symbols in one update_marks


def _prices(value: object, name: str) -> tuple[tuple[str, Decimal], ...]:
    if not isinstance(value, Mapping) or not value:
        raise InvalidInput(name, "expected an object of symbol: price, with at least one")
    if len(value) > MAX_MARKS:
        raise InvalidInput(name, f"at most {MAX_MARKS} symbols, got {len(value)}")
    prices = []
    for symbol in sorted(value, key=str):
        if not isinstance(symbol, str):
            raise InvalidInput(name, "expected symbols as keys")
        prices.append((symbol, parse_command_amount(value[symbol], f"{name}.{symbol}")))
    return tuple(prices)


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(name, "expected true or false")
    return value


# Field parsers, in the order fields are checked (so the first problem reported is stable).
FIELDS: dict[str, Callable[[object, str], Any]] = {
    "account": parse_id,
    "order_id": parse_id,
    "symbol": _symbol,
    "amount": parse_command_amount,
    "quantity": parse_command_amount,
    "price": parse_command_amount,
    "prices": _prices,
    "leverage": parse_leverage,
    "rate": _rate,
    **{name: _choice(name) for name in CHOICES},
    "reduce_only": _flag,
}


def parse_command(raw: object) -> Command:
    """The typed command ``raw`` describes, or an InvalidInput naming the first bad field."""
    if isinstance(raw, Command):
        return raw
    if not isinstance(raw, Mapping):
        raise InvalidInput("command", "expected an object")
    kind = raw.get("type")
    cls = COMMAND_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        known = ", ".join(sorted(COMMAND_TYPES))
        raise InvalidInput("type", f"unknown command {kind!a} (known: {known})")
    command_id = parse_id(raw.get("command_id"), "command_id")
    declared = {item.name: item for item in dataclasses.fields(cls) if item.name != "command_id"}
    unknown = sorted(set(raw) - set(declared) - {"type", "command_id"})
    if unknown:
        raise InvalidInput(unknown[0], f"unknown field for {kind}")
    for name in sorted(declared):
        required = declared[name].default is dataclasses.MISSING
        if required and raw.get(name) is None:
            raise InvalidInput(name, "is required")
    values: dict[str, Any] = {}
    for name, parse in FIELDS.items():
        if name in declared and raw.get(name) is not None:
            values[name] = parse(raw[name], name)
    if values.get("order_type") is OrderType.LIMIT and values.get("price") is None:
        raise InvalidInput("price", "is required for a limit order")
    if values.get("order_type") is OrderType.MARKET and values.get("price") is not None:
        raise InvalidInput("price", "a market order takes no price")
    return cls(command_id=command_id, **values)
