"""``decide``: one command against the state -> accepted events, or a rejection with a reason.

Handlers work on a :class:`Draft` overlaid on the live state: each emitted event is folded into
the draft at once (so a market order's fill sees its own acceptance, and a liquidation sees the
fills before it). A rejection drops the draft: nothing changes. The writer commits the draft only
after the events are durably appended.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crossmargin.app.commands import decimal_field, validate
from crossmargin.app.events import Event, evolve, order_to_dict, position_to_dict
from crossmargin.app.liquidation import examine
from crossmargin.app.model import BOTH, Account, Draft, Order, OrderType, Reason
from crossmargin.app.trading import Fill, book_fill, increasing_quantity, slot_for, wallet
from crossmargin.app.views import book_for, cross_risk, free_margin
from crossmargin.core.errors import InvalidInput
from crossmargin.core.margin import open_loss
from crossmargin.core.numbers import ZERO, round_requirement
from crossmargin.core.position import MarginMode, PositionMode, Side
from crossmargin.core.risk import is_liquidatable, total_risk


class Rejection(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


@dataclass(slots=True)
class Decision:
    draft: Draft
    events: list[Event] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    # accounts to examine besides those the events name (the holders of a ticked symbol)
    examine_also: set[str] = field(default_factory=set)

    def emit(self, event: Event) -> None:
        evolve(self.draft, event)
        self.events.append(event)


def reject(reason: Reason, message: str) -> Rejection:
    return Rejection(reason, message)


def account_of(decision: Decision, command: dict[str, Any]) -> Account:
    account = decision.draft.accounts.get(command["account"])
    if account is None:
        raise reject(Reason.UNKNOWN_ACCOUNT, f"no account {command['account']!r}")
    return account


def symbol_of(decision: Decision, command: dict[str, Any]) -> str:
    symbol = str(command["symbol"])
    if symbol not in decision.draft.instruments:
        raise reject(Reason.UNKNOWN_SYMBOL, f"{symbol!r} is not traded on this engine")
    return symbol


def open_account(d: Decision, c: dict[str, Any]) -> None:
    if c["account"] in d.draft.accounts:
        raise reject(Reason.ACCOUNT_EXISTS, f"account {c['account']!r} already exists")
    d.emit({"type": "AccountOpened", "account": c["account"]})


def deposit(d: Decision, c: dict[str, Any]) -> None:
    account = account_of(d, c)
    amount = decimal_field(c, "amount")
    d.emit(
        {
            "type": "FundsDeposited",
            "account": account.account_id,
            "amount": amount,
            "postings": [[wallet(account.account_id), amount], ["external:deposits", -amount]],
        }
    )


def withdraw(d: Decision, c: dict[str, Any]) -> None:
    account = account_of(d, c)
    amount = decimal_field(c, "amount")
    free = free_margin(d.draft, account)
    if amount > free:
        raise reject(
            Reason.INSUFFICIENT_BALANCE,
            f"withdrawable {max(ZERO, free)} is below the requested {amount}",
        )
    after = dataclasses.replace(account, wallet=account.wallet - amount)
    risk = cross_risk(d.draft, after)
    if is_liquidatable(after.wallet, risk):
        raise reject(Reason.WITHDRAWAL_WOULD_LIQUIDATE, "the account would fall to maintenance")
    d.emit(
        {
            "type": "FundsWithdrawn",
            "account": account.account_id,
            "amount": amount,
            "postings": [[wallet(account.account_id), -amount], ["external:deposits", amount]],
        }
    )


def _isolated_slot(d: Decision, c: dict[str, Any], account: Account) -> tuple[str, str]:
    symbol = symbol_of(d, c)
    side = c.get("position_side")
    if account.position_mode is PositionMode.HEDGE and side is None:
        raise InvalidInput("position_side", "is required in hedge mode")
    slot = BOTH if account.position_mode is PositionMode.ONE_WAY else str(side)
    position = account.positions.get((symbol, slot))
    if position is None:
        raise reject(Reason.NO_POSITION, f"no {symbol} position to move margin into or out of")
    if not position.is_isolated:
        raise reject(Reason.NOT_ISOLATED, f"the {symbol} position is cross margined")
    return symbol, slot


def add_isolated_margin(d: Decision, c: dict[str, Any]) -> None:
    account = account_of(d, c)
    symbol, slot = _isolated_slot(d, c, account)
    amount = decimal_field(c, "amount")
    if amount > free_margin(d.draft, account):
        raise reject(Reason.INSUFFICIENT_BALANCE, "the cross wallet cannot spare that much")
    ledger = f"isolated:{account.account_id}:{symbol}:{slot}"
    d.emit(
        {
            "type": "IsolatedMarginAdded",
            "account": account.account_id,
            "symbol": symbol,
            "slot": slot,
            "amount": amount,
            "postings": [[wallet(account.account_id), -amount], [ledger, amount]],
        }
    )


def remove_isolated_margin(d: Decision, c: dict[str, Any]) -> None:
    account = account_of(d, c)
    symbol, slot = _isolated_slot(d, c, account)
    amount = decimal_field(c, "amount")
    margin = account.isolated.get((symbol, slot), ZERO)
    position = account.positions[(symbol, slot)]
    mark = d.draft.marks.get(symbol, position.entry_price)
    book = book_for(d.draft, account)
    risk = total_risk(book, [dataclasses.replace(position, isolated_margin=margin - amount)])
    if margin - amount + min(ZERO, risk.unrealized_pnl) < risk.initial_margin:
        raise reject(
            Reason.ISOLATED_BELOW_INITIAL_MARGIN,
            f"the {symbol} position would hold less than its initial margin "
            f"{risk.initial_margin} at mark {mark}",
        )
    ledger = f"isolated:{account.account_id}:{symbol}:{slot}"
    d.emit(
        {
            "type": "IsolatedMarginRemoved",
            "account": account.account_id,
            "symbol": symbol,
            "slot": slot,
            "amount": amount,
            "postings": [[ledger, -amount], [wallet(account.account_id), amount]],
        }
    )


def _max_leverage(d: Decision, symbol: str, notional: Decimal) -> Decimal | None:
    return d.draft.instruments[symbol].bracket_for(notional).max_leverage


def set_leverage(d: Decision, c: dict[str, Any]) -> None:
    """Leverage of a symbol: its positions and resting orders are re-margined at once.

    Refused when the bracket of the held notional does not allow it, when the cross margin
    cannot carry the positions and the resting orders re-reserved at the new leverage, or when an
    isolated position's margin is below its initial margin at the new leverage."""
    from crossmargin.app.orders import reserve_for

    account = account_of(d, c)
    symbol = symbol_of(d, c)
    leverage = decimal_field(c, "leverage")
    held = [(k, p) for k, p in sorted(account.positions.items()) if k[0] == symbol]
    mark = d.draft.marks.get(symbol)
    notional = sum(
        (p.quantity * (mark if mark is not None else p.entry_price) for _, p in held), ZERO
    )
    cap = _max_leverage(d, symbol, notional)
    if cap is not None and leverage > cap:
        raise reject(
            Reason.LEVERAGE_ABOVE_MAX,
            f"{leverage}x is above the {cap}x allowed for a {symbol} notional of {notional}",
        )
    positions = dict(account.positions)
    for key, position in held:
        positions[key] = dataclasses.replace(position, leverage=leverage)
    trial = dataclasses.replace(
        account, positions=positions, leverage={**account.leverage, symbol: leverage}
    )
    orders = dict(account.orders)
    repriced = []
    for order_id, order in sorted(account.orders.items()):
        if order.symbol != symbol or order.reduce_only:
            continue
        reserved = reserve_for(d, trial, order)
        if reserved != order.reserved:
            orders[order_id] = dataclasses.replace(order, reserved=reserved)
            repriced.append(orders[order_id])
    trial = dataclasses.replace(trial, orders=orders)
    touches = held or any(o.symbol == symbol for o in account.orders.values())
    if touches and free_margin(d.draft, trial) < 0:
        raise reject(
            Reason.INSUFFICIENT_MARGIN,
            f"the cross margin would not cover the {symbol} positions and orders at {leverage}x",
        )
    book = book_for(d.draft, trial)
    for key, position in held:
        if position.is_isolated:
            margin = account.isolated.get(key, ZERO)
            risk = total_risk(book, [dataclasses.replace(position, leverage=leverage)])
            if margin + min(ZERO, risk.unrealized_pnl) < risk.initial_margin:
                raise reject(
                    Reason.INSUFFICIENT_MARGIN,
                    f"the isolated {symbol} margin {margin} is below the initial margin "
                    f"{risk.initial_margin} at {leverage}x",
                )
    d.emit(
        {
            "type": "LeverageChanged",
            "account": account.account_id,
            "symbol": symbol,
            "leverage": leverage,
        }
    )
    for key, _position in held:
        d.emit(
            {
                "type": "PositionLeverageChanged",
                "account": account.account_id,
                "position": {
                    "account": account.account_id,
                    "symbol": symbol,
                    "slot": key[1],
                    "after": position_to_dict(positions[key]),
                },
            }
        )
    for order in repriced:
        d.emit(
            {"type": "OrderRepriced", "account": account.account_id, "order": order_to_dict(order)}
        )


def set_margin_mode(d: Decision, c: dict[str, Any]) -> None:
    from crossmargin.core.venues import MarginModeScope

    account = account_of(d, c)
    symbol = symbol_of(d, c)
    mode = MarginMode(c["margin_mode"])
    rules = d.draft.rules
    if account.mode_for(symbol) is mode:
        raise reject(Reason.MARGIN_MODE_UNCHANGED, f"{symbol} is already {mode.value}")
    account_wide = rules.margin_mode_scope is MarginModeScope.ACCOUNT
    in_scope = (lambda s: True) if account_wide else (lambda s: s == symbol)
    if rules.switch.margin_mode_refused_with_position and any(
        in_scope(k[0]) for k in account.positions
    ):
        raise reject(
            Reason.MARGIN_MODE_SWITCH_WITH_OPEN_POSITION,
            f"{rules.name} refuses a margin-mode switch with an open position"
            + _venue_code(d, Reason.MARGIN_MODE_SWITCH_WITH_OPEN_POSITION),
        )
    if rules.switch.margin_mode_refused_with_orders and any(
        in_scope(o.symbol) for o in account.orders.values()
    ):
        raise reject(
            Reason.MARGIN_MODE_SWITCH_WITH_OPEN_ORDERS,
            f"{rules.name} refuses a margin-mode switch with open orders"
            + _venue_code(d, Reason.MARGIN_MODE_SWITCH_WITH_OPEN_ORDERS),
        )
    symbols = sorted(d.draft.instruments) if account_wide else [symbol]
    for name in symbols:
        d.emit(
            {
                "type": "MarginModeChanged",
                "account": account.account_id,
                "symbol": name,
                "margin_mode": mode.value,
            }
        )


def _venue_code(d: Decision, reason: Reason) -> str:
    code = d.draft.rules.switch.venue_codes.get(reason.value)
    return f" (venue code {code})" if code else ""


def set_position_mode(d: Decision, c: dict[str, Any]) -> None:
    account = account_of(d, c)
    mode = PositionMode(c["position_mode"])
    if account.position_mode is mode:
        raise reject(Reason.POSITION_MODE_UNCHANGED, f"already in {mode.value} mode")
    if mode is PositionMode.HEDGE and not d.draft.rules.hedge_mode:
        raise reject(
            Reason.POSITION_MODE_UNSUPPORTED,
            f"{d.draft.rules.name} has no hedge mode (one-way only)",
        )
    if account.positions:
        raise reject(
            Reason.POSITION_MODE_SWITCH_WITH_OPEN_POSITION,
            "close every position before switching position mode"
            + _venue_code(d, Reason.POSITION_MODE_SWITCH_WITH_OPEN_POSITION),
        )
    if account.orders:
        raise reject(
            Reason.POSITION_MODE_SWITCH_WITH_OPEN_ORDERS,
            "cancel every order before switching position mode"
            + _venue_code(d, Reason.POSITION_MODE_SWITCH_WITH_OPEN_ORDERS),
        )
    d.emit(
        {
            "type": "PositionModeChanged",
            "account": account.account_id,
            "position_mode": mode.value,
        }
    )


def seed_insurance_fund(d: Decision, c: dict[str, Any]) -> None:
    amount = decimal_field(c, "amount")
    d.emit(
        {
            "type": "InsuranceFundSeeded",
            "amount": amount,
            "postings": [["insurance_fund", amount], ["external:insurance", -amount]],
        }
    )


HANDLERS: dict[str, Callable[[Decision, dict[str, Any]], None]] = {
    "open_account": open_account,
    "deposit": deposit,
    "withdraw": withdraw,
    "add_isolated_margin": add_isolated_margin,
    "remove_isolated_margin": remove_isolated_margin,
    "set_leverage": set_leverage,
    "set_margin_mode": set_margin_mode,
    "set_position_mode": set_position_mode,
    "seed_insurance_fund": seed_insurance_fund,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a command produced: its result (returned to the client) and its events."""

    result: dict[str, Any]
    events: list[Event]
    draft: Draft | None  # None when rejected

    @property
    def accepted(self) -> bool:
        return bool(self.result["status"] == "accepted")


def decide(state: Any, command: object, *, matching: str = "simulated") -> Outcome:
    """Decide ``command`` against ``state``; the returned draft holds the changes (uncommitted)."""
    from crossmargin.app.orders import ORDER_HANDLERS

    try:
        valid = validate(command)
    except InvalidInput as error:
        return _rejected(Reason.INVALID_COMMAND, str(error), field_name=error.field)
    decision = Decision(draft=state.draft())
    try:
        if valid["type"] in ORDER_HANDLERS:
            ORDER_HANDLERS[valid["type"]](decision, valid, matching)
        else:
            HANDLERS[valid["type"]](decision, valid)
    except Rejection as rejection:
        return _rejected(rejection.reason, rejection.message)
    except InvalidInput as error:
        return _rejected(Reason.INVALID_COMMAND, str(error), field_name=error.field)
    # No command leaves an account past maintenance: every account it touched is examined.
    touched = {e["account"] for e in decision.events if isinstance(e.get("account"), str)}
    liquidations = examine(decision, touched | decision.examine_also)
    if liquidations:
        decision.result["liquidations"] = liquidations
    result = {"status": "accepted", "events": len(decision.events), **decision.result}
    return Outcome(result=result, events=decision.events, draft=decision.draft)


def _rejected(reason: Reason, message: str, field_name: str | None = None) -> Outcome:
    result: dict[str, Any] = {"status": "rejected", "reason": reason.value, "message": message}
    if field_name:
        result["field"] = field_name
    return Outcome(result=result, events=[], draft=None)


__all__ = [
    "Decision",
    "Fill",
    "Order",
    "OrderType",
    "Outcome",
    "Side",
    "book_fill",
    "decide",
    "increasing_quantity",
    "open_loss",
    "order_to_dict",
    "reject",
    "round_requirement",
    "slot_for",
]
