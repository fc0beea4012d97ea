"""The liquidation engine, run after every mark update (and funding settlement).

For each account holding the updated symbol, each scope (the cross account, each isolated
position) at or below maintenance (MB <= MM) is liquidated by the exact core:

1. ``LiquidationTriggered``; the scope's open orders are cancelled (their margin released).
2. While the scope is still liquidatable: if its margin balance is positive, take its largest
   position; if that position is above the first bracket, close just enough at the mark to bring
   its notional down to the cap of the bracket below (partial liquidation, bracket by bracket),
   else close it whole at the mark. The clearance fee (liquidation fee rate x notional closed,
   capped at what the scope still has above zero) goes to the insurance fund.
3. A scope whose margin balance is negative at the mark is bankrupt: every position in it is
   closed at the mark. When the fund cannot cover the deficit, the largest position is first
   auto-deleveraged: closed at its bankruptcy price against opposite positions of other
   accounts, ranked by profit and effective leverage (``PnL% x leverage`` for profitable
   positions, ``PnL% / leverage`` otherwise), at no fee; a remainder no counterparty can absorb
   is closed at the mark.
4. A scope left with no position and negative collateral (after 3, or after 2 by rounding dust)
   is settled: the fund pays what it can of the realized deficit (``InsuranceFundPaid``) and what
   is left is recorded as ``BadDebtRecorded`` (the collateral stays negative by that amount).
   Every amount posted is on the money quantum: the fund pays the realized, quantized deficit,
   and a fee capped by the margin balance is capped at that balance rounded down.
Margin calls: a scope whose margin ratio reaches the threshold (default 80%) gets
``MarginCallIssued`` once, and ``MarginCallCleared`` when it falls back below.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crossmargin.app import screening
from crossmargin.app.events import Event
from crossmargin.app.model import CALLED, Account
from crossmargin.app.trading import Fill, book_fill, isolated, wallet
from crossmargin.app.views import book_for, scopes_at_risk
from crossmargin.core.liquidation import Leg, bankruptcy_price
from crossmargin.core.margin import maintenance_margin, maintenance_terms
from crossmargin.core.numbers import ZERO, round_balance_delta, round_requirement
from crossmargin.core.position import Position
from crossmargin.core.risk import total_risk

if TYPE_CHECKING:
    from crossmargin.app.decide import Decision

MARGIN_CALL_THRESHOLD = Decimal("0.8")
QUANTITY_QUANTUM = Decimal("1e-8")


def after_mark_update(d: Decision, symbol: str, *, screened: bool = True) -> dict[str, Any]:
    """Liquidate and warn the holders of ``symbol`` after its mark moved.

    With a screen (kept by the writer) only the accounts it flags, the accounts this command
    already touched and those with an open margin call are confirmed by the Decimal core;
    without one (or ``screened=False``, e.g. after funding moved every holder's wallet) every
    holder is.
    """
    liquidations = 0
    holders = d.draft.holders.members(symbol)
    # an open margin call is re-examined on every tick, even once its positions are gone
    called = set(d.draft.holders.members(CALLED))
    screen = d.draft.base.screen
    if screened and screen is not None:
        base = d.draft.base
        if base.screen_dirty:  # committed changes the screen has not seen yet
            screening.sync(base, base.screen_dirty)
            base.screen_dirty = set()
        price = d.draft.marks[symbol]
        flagged = screen.tick(symbol, float(price), float(MARGIN_CALL_THRESHOLD))
        overlay = d.draft.accounts.maps[0] if hasattr(d.draft.accounts, "maps") else {}
        flagged |= {a for a in overlay if a in holders}
        candidates = sorted((flagged & holders) | called)
    else:
        candidates = sorted(set(holders) | called)
    for account_id in candidates:
        for scope, *_rest, liquidatable in scopes_at_risk(d.draft, d.draft.accounts[account_id]):
            if liquidatable:
                liquidate_scope(d, account_id, scope)
                liquidations += 1
        _margin_calls(d, account_id)
    return {"liquidations": liquidations} if liquidations else {}


def refresh_margin_calls(d: Decision, account_id: str) -> None:
    """Issue or clear ``account_id``'s margin calls after a command changed its balance or
    positions (a client's fill, a deposit or withdrawal, a margin move), not only on ticks."""
    _margin_calls(d, account_id)


def _margin_calls(d: Decision, account_id: str) -> None:
    account = d.draft.accounts[account_id]
    current = {scope: ratio for scope, _, _, ratio, _ in scopes_at_risk(d.draft, account)}
    for scope, ratio in sorted(current.items()):
        high = ratio is None or ratio >= MARGIN_CALL_THRESHOLD
        if high and scope not in account.margin_calls:
            d.emit(
                {
                    "type": "MarginCallIssued",
                    "account": account_id,
                    "scope": scope,
                    "margin_ratio": ratio,
                    "threshold": MARGIN_CALL_THRESHOLD,
                }
            )
    for scope in sorted(account.margin_calls):
        ratio = current.get(scope, ZERO)
        if scope not in current or (ratio is not None and ratio < MARGIN_CALL_THRESHOLD):
            d.emit({"type": "MarginCallCleared", "account": account_id, "scope": scope})


def _scope_positions(account: Account, scope: str) -> list[tuple[tuple[str, str], Position]]:
    if scope == "cross":
        return [(k, p) for k, p in account.positions.items() if not p.is_isolated]
    _, symbol, slot = scope.split(":")
    position = account.positions.get((symbol, slot))
    return [] if position is None else [((symbol, slot), position)]


def _scope_state(d: Decision, account_id: str, scope: str) -> tuple[Decimal, bool]:
    """(margin balance, liquidatable) of one scope now."""
    for name, collateral, risk, _, liquidatable in scopes_at_risk(
        d.draft, d.draft.accounts[account_id]
    ):
        if name == scope:
            return collateral + risk.unrealized_pnl, liquidatable
    return ZERO, False


def _collateral_ledger(account_id: str, scope: str) -> str:
    if scope == "cross":
        return wallet(account_id)
    _, symbol, slot = scope.split(":")
    return isolated(account_id, symbol, slot)


def liquidate_scope(d: Decision, account_id: str, scope: str) -> None:
    balance, _ = _scope_state(d, account_id, scope)
    account = d.draft.accounts[account_id]
    book = book_for(d.draft, account)
    risk = total_risk(book, [p for p in book.positions if _in_scope(p, account, scope)])
    d.emit(
        {
            "type": "LiquidationTriggered",
            "account": account_id,
            "scope": scope,
            "margin_balance": balance,
            "maintenance_margin": risk.maintenance_margin,
        }
    )
    _cancel_scope_orders(d, account_id, scope)
    for _ in range(200):  # each pass removes a bracket or a position; the bound is a backstop
        balance, liquidatable = _scope_state(d, account_id, scope)
        positions = _scope_positions(d.draft.accounts[account_id], scope)
        if not liquidatable or not positions:
            break
        if balance < 0:
            _bankrupt(d, account_id, scope, -balance)
            break
        key, position = max(
            positions, key=lambda item: (item[1].quantity * _mark(d, item[1]), item[0])
        )
        _reduce(d, account_id, scope, key, position, balance)
    _settle_deficit(d, account_id, scope)


def _in_scope(position: Position, account: Account, scope: str) -> bool:
    if scope == "cross":
        return not position.is_isolated
    _, symbol, slot = scope.split(":")
    held = account.positions.get((symbol, slot))
    return held is not None and held.symbol == position.symbol and held.side is position.side


def _mark(d: Decision, position: Position) -> Decimal:
    mark = d.draft.marks.get(position.symbol)
    return mark if mark is not None else position.entry_price


def _cancel_scope_orders(d: Decision, account_id: str, scope: str) -> None:
    account = d.draft.accounts[account_id]
    for order in sorted(account.orders.values(), key=lambda o: o.order_id):
        key = (order.symbol, order.position_side)
        held = account.positions.get(key)
        isolated_order = held is not None and held.is_isolated
        mine = (
            not isolated_order
            if scope == "cross"
            else scope == f"isolated:{order.symbol}:{order.position_side}"
        )
        if mine:
            d.emit(
                {
                    "type": "OrderCancelled",
                    "account": account_id,
                    "order_id": order.order_id,
                    "reason": "liquidation",
                    "order_removed": order.order_id,
                }
            )


def _forced_close(
    account_id: str,
    slot: str,
    position: Position,
    quantity: Decimal,
    price: Decimal,
    *,
    liquidity: str = "liquidation",
    event_type: str = "PositionLiquidated",
    release_isolated: bool = True,
) -> Fill:
    """A fee-free fill closing ``quantity`` of ``position`` (liquidation or ADL)."""
    return Fill(
        account=account_id,
        symbol=position.symbol,
        side=position.side.opposite,
        slot=slot,
        quantity=quantity,
        price=price,
        fee_rate=ZERO,
        liquidity=liquidity,
        event_type=event_type,
        release_isolated=release_isolated,
    )


def _reduce(
    d: Decision,
    account_id: str,
    scope: str,
    key: tuple[str, str],
    position: Position,
    balance: Decimal,
) -> None:
    mark = _mark(d, position)
    instrument = d.draft.instruments[position.symbol]
    quantity = _partial_quantity(d, account_id, scope, position, balance, mark)
    partial = quantity < position.quantity
    # the fee is owed to the fund (rounded up) but capped at what the scope still has (rounded
    # down), so every amount posted stays on the money quantum
    fee = min(
        round_requirement(quantity * mark * instrument.liquidation_fee_rate),
        max(ZERO, round_balance_delta(balance)),
    )
    if fee > 0:
        d.emit(
            {
                "type": "LiquidationFeeCharged",
                "account": account_id,
                "scope": scope,
                "amount": fee,
                "postings": [
                    [_collateral_ledger(account_id, scope), -fee],
                    ["insurance_fund", fee],
                ],
            }
        )
    fill = _forced_close(account_id, key[1], position, quantity, mark, release_isolated=False)
    d.emit(book_fill(d.draft, fill, {"scope": scope, "partial": partial}))


def _partial_quantity(
    d: Decision,
    account_id: str,
    scope: str,
    position: Position,
    balance: Decimal,
    mark: Decimal,
) -> Decimal:
    """How much of ``position`` to close: the least, bracket by bracket, that restores margin.

    For each lower bracket, from the next one down, the position is cut to that bracket's cap;
    if the scope's margin balance after the clearance fee on the part closed is then above its
    maintenance margin, that cut is the partial liquidation. If no cut restores the margin, the
    whole position is closed. (With Binance's 1.25% fee, a cut only restores margin where the
    bracket's maintenance rate is above the fee rate, so small positions close whole.)
    """
    rules = d.draft.rules
    instrument = d.draft.instruments[position.symbol]
    index = maintenance_terms(rules, instrument, position, mark).bracket_index
    scope_mm = next(
        risk.maintenance_margin
        for name, _, risk, _, _ in scopes_at_risk(d.draft, d.draft.accounts[account_id])
        if name == scope
    )
    position_mm = maintenance_margin(rules, instrument, position, mark)
    for lower in range(index - 1, -1, -1):
        cap = instrument.brackets[lower].cap
        if cap is None:
            continue
        keep = (cap / mark).quantize(QUANTITY_QUANTUM, rounding="ROUND_FLOOR")
        if not 0 < keep < position.quantity:
            continue
        closed = position.quantity - keep
        fee = min(
            round_requirement(closed * mark * instrument.liquidation_fee_rate),
            max(ZERO, round_balance_delta(balance)),
        )
        reduced = dataclasses.replace(
            position,
            quantity=keep,
            entry_notional=position.entry_notional * keep / position.quantity,
        )
        after_mm = scope_mm - position_mm + maintenance_margin(rules, instrument, reduced, mark)
        if balance - fee > after_mm:
            return closed
    return position.quantity


def _bankrupt(d: Decision, account_id: str, scope: str, deficit: Decimal) -> None:
    """Close a scope whose margin balance is negative: ADL first when the fund cannot cover it.

    The deficit itself is settled afterwards by :func:`_settle_deficit`, on the realized
    (quantized) balance rather than on the exact negative margin balance.
    """
    if d.draft.ledgers.insurance_fund < deficit:
        account = d.draft.accounts[account_id]
        positions = _scope_positions(account, scope)
        key, position = max(
            positions, key=lambda item: (item[1].quantity * _mark(d, item[1]), item[0])
        )
        book = book_for(d.draft, account)
        price = _bankruptcy_price(d, account, scope, position, book)
        if price is not None:
            _auto_deleverage(d, account_id, scope, key, position, price)
    _close_all_at_mark(d, account_id, scope)


def _settle_deficit(d: Decision, account_id: str, scope: str) -> None:
    """A scope left with no position and negative collateral: the fund pays what it can and the
    rest is recorded as bad debt (the collateral stays negative by that amount)."""
    if _scope_positions(d.draft.accounts[account_id], scope):
        return
    left = -_collateral_balance(d, account_id, scope)
    if left <= 0:
        return
    paid = min(left, d.draft.ledgers.insurance_fund)
    if paid > 0:
        d.emit(_fund_pays(account_id, scope, _collateral_ledger(account_id, scope), paid))
    if left - paid > 0:
        d.emit(
            {
                "type": "BadDebtRecorded",
                "account": account_id,
                "scope": scope,
                "amount": left - paid,
            }
        )


def _collateral_balance(d: Decision, account_id: str, scope: str) -> Decimal:
    account = d.draft.accounts[account_id]
    if scope == "cross":
        return account.wallet
    _, symbol, slot = scope.split(":")
    return account.isolated.get((symbol, slot), ZERO)


def _fund_pays(account_id: str, scope: str, ledger: str, amount: Decimal) -> Event:
    return {
        "type": "InsuranceFundPaid",
        "account": account_id,
        "scope": scope,
        "amount": amount,
        "postings": [["insurance_fund", -amount], [ledger, amount]],
    }


def _close_all_at_mark(d: Decision, account_id: str, scope: str) -> None:
    for key, position in sorted(_scope_positions(d.draft.accounts[account_id], scope)):
        fill = _forced_close(account_id, key[1], position, position.quantity, _mark(d, position))
        d.emit(book_fill(d.draft, fill, {"scope": scope, "partial": False}))


def _bankruptcy_price(
    d: Decision, account: Account, scope: str, position: Position, book: Any
) -> Decimal | None:
    if scope == "cross":
        moving = [p for p in book.cross_positions() if p.symbol == position.symbol]
        fixed = account.wallet
        for other in book.cross_positions():
            if other.symbol != position.symbol:
                fixed += other.unrealized_pnl(book.mark(other.symbol))
    else:
        moving = [p for p in book.positions if p.symbol == position.symbol and p.is_isolated]
        moving = [p for p in moving if p.side is position.side]
        fixed = moving[0].isolated_margin or ZERO
    legs = [Leg(position=p, instrument=d.draft.instruments[p.symbol]) for p in moving]
    return bankruptcy_price(d.draft.rules, legs, fixed, book.mark(position.symbol))


def adl_ranking(d: Decision, symbol: str, side: Any, exclude: str) -> list[tuple[str, str]]:
    """Opposite positions on ``symbol`` ranked for auto-deleveraging, best candidate first."""
    ranked: list[tuple[Decimal, str, str]] = []
    for account_id in sorted(d.draft.holders.members(symbol)):
        if account_id == exclude:
            continue
        account = d.draft.accounts[account_id]
        for (held_symbol, slot), position in account.positions.items():
            if held_symbol != symbol or position.side is not side:
                continue
            mark = _mark(d, position)
            pnl = position.unrealized_pnl(mark)
            pnl_pct = pnl / position.entry_notional
            if position.is_isolated:
                margin_balance = account.isolated.get((symbol, slot), ZERO) + pnl
            else:
                book = book_for(d.draft, account)
                cross = total_risk(book, book.cross_positions())
                margin_balance = account.wallet + cross.unrealized_pnl
            leverage = position.notional(mark) / margin_balance if margin_balance > 0 else None
            if leverage is None:
                score = pnl_pct * Decimal("1e9") if pnl_pct >= 0 else pnl_pct
            else:
                score = pnl_pct * leverage if pnl_pct >= 0 else pnl_pct / leverage
            ranked.append((score, account_id, slot))
    ranked.sort(key=lambda item: (-item[0], item[1], item[2]))
    return [(account_id, slot) for _, account_id, slot in ranked]


def _auto_deleverage(
    d: Decision,
    account_id: str,
    scope: str,
    key: tuple[str, str],
    position: Position,
    price: Decimal,
) -> None:
    remaining = position.quantity
    for other_id, slot in adl_ranking(d, position.symbol, position.side.opposite, account_id):
        if remaining <= 0:
            break
        other = d.draft.accounts[other_id].positions[(position.symbol, slot)]
        take = min(remaining, other.quantity)
        d.emit(
            book_fill(
                d.draft,
                _forced_close(
                    other_id,
                    slot,
                    other,
                    take,
                    price,
                    liquidity="adl",
                    event_type="PositionAutoDeleveraged",
                ),
                {"against": account_id},
            )
        )
        d.emit(
            book_fill(
                d.draft,
                _forced_close(
                    account_id,
                    key[1],
                    position,
                    take,
                    price,
                    liquidity="adl",
                    release_isolated=False,
                ),
                {"scope": scope, "partial": take < remaining, "against": other_id},
            )
        )
        # The bankruptcy price can lie beyond the mark (the mark gapped past it), so the
        # counterparty may realize a loss that overdraws its collateral: a scope left without
        # positions is settled like any other (fund, then bad debt) rather than left negative.
        other_scope = f"isolated:{position.symbol}:{slot}" if other.is_isolated else "cross"
        _settle_deficit(d, other_id, other_scope)
        remaining -= take


__all__ = ["after_mark_update", "dataclasses", "refresh_margin_calls"]
