"""The event vocabulary and ``evolve``: folding one event into state.

Events are plain JSON-shaped dicts (``{"type": ..., ...}``) with Decimal amounts, so the ledger
codec can store them as they are. ``decide`` computes everything; an event carries its results
(the position after a fill, the postings), so ``evolve`` only applies them and replay is exact.

Common keys, applied generically by :func:`evolve`:
  postings   [[ledger, amount], ...] summing to zero (see app.model for the ledger names)
  position   {"account", "symbol", "slot", "after": position dict or None}
  order      an order dict to store (accepted or partially filled), or
  order_removed  an order id to drop (filled, cancelled)
Type-specific keys: AccountOpened.account, LeverageChanged, MarginModeChanged,
PositionModeChanged, MarkPriceUpdated, MarginCallIssued / MarginCallCleared.

Invariant checked on every event: its postings sum to exactly zero, else InvariantViolation.
"""

from __future__ import annotations

import dataclasses
import decimal
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Protocol

from crossmargin.app.model import CALLED, Account, Ledgers, Order, OrderType, resting_key
from crossmargin.core.errors import InvariantViolation
from crossmargin.core.instrument import Instrument
from crossmargin.core.numbers import ZERO
from crossmargin.core.position import MarginMode, Position, PositionMode, Side
from crossmargin.core.venues import VenueRules

Event = dict[str, Any]


class StateLike(Protocol):
    rules: VenueRules
    instruments: dict[str, Instrument]
    accounts: Any
    marks: Any
    holders: Any
    ledgers: Ledgers
    sequence: int


def position_to_dict(position: Position) -> dict[str, Any]:
    return {
        "symbol": position.symbol,
        "side": position.side.value,
        "quantity": position.quantity,
        "entry_notional": position.entry_notional,
        "leverage": position.leverage,
        "margin_mode": position.margin_mode.value,
    }


def position_from_dict(data: dict[str, Any]) -> Position:
    return Position(
        symbol=data["symbol"],
        side=Side(data["side"]),
        quantity=Decimal(data["quantity"]),
        entry_notional=Decimal(data["entry_notional"]),
        leverage=Decimal(data["leverage"]),
        margin_mode=MarginMode(data["margin_mode"]),
    )


def order_to_dict(order: Order) -> dict[str, Any]:
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


def order_from_dict(data: dict[str, Any]) -> Order:
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


# Ledger sums are exact: no balance a command can produce needs more digits than this.
_LEDGER_CONTEXT = decimal.Context(prec=60)


def _apply_postings(state: StateLike, postings: list[list[Any]]) -> None:
    """Apply postings, replacing each touched account once (not once per posting)."""
    with decimal.localcontext(_LEDGER_CONTEXT):
        _apply_postings_exactly(state, postings)


def _apply_postings_exactly(state: StateLike, postings: list[list[Any]]) -> None:
    wallets: dict[str, Decimal] = {}
    isolated_moves: dict[str, dict[tuple[str, str], Decimal]] = {}
    for ledger, raw_amount in postings:
        amount = Decimal(raw_amount)
        kind, _, rest = str(ledger).partition(":")
        if kind == "wallet":
            wallets[rest] = wallets.get(rest, ZERO) + amount
        elif kind == "isolated":
            account_id, symbol, slot = rest.split(":")
            moves = isolated_moves.setdefault(account_id, {})
            moves[(symbol, slot)] = moves.get((symbol, slot), ZERO) + amount
        elif kind == "insurance_fund":
            state.ledgers.insurance_fund += amount
        elif kind == "fee_income":
            state.ledgers.fee_income += amount
        elif kind == "bad_debt":
            state.ledgers.bad_debt += amount
        elif kind == "external":
            state.ledgers.external[rest] = state.ledgers.external.get(rest, ZERO) + amount
        else:
            raise InvariantViolation(f"unknown ledger {ledger!r}")
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


def _apply_position(state: StateLike, change: dict[str, Any]) -> None:
    account_id, symbol, slot = change["account"], change["symbol"], change["slot"]
    account: Account = state.accounts[account_id]
    positions = dict(account.positions)
    after = change["after"]
    if after is None:
        positions.pop((symbol, slot), None)
    else:
        positions[(symbol, slot)] = position_from_dict(after)
    state.accounts[account_id] = dataclasses.replace(account, positions=positions)
    if any(key[0] == symbol for key in positions):
        state.holders.add(symbol, account_id)
    else:
        state.holders.discard(symbol, account_id)


def _apply_order(state: StateLike, data: dict[str, Any]) -> None:
    order = order_from_dict(data)
    account = state.accounts[order.account]
    orders = dict(account.orders)
    orders[order.order_id] = order
    state.accounts[order.account] = dataclasses.replace(account, orders=orders)
    state.holders.add(resting_key(order.symbol), order.account)


def _remove_order(state: StateLike, account_id: str, order_id: str) -> None:
    account = state.accounts[account_id]
    orders = dict(account.orders)
    removed = orders.pop(order_id, None)
    state.accounts[account_id] = dataclasses.replace(account, orders=orders)
    if removed is not None and not any(o.symbol == removed.symbol for o in orders.values()):
        state.holders.discard(resting_key(removed.symbol), account_id)


def _account_opened(state: StateLike, event: Event) -> None:
    state.accounts[event["account"]] = Account(account_id=event["account"])


def _leverage_changed(state: StateLike, event: Event) -> None:
    account = state.accounts[event["account"]]
    leverage = {**account.leverage, event["symbol"]: Decimal(event["leverage"])}
    state.accounts[event["account"]] = dataclasses.replace(account, leverage=leverage)


def _margin_mode_changed(state: StateLike, event: Event) -> None:
    account = state.accounts[event["account"]]
    modes = {**account.margin_mode, event["symbol"]: MarginMode(event["margin_mode"])}
    state.accounts[event["account"]] = dataclasses.replace(account, margin_mode=modes)


def _position_mode_changed(state: StateLike, event: Event) -> None:
    account = state.accounts[event["account"]]
    mode = PositionMode(event["position_mode"])
    state.accounts[event["account"]] = dataclasses.replace(account, position_mode=mode)


def _mark_updated(state: StateLike, event: Event) -> None:
    state.marks[event["symbol"]] = Decimal(event["price"])


def _margin_call(state: StateLike, event: Event) -> None:
    account = state.accounts[event["account"]]
    scopes = set(account.margin_calls)
    if event["type"] == "MarginCallIssued":
        scopes.add(event["scope"])
    else:
        scopes.discard(event["scope"])
    state.accounts[event["account"]] = dataclasses.replace(account, margin_calls=frozenset(scopes))
    if scopes:
        state.holders.add(CALLED, event["account"])
    else:
        state.holders.discard(CALLED, event["account"])


SPECIFIC: dict[str, Callable[[StateLike, Event], None]] = {
    "AccountOpened": _account_opened,
    "LeverageChanged": _leverage_changed,
    "MarginModeChanged": _margin_mode_changed,
    "PositionModeChanged": _position_mode_changed,
    "MarkPriceUpdated": _mark_updated,
    "MarginCallIssued": _margin_call,
    "MarginCallCleared": _margin_call,
}


def evolve(state: StateLike, event: Event) -> None:
    """Fold ``event`` into ``state`` (a live state or a draft)."""
    handler = SPECIFIC.get(event["type"])
    if handler is not None:
        handler(state, event)
    postings = event.get("postings") or []
    with decimal.localcontext(_LEDGER_CONTEXT):
        total = sum((Decimal(amount) for _, amount in postings), ZERO)
    if total != 0:
        raise InvariantViolation(f"{event['type']} postings sum to {total}, not zero")
    if "order_removed" in event:
        _remove_order(state, event["account"], event["order_removed"])
    if "order" in event:
        _apply_order(state, event["order"])
    if "position" in event:
        _apply_position(state, event["position"])
    if postings:
        _apply_postings(state, postings)
    state.sequence += 1
