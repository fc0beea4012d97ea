"""``evolve``: folding one event into state (a live state or a decision's draft).

:func:`evolve` dispatches on the event's class and raises ``InvariantViolation`` on a class it
does not know; :func:`apply_record` reads a log record first (replay, load, audit). What an event
may carry besides its own fields is applied the same way for every type: ``postings``,
``position`` (the slot after it), ``order`` (to store), ``order_removed`` (to drop).

Invariant checked on every event: its postings sum to exactly zero, else InvariantViolation.
Ledger sums are exact (60 significant digits: no balance a command can produce needs more).
"""

from __future__ import annotations

import dataclasses
import decimal
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from crossmargin.app.events import (
    EVENT_TYPES,
    AccountOpened,
    Event,
    LeverageChanged,
    MarginCallCleared,
    MarginCallIssued,
    MarginModeChanged,
    MarkPriceUpdated,
    PositionModeChanged,
    from_record,
)
from crossmargin.app.ledgers import LedgerKind, Posting
from crossmargin.app.model import CALLED, Account, Ledgers, Order, resting_key
from crossmargin.app.records import PositionChange
from crossmargin.core.errors import InvariantViolation
from crossmargin.core.instrument import Instrument
from crossmargin.core.numbers import ZERO
from crossmargin.core.venues import VenueRules


class StateLike(Protocol):
    rules: VenueRules
    instruments: dict[str, Instrument]
    accounts: Any
    marks: Any
    holders: Any
    ledgers: Ledgers
    sequence: int


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
        elif ledger.kind is LedgerKind.EXTERNAL:
            ledgers.external[ledger.flow] = ledgers.external.get(ledger.flow, ZERO) + amount
        else:  # insurance_fund, fee_income, bad_debt: the Ledgers field of that name
            name = ledger.kind.value
            setattr(ledgers, name, getattr(ledgers, name) + amount)
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
