"""Records: the JSON-shaped form in which the log stores positions, orders and event fields.

``position_to_dict`` / ``order_to_dict`` and their inverses are the one place these values are
written for the log and snapshots; ``CODECS`` maps an event field's annotation to its pair of
record converters (used by app.events). Decimals stay Decimals (the ledger codec writes them
exactly).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crossmargin.app.ledgers import Ledger, Posting
from crossmargin.app.model import Order, OrderType
from crossmargin.core.position import MarginMode, Position, PositionMode, Side
from crossmargin.core.scope import ScopeId

Record = dict[str, Any]


def position_to_dict(position: Position) -> Record:
    return {
        "symbol": position.symbol,
        "side": position.side.value,
        "quantity": position.quantity,
        "entry_notional": position.entry_notional,
        "leverage": position.leverage,
        "margin_mode": position.margin_mode.value,
    }


def position_from_dict(data: Mapping[str, Any]) -> Position:
    return Position(
        symbol=data["symbol"],
        side=Side(data["side"]),
        quantity=Decimal(data["quantity"]),
        entry_notional=Decimal(data["entry_notional"]),
        leverage=Decimal(data["leverage"]),
        margin_mode=MarginMode(data["margin_mode"]),
    )


def order_to_dict(order: Order) -> Record:
    return {
        "order_id": order.order_id,
        "account": order.account,
        "symbol": order.symbol,
        "side": order.side.value,
        "position_side": order.position_side,
        "order_type": order.order_type.value,
        "quantity": order.quantity,
        "price": order.price,
        "reduce_only": order.reduce_only,
        "reserved": order.reserved,
    }


def order_from_dict(data: Mapping[str, Any]) -> Order:
    return Order(
        order_id=data["order_id"],
        account=data["account"],
        symbol=data["symbol"],
        side=Side(data["side"]),
        position_side=data["position_side"],
        order_type=OrderType(data["order_type"]),
        quantity=Decimal(data["quantity"]),
        price=None if data["price"] is None else Decimal(data["price"]),
        reduce_only=bool(data["reduce_only"]),
        reserved=Decimal(data["reserved"]),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionChange:
    """A slot's position after an event (None: the slot is empty)."""

    account: str
    symbol: str
    slot: str
    after: Position | None

    def record(self) -> Record:
        after = None if self.after is None else position_to_dict(self.after)
        return {"account": self.account, "symbol": self.symbol, "slot": self.slot, "after": after}

    @staticmethod
    def from_record(data: Mapping[str, Any]) -> PositionChange:
        after = data["after"]
        return PositionChange(
            account=data["account"],
            symbol=data["symbol"],
            slot=data["slot"],
            after=None if after is None else position_from_dict(after),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Payment:
    """One funding payment: ``paid`` > 0 was paid by the trader, < 0 received."""

    account: str
    slot: str
    paid: Decimal


def _postings_record(items: tuple[Posting, ...]) -> list[list[Any]]:
    return [[str(posting.ledger), posting.amount] for posting in items]


def _postings_from(raw: list[Any]) -> tuple[Posting, ...]:
    return tuple(Posting(Ledger.parse(str(ledger)), Decimal(amount)) for ledger, amount in raw)


def _optional(
    encode: Callable[[Any], Any], decode: Callable[[Any], Any]
) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    return (
        lambda v: None if v is None else encode(v),
        lambda v: None if v is None else decode(v),
    )


def _same(value: Any) -> Any:
    return value


# Field codecs by annotation: (to record, from record).
CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "str": (_same, str),
    "bool": (_same, bool),
    "Decimal": (_same, Decimal),
    "Decimal | None": _optional(_same, Decimal),
    "str | None": _optional(_same, str),
    "bool | None": _optional(_same, bool),
    "Side": (lambda v: v.value, Side),
    "MarginMode": (lambda v: v.value, MarginMode),
    "PositionMode": (lambda v: v.value, PositionMode),
    "ScopeId": (str, ScopeId.parse),
    "ScopeId | None": _optional(str, ScopeId.parse),
    "tuple[Posting, ...]": (_postings_record, _postings_from),
    "PositionChange": (PositionChange.record, PositionChange.from_record),
    "PositionChange | None": _optional(PositionChange.record, PositionChange.from_record),
    "Order | None": _optional(order_to_dict, order_from_dict),
    "dict[str, Decimal]": (dict, lambda v: {str(k): Decimal(x) for k, x in v.items()}),
    "tuple[Payment, ...]": (
        lambda v: [{"account": p.account, "slot": p.slot, "paid": p.paid} for p in v],
        lambda v: tuple(
            Payment(account=p["account"], slot=p["slot"], paid=Decimal(p["paid"])) for p in v
        ),
    ),
}
