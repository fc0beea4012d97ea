"""The event vocabulary: one frozen dataclass per event, and its record in the log.

Every event is a frozen dataclass. ``decide`` computes everything; an event carries its results
(the position after a fill, the postings), so ``evolve`` (app.evolve) only applies them and
replay is exact. The log stores each event as a *record* (``to_record``: a JSON-shaped dict with
``type`` and the fields, Decimals kept exact by the ledger codec); :func:`from_record` reads one
back and refuses an unknown type or a missing field.

What an event may carry besides its own fields, applied the same way for every type:
  postings       money moved: ``(ledger, amount)`` pairs summing to exactly zero
  position       ``PositionChange``: the slot's position after the event (None: closed)
  order          an order to store (resting, re-reserved or partly filled)
  order_removed  the id of the account's order to drop (filled, cancelled)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from crossmargin.app.ledgers import Posting
from crossmargin.app.model import Order
from crossmargin.app.records import CODECS, Payment, PositionChange, Record
from crossmargin.core.errors import InvariantViolation
from crossmargin.core.position import MarginMode, PositionMode, Side
from crossmargin.core.scope import ScopeId

OMIT = {"omit_none": True}  # field metadata: left out of the record when None


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every event; ``TYPE`` is its name in the log."""

    TYPE: ClassVar[str] = ""

    def to_record(self) -> Record:
        record: Record = {"type": self.TYPE}
        for name, omit_none, encode, _ in _record_fields(type(self)):
            value = getattr(self, name)
            if value is None and omit_none:
                continue
            record[name] = encode(value)
        return record

    @property
    def account_named(self) -> str | None:
        """The account the event concerns, if it names one."""
        value = getattr(self, "account", None)
        return value if isinstance(value, str) else None


FieldCodec = tuple[str, bool, Callable[[Any], Any], Callable[[Any], Any]]
_FIELDCODECS: dict[str, tuple[FieldCodec, ...]] = {}


def _record_fields(cls: type[Event]) -> tuple[FieldCodec, ...]:
    """(name, omitted when None, to record, from record) for each field of ``cls``."""
    known = _FIELDCODECS.get(cls.__qualname__)
    if known is not None:
        return known
    codecs = []
    for item in dataclasses.fields(cls):
        # the annotation as written (``from __future__ import annotations`` keeps it a string)
        annotation = str(item.type)
        if annotation not in CODECS:
            raise InvariantViolation(f"{cls.__name__}.{item.name}: no codec for {annotation}")
        encode, decode = CODECS[annotation]
        codecs.append((item.name, bool(item.metadata.get("omit_none")), encode, decode))
    _FIELDCODECS[cls.__qualname__] = tuple(codecs)
    return _FIELDCODECS[cls.__qualname__]


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountOpened(Event):
    TYPE: ClassVar[str] = "AccountOpened"
    account: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FundsDeposited(Event):
    TYPE: ClassVar[str] = "FundsDeposited"
    account: str
    amount: Decimal
    postings: tuple[Posting, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FundsWithdrawn(Event):
    TYPE: ClassVar[str] = "FundsWithdrawn"
    account: str
    amount: Decimal
    postings: tuple[Posting, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class InsuranceFundSeeded(Event):
    TYPE: ClassVar[str] = "InsuranceFundSeeded"
    amount: Decimal
    postings: tuple[Posting, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedMarginAdded(Event):
    TYPE: ClassVar[str] = "IsolatedMarginAdded"
    account: str
    symbol: str
    slot: str
    amount: Decimal
    postings: tuple[Posting, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedMarginRemoved(Event):
    TYPE: ClassVar[str] = "IsolatedMarginRemoved"
    account: str
    symbol: str
    slot: str
    amount: Decimal
    postings: tuple[Posting, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LeverageChanged(Event):
    TYPE: ClassVar[str] = "LeverageChanged"
    account: str
    symbol: str
    leverage: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionLeverageChanged(Event):
    TYPE: ClassVar[str] = "PositionLeverageChanged"
    account: str
    position: PositionChange


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginModeChanged(Event):
    TYPE: ClassVar[str] = "MarginModeChanged"
    account: str
    symbol: str
    margin_mode: MarginMode


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionModeChanged(Event):
    TYPE: ClassVar[str] = "PositionModeChanged"
    account: str
    position_mode: PositionMode


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAccepted(Event):
    """``order``: it rests (stored); ``accepted``: it fills at once and is never stored."""

    TYPE: ClassVar[str] = "OrderAccepted"
    account: str
    order: Order | None = field(default=None, metadata=OMIT)
    accepted: Order | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRepriced(Event):
    TYPE: ClassVar[str] = "OrderRepriced"
    account: str
    order: Order | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled(Event):
    TYPE: ClassVar[str] = "OrderCancelled"
    account: str
    order_id: str
    reason: str
    order_removed: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class FillEvent(Event):
    """A fill: a client's (``OrderFilled``), a liquidation's, a takeover's or ADL's."""

    account: str
    symbol: str
    side: Side
    slot: str
    quantity: Decimal
    price: Decimal
    liquidity: str
    fee: Decimal
    realized_pnl: Decimal
    position: PositionChange
    postings: tuple[Posting, ...]
    order_id: str | None = field(default=None, metadata=OMIT)
    order: Order | None = field(default=None, metadata=OMIT)  # the rest of a partly filled order
    order_removed: str | None = field(default=None, metadata=OMIT)
    scope: ScopeId | None = field(default=None, metadata=OMIT)
    partial: bool | None = field(default=None, metadata=OMIT)
    against: str | None = field(default=None, metadata=OMIT)  # the ADL counterparty
    taken_over_by: str | None = field(default=None, metadata=OMIT)


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled(FillEvent):
    TYPE: ClassVar[str] = "OrderFilled"


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionLiquidated(FillEvent):
    TYPE: ClassVar[str] = "PositionLiquidated"


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionAutoDeleveraged(FillEvent):
    TYPE: ClassVar[str] = "PositionAutoDeleveraged"


@dataclass(frozen=True, slots=True, kw_only=True)
class MarkPriceUpdated(Event):
    TYPE: ClassVar[str] = "MarkPriceUpdated"
    symbol: str
    price: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingSettled(Event):
    TYPE: ClassVar[str] = "FundingSettled"
    symbol: str
    rate: Decimal
    mark: Decimal
    payments: tuple[Payment, ...]
    postings: tuple[Posting, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationTriggered(Event):
    TYPE: ClassVar[str] = "LiquidationTriggered"
    account: str
    scope: ScopeId
    margin_balance: Decimal
    maintenance_margin: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeBankrupt(Event):
    """``prices``: ``"<symbol>:<slot>"`` -> that position's bankruptcy price."""

    TYPE: ClassVar[str] = "ScopeBankrupt"
    account: str
    scope: ScopeId
    deficit: Decimal
    prices: dict[str, Decimal]


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeMoney(Event):
    """Money moved into or out of one scope's collateral (fees, the fund, bad debt)."""

    account: str
    scope: ScopeId
    amount: Decimal
    postings: tuple[Posting, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationFeeCharged(ScopeMoney):
    TYPE: ClassVar[str] = "LiquidationFeeCharged"


@dataclass(frozen=True, slots=True, kw_only=True)
class InsuranceFundPaid(ScopeMoney):
    TYPE: ClassVar[str] = "InsuranceFundPaid"


@dataclass(frozen=True, slots=True, kw_only=True)
class InsuranceFundCollected(ScopeMoney):
    TYPE: ClassVar[str] = "InsuranceFundCollected"


@dataclass(frozen=True, slots=True, kw_only=True)
class BadDebtRecorded(ScopeMoney):
    TYPE: ClassVar[str] = "BadDebtRecorded"


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginCallIssued(Event):
    TYPE: ClassVar[str] = "MarginCallIssued"
    account: str
    scope: ScopeId
    margin_ratio: Decimal | None
    threshold: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class MarginCallCleared(Event):
    TYPE: ClassVar[str] = "MarginCallCleared"
    account: str
    scope: ScopeId


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        AccountOpened,
        FundsDeposited,
        FundsWithdrawn,
        InsuranceFundSeeded,
        IsolatedMarginAdded,
        IsolatedMarginRemoved,
        LeverageChanged,
        PositionLeverageChanged,
        MarginModeChanged,
        PositionModeChanged,
        OrderAccepted,
        OrderRepriced,
        OrderCancelled,
        OrderFilled,
        PositionLiquidated,
        PositionAutoDeleveraged,
        MarkPriceUpdated,
        FundingSettled,
        LiquidationTriggered,
        ScopeBankrupt,
        LiquidationFeeCharged,
        InsuranceFundPaid,
        InsuranceFundCollected,
        BadDebtRecorded,
        MarginCallIssued,
        MarginCallCleared,
    )
}


def from_record(record: Mapping[str, Any]) -> Event:
    """The event a log record holds; InvariantViolation for an unknown type or a bad field."""
    kind = record.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvariantViolation(f"unknown event type {kind!r}")
    values: dict[str, Any] = {}
    for name, omit_none, _, decode in _record_fields(cls):
        if name not in record:
            if omit_none:
                continue
            raise InvariantViolation(f"{kind} record has no {name!r}")
        values[name] = decode(record[name])
    return cls(**values)
