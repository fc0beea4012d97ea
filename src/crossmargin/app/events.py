"""The event vocabulary and ``evolve``: folding one event into state.

Every event is a frozen dataclass. ``decide`` computes everything; an event carries its results
(the position after a fill, the postings), so ``evolve`` only applies them and replay is exact.
:func:`evolve` dispatches on the event's class and raises ``InvariantViolation`` on a class it
does not know. The log stores each event as a *record* (``to_record``: a JSON-shaped dict with
``type`` and the fields, Decimals kept exact by the ledger codec); :func:`from_record` reads one
back and refuses an unknown type or a missing field.

What an event may carry besides its own fields, applied the same way for every type:
  postings       money moved: ``(ledger, amount)`` pairs summing to exactly zero
  position       ``PositionChange``: the slot's position after the event (None: closed)
  order          an order to store (resting, re-reserved or partly filled)
  order_removed  the id of the account's order to drop (filled, cancelled)

Invariant checked on every event: its postings sum to exactly zero, else InvariantViolation.
"""

from __future__ import annotations

import dataclasses
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from crossmargin.app.ledgers import Ledger, LedgerKind, Posting
from crossmargin.app.model import CALLED, Account, Ledgers, Order, OrderType, resting_key
from crossmargin.core.errors import InvariantViolation
from crossmargin.core.instrument import Instrument
from crossmargin.core.numbers import ZERO
from crossmargin.core.position import MarginMode, Position, PositionMode, Side
from crossmargin.core.scope import ScopeId
from crossmargin.core.venues import VenueRules

Record = dict[str, Any]
OMIT = {"omit_none": True}  # field metadata: left out of the record when None


class StateLike(Protocol):
    rules: VenueRules
    instruments: dict[str, Instrument]
    accounts: Any
    marks: Any
    holders: Any
    ledgers: Ledgers
    sequence: int


# -- records of the nested values ----------------------------------------------------------------


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
_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
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


# -- the events ----------------------------------------------------------------------------------


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
        if annotation not in _CODECS:
            raise InvariantViolation(f"{cls.__name__}.{item.name}: no codec for {annotation}")
        encode, decode = _CODECS[annotation]
        codecs.append((item.name, bool(item.metadata.get("omit_none")), encode, decode))
    _FIELD_CODECS[cls.__qualname__] = tuple(codecs)
    return _FIELD_CODECS[cls.__qualname__]


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


# -- evolve --------------------------------------------------------------------------------------

# Ledger sums are exact: no balance a command can produce needs more digits than this.
_LEDGER_CONTEXT = decimal.Context(prec=60)


def evolve(state: StateLike, event: Event) -> None:
    """Fold ``event`` into ``state`` (a live state or a draft)."""
    apply = _APPLY.get(type(event))
    if apply is None:
        raise InvariantViolation(f"evolve does not know {type(event).__name__}")
    postings: tuple[Posting, ...] = getattr(event, "postings", ())
    with decimal.localcontext(_LEDGER_CONTEXT):
        total = sum((posting.amount for posting in postings), ZERO)
    if total != 0:
        raise InvariantViolation(f"{event.TYPE} postings sum to {total}, not zero")
    apply(state, event)
    removed = getattr(event, "order_removed", None)
    if removed is not None:
        _remove_order(state, event.account_named or "", removed)
    order = getattr(event, "order", None)
    if order is not None:
        _store_order(state, order)
    change = getattr(event, "position", None)
    if change is not None:
        _apply_position(state, change)
    if postings:
        with decimal.localcontext(_LEDGER_CONTEXT):
            _apply_postings(state, postings)
    state.sequence += 1


def apply_record(state: StateLike, record: Mapping[str, Any]) -> Event:
    """Read ``record`` as an event and fold it in (replay, load, audit)."""
    event = from_record(record)
    evolve(state, event)
    return event


def _apply_postings(state: StateLike, postings: tuple[Posting, ...]) -> None:
    """Apply postings, replacing each touched account once (not once per posting)."""
    wallets: dict[str, Decimal] = {}
    isolated_moves: dict[str, dict[tuple[str, str], Decimal]] = {}
    ledgers = state.ledgers
    for posting in postings:
        ledger, amount = posting.ledger, posting.amount
        if ledger.kind is LedgerKind.WALLET:
            wallets[ledger.account] = wallets.get(ledger.account, ZERO) + amount
        elif ledger.kind is LedgerKind.ISOLATED:
            moves = isolated_moves.setdefault(ledger.account, {})
            key = (ledger.symbol, ledger.slot)
            moves[key] = moves.get(key, ZERO) + amount
        elif ledger.kind is LedgerKind.INSURANCE_FUND:
            ledgers.insurance_fund += amount
        elif ledger.kind is LedgerKind.FEE_INCOME:
            ledgers.fee_income += amount
        elif ledger.kind is LedgerKind.BAD_DEBT:
            ledgers.bad_debt += amount
        else:
            ledgers.external[ledger.flow] = ledgers.external.get(ledger.flow, ZERO) + amount
    for account_id in wallets.keys() | isolated_moves.keys():
        account = state.accounts[account_id]
        changes: dict[str, Any] = {}
        if account_id in wallets:
            changes["wallet"] = account.wallet + wallets[account_id]
        if account_id in isolated_moves:
            isolated = dict(account.isolated)
            for key, amount in isolated_moves[account_id].items():
                balance = isolated.get(key, ZERO) + amount
                if balance == 0:
                    isolated.pop(key, None)
                else:
                    isolated[key] = balance
            changes["isolated"] = isolated
        state.accounts[account_id] = dataclasses.replace(account, **changes)


def _apply_position(state: StateLike, change: PositionChange) -> None:
    account: Account = state.accounts[change.account]
    positions = dict(account.positions)
    if change.after is None:
        positions.pop((change.symbol, change.slot), None)
    else:
        positions[(change.symbol, change.slot)] = change.after
    state.accounts[change.account] = dataclasses.replace(account, positions=positions)
    if any(key[0] == change.symbol for key in positions):
        state.holders.add(change.symbol, change.account)
    else:
        state.holders.discard(change.symbol, change.account)


def _store_order(state: StateLike, order: Order) -> None:
    account = state.accounts[order.account]
    orders = {**account.orders, order.order_id: order}
    state.accounts[order.account] = dataclasses.replace(account, orders=orders)
    state.holders.add(resting_key(order.symbol), order.account)


def _remove_order(state: StateLike, account_id: str, order_id: str) -> None:
    account = state.accounts[account_id]
    orders = dict(account.orders)
    removed = orders.pop(order_id, None)
    state.accounts[account_id] = dataclasses.replace(account, orders=orders)
    if removed is not None and not any(o.symbol == removed.symbol for o in orders.values()):
        state.holders.discard(resting_key(removed.symbol), account_id)


def _account_opened(state: StateLike, event: AccountOpened) -> None:
    state.accounts[event.account] = Account(account_id=event.account)


def _leverage_changed(state: StateLike, event: LeverageChanged) -> None:
    account = state.accounts[event.account]
    leverage = {**account.leverage, event.symbol: event.leverage}
    state.accounts[event.account] = dataclasses.replace(account, leverage=leverage)


def _margin_mode_changed(state: StateLike, event: MarginModeChanged) -> None:
    account = state.accounts[event.account]
    modes = {**account.margin_mode, event.symbol: event.margin_mode}
    state.accounts[event.account] = dataclasses.replace(account, margin_mode=modes)


def _position_mode_changed(state: StateLike, event: PositionModeChanged) -> None:
    account = state.accounts[event.account]
    state.accounts[event.account] = dataclasses.replace(account, position_mode=event.position_mode)


def _mark_updated(state: StateLike, event: MarkPriceUpdated) -> None:
    state.marks[event.symbol] = event.price


def _margin_call(state: StateLike, event: MarginCallIssued | MarginCallCleared) -> None:
    account = state.accounts[event.account]
    scopes = set(account.margin_calls)
    if isinstance(event, MarginCallIssued):
        scopes.add(str(event.scope))
    else:
        scopes.discard(str(event.scope))
    state.accounts[event.account] = dataclasses.replace(account, margin_calls=frozenset(scopes))
    if scopes:
        state.holders.add(CALLED, event.account)
    else:
        state.holders.discard(CALLED, event.account)


def _nothing_else(state: StateLike, event: Event) -> None:
    """Only the common parts (postings, position, orders) change state."""


_APPLY: dict[type[Event], Callable[[StateLike, Any], None]] = {
    **{cls: _nothing_else for cls in EVENT_TYPES.values()},
    AccountOpened: _account_opened,
    LeverageChanged: _leverage_changed,
    MarginModeChanged: _margin_mode_changed,
    PositionModeChanged: _position_mode_changed,
    MarkPriceUpdated: _mark_updated,
    MarginCallIssued: _margin_call,
    MarginCallCleared: _margin_call,
}
