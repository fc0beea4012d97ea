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
from typing import Any, ClassVar, TypeVar, dataclass_transform

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
_FIELD_CODECS: dict[str, tuple[FieldCodec, ...]] = {}


def _record_fields(cls: type[Event]) -> tuple[FieldCodec, ...]:
    """(name, omitted when None, to record, from record) for each field of ``cls``."""
    known = _FIELD_CODECS.get(cls.__qualname__)
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
    _FIELD_CODECS[cls.__qualname__] = tuple(codecs)
    return _FIELD_CODECS[cls.__qualname__]


EVENT_TYPES: dict[str, type[Event]] = {}
E = TypeVar("E", bound=Event)


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(field,))
def event(cls: type[E]) -> type[E]:
    """Declare an event type: a frozen dataclass named in the log by its class name."""
    made = dataclass(frozen=True, slots=True, kw_only=True)(cls)
    made.TYPE = made.__name__
    EVENT_TYPES[made.TYPE] = made
    return made


# -- accounts and money ----------------------------------------------------------------------


@event
class AccountOpened(Event):
    account: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountMoney(Event):
    """Money into or out of an account's cross wallet from outside."""

    account: str
    amount: Decimal
    postings: tuple[Posting, ...]


@event
class FundsDeposited(AccountMoney):
    """A deposit (wallet vs ``external:deposits``)."""


@event
class FundsWithdrawn(AccountMoney):
    """A withdrawal (wallet vs ``external:deposits``)."""


@event
class InsuranceFundSeeded(Event):
    amount: Decimal
    postings: tuple[Posting, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class IsolatedMarginMoved(Event):
    """Margin moved between the cross wallet and one isolated slot."""

    account: str
    symbol: str
    slot: str
    amount: Decimal
    postings: tuple[Posting, ...]


@event
class IsolatedMarginAdded(IsolatedMarginMoved):
    """Wallet -> slot."""


@event
class IsolatedMarginRemoved(IsolatedMarginMoved):
    """Slot -> wallet."""


# -- settings ----------------------------------------------------------------------------------


@event
class LeverageChanged(Event):
    account: str
    symbol: str
    leverage: Decimal


@event
class PositionLeverageChanged(Event):
    account: str
    position: PositionChange


@event
class MarginModeChanged(Event):
    account: str
    symbol: str
    margin_mode: MarginMode


@event
class PositionModeChanged(Event):
    account: str
    position_mode: PositionMode


# -- orders and fills --------------------------------------------------------------------------


@event
class OrderAccepted(Event):
    """``order``: it rests (stored); ``accepted``: it fills at once and is never stored."""

    account: str
    order: Order | None = field(default=None, metadata=OMIT)
    accepted: Order | None = field(default=None, metadata=OMIT)


@event
class OrderRepriced(Event):
    """A resting order re-reserved (after a leverage change)."""

    account: str
    order: Order | None


@event
class OrderCancelled(Event):
    account: str
    order_id: str
    reason: str
    order_removed: str | None

    @staticmethod
    def of(order: Order, reason: str) -> OrderCancelled:
        """``order`` cancelled (and dropped) for ``reason``."""
        return OrderCancelled(
            account=order.account,
            order_id=order.order_id,
            reason=reason,
            order_removed=order.order_id,
        )


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


@event
class OrderFilled(FillEvent):
    """A client's order filled (maker or taker)."""


@event
class PositionLiquidated(FillEvent):
    """A liquidation's, a fund takeover's or the bankrupt side of an ADL's close."""


@event
class PositionAutoDeleveraged(FillEvent):
    """An ADL counterparty's close."""


# -- the market --------------------------------------------------------------------------------


@event
class MarkPriceUpdated(Event):
    symbol: str
    price: Decimal


@event
class FundingSettled(Event):
    symbol: str
    rate: Decimal
    mark: Decimal
    payments: tuple[Payment, ...]
    postings: tuple[Posting, ...]


# -- liquidation -------------------------------------------------------------------------------


@event
class LiquidationTriggered(Event):
    account: str
    scope: ScopeId
    margin_balance: Decimal
    maintenance_margin: Decimal


@event
class ScopeBankrupt(Event):
    """``prices``: ``"<symbol>:<slot>"`` -> that position's bankruptcy price."""

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


@event
class LiquidationFeeCharged(ScopeMoney):
    """The clearance fee: collateral -> insurance fund."""


@event
class InsuranceFundPaid(ScopeMoney):
    """Insurance fund -> a bankrupt scope's collateral."""


@event
class InsuranceFundCollected(ScopeMoney):
    """Dust left in a bankrupt scope -> insurance fund."""


@event
class BadDebtRecorded(ScopeMoney):
    """What neither the fund nor ADL covered: ``bad_debt`` -> collateral."""


@event
class MarginCallIssued(Event):
    account: str
    scope: ScopeId
    margin_ratio: Decimal | None
    threshold: Decimal


@event
class MarginCallCleared(Event):
    account: str
    scope: ScopeId


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
