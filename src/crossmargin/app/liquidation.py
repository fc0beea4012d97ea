"""The examination: after every accepted command, no account is left past maintenance.

What it owns: liquidation (Binance's published procedure: cancel orders, "smart" partial
liquidation with a clearance fee, takeover at the bankruptcy price, insurance fund, ADL), the
settlement of a bankrupt scope to exactly zero, and margin calls. docs/engine.md states the
procedure and its invariants; the reference model in tests/model checks them after every step.

The set examined after a command: every account its events name (own fills, ADL counterparties,
funding payers...), plus the holders of a ticked symbol (pre-screened by floats, confirmed in
Decimal) and every account with an open margin call. The smallest account id is examined first;
a liquidation that touches other accounts (ADL counterparties) adds them back to the set.

Examining an account, scope by scope (cross, then isolated slots by (symbol, slot)):
* a scope without positions whose collateral is negative is settled: the insurance fund pays what
  it can, the rest is bad debt (``bad_debt`` ledger);
* a liquidatable scope (``MB <= MM``) is liquidated:
  1. ``LiquidationTriggered``; open orders are cancelled (all of the account's for the cross
     scope, as Binance does; the slot's for an isolated scope).
  2. While liquidatable and ``MB >= 0``: the largest position is cut, at the mark, to the cap of
     the first lower bracket after which ``MB - clearance fee > MM``, else closed whole. The
     clearance fee (closed notional x liquidation fee rate, rounded up, capped at MB rounded
     down) goes to the insurance fund. What is left after a full close stays with the trader.
  3. ``MB < 0``: bankrupt. The deficit ``D = -MB`` is assigned to the losing positions, largest
     loss first, each up to its own loss; a position's bankruptcy price is its mark moved by its
     share per unit (toward its entry, rounded toward the mark), so closing every position at its
     own price brings the scope to zero. Each position is taken over by the insurance fund as far
     as the fund can pay the gap to the mark, the rest is auto-deleveraged at that price against
     the opposite positions of other accounts on the same symbol (ranked by profit and effective
     leverage), and what no counterparty can take closes at the mark. The scope is then settled
     to exactly zero: dust left over goes to the fund, a deficit is paid by the fund, then
     recorded as bad debt.
then margin calls: ``MarginCallIssued`` once a scope's ratio ``MM / MB`` (rounded up) reaches 0.8
or its MB is not positive, ``MarginCallCleared`` when it falls back or the scope is gone.

Rounding: every amount posted is on the money quantum; bankruptcy prices are rounded toward the
mark (``round_trigger_price``), so a counterparty is never closed beyond the exact price.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

from crossmargin.app import screening
from crossmargin.app.events import Event
from crossmargin.app.model import CALLED, Account
from crossmargin.app.trading import Fill, book_fill, isolated, wallet
from crossmargin.app.views import ScopeState, book_for, scope_names, scope_state
from crossmargin.core.errors import InvariantViolation
from crossmargin.core.margin import maintenance_margin, maintenance_terms
from crossmargin.core.numbers import (
    ZERO,
    round_balance_delta,
    round_requirement,
    round_trigger_price,
)
from crossmargin.core.position import Position, Side
from crossmargin.core.risk import total_risk

if TYPE_CHECKING:
    from crossmargin.app.decide import Decision

MARGIN_CALL_THRESHOLD = Decimal("0.8")
QUANTITY_QUANTUM = Decimal("1e-8")
MAX_PASSES = 200  # each pass of a liquidation removes a bracket or a position
Key = tuple[str, str]


# -- which accounts to examine -------------------------------------------------------------------


def tick_candidates(d: Decision, symbol: str, *, screened: bool = True) -> set[str]:
    """Holders of ``symbol`` worth confirming after its mark moved, plus open margin calls.

    With the float screen (kept by the writer), only the holders it flags; without it (or
    ``screened=False``, e.g. after funding moved every holder's balance) every holder."""
    holders = d.draft.holders.members(symbol)
    called = set(d.draft.holders.members(CALLED))
    screen = d.draft.base.screen
    if not screened or screen is None:
        return set(holders) | called
    base = d.draft.base
    if base.screen_dirty:  # committed changes the screen has not seen yet
        screening.sync(base, base.screen_dirty)
        base.screen_dirty = set()
    flagged = screen.tick(symbol, float(d.draft.marks[symbol]), float(MARGIN_CALL_THRESHOLD))
    return (flagged & set(holders)) | called


def examine(d: Decision, accounts: Iterable[str]) -> int:
    """Examine ``accounts`` (and every account their liquidations touch); returns how many
    scopes were liquidated."""
    pending = {a for a in accounts if a in d.draft.accounts}
    liquidations = 0
    budget = 1000 + 20 * len(d.draft.accounts)  # a backstop: each liquidation closes positions
    while pending:
        budget -= 1
        if budget < 0:
            raise InvariantViolation("the examination did not settle: accounts keep re-entering")
        account_id = min(pending)
        pending.discard(account_id)
        first = len(d.events)
        liquidations += _examine_account(d, account_id)
        for event in d.events[first:]:
            other = event.get("account")
            if isinstance(other, str) and other != account_id:
                pending.add(other)
    return liquidations


def _examine_account(d: Decision, account_id: str) -> int:
    liquidations = 0
    for name in scope_names(d.draft.accounts[account_id]):
        scope = _state(d, account_id, name)
        if not scope.keys:
            if scope.collateral < 0:
                _settle(d, account_id, scope)
        elif scope.liquidatable:
            _liquidate(d, account_id, scope)
            liquidations += 1
    _margin_calls(d, account_id)
    return liquidations


def _state(d: Decision, account_id: str, name: str) -> ScopeState:
    return scope_state(d.draft, d.draft.accounts[account_id], name)


def _ledger(account_id: str, scope: ScopeState) -> str:
    if scope.key is None:
        return wallet(account_id)
    return isolated(account_id, *scope.key)


# -- margin calls --------------------------------------------------------------------------------


def _margin_calls(d: Decision, account_id: str) -> None:
    account = d.draft.accounts[account_id]
    current = {}
    for name in scope_names(account):
        scope = scope_state(d.draft, account, name)
        if scope.keys:
            current[name] = scope.margin_ratio
    for name, ratio in sorted(current.items()):
        high = ratio is None or ratio >= MARGIN_CALL_THRESHOLD
        if high and name not in account.margin_calls:
            d.emit(
                {
                    "type": "MarginCallIssued",
                    "account": account_id,
                    "scope": name,
                    "margin_ratio": ratio,
                    "threshold": MARGIN_CALL_THRESHOLD,
                }
            )
    for name in sorted(account.margin_calls):
        ratio = current.get(name, ZERO)
        if name not in current or (ratio is not None and ratio < MARGIN_CALL_THRESHOLD):
            d.emit({"type": "MarginCallCleared", "account": account_id, "scope": name})


# -- liquidation ---------------------------------------------------------------------------------


def _liquidate(d: Decision, account_id: str, scope: ScopeState) -> None:
    d.emit(
        {
            "type": "LiquidationTriggered",
            "account": account_id,
            "scope": scope.name,
            "margin_balance": scope.margin_balance,
            "maintenance_margin": scope.risk.maintenance_margin,
        }
    )
    _cancel_orders(d, account_id, scope)
    for _ in range(MAX_PASSES):
        scope = _state(d, account_id, scope.name)
        if not scope.keys or not scope.liquidatable:
            break
        if scope.margin_balance < 0:
            _bankrupt(d, account_id, scope)
            return
        positions = d.draft.accounts[account_id].positions
        key = max(scope.keys, key=lambda k: (positions[k].quantity * _mark(d, positions[k]), k))
        _reduce(d, account_id, scope, key, positions[key])
    else:
        raise InvariantViolation(f"{account_id} {scope.name}: liquidation did not finish")
    scope = _state(d, account_id, scope.name)
    if not scope.keys and scope.collateral < 0:  # rounding dust of the closes
        _settle(d, account_id, scope)


def _mark(d: Decision, position: Position) -> Decimal:
    mark = d.draft.marks.get(position.symbol)
    return mark if mark is not None else position.entry_price


def _cancel_orders(d: Decision, account_id: str, scope: ScopeState) -> None:
    account = d.draft.accounts[account_id]
    for order in sorted(account.orders.values(), key=lambda o: o.order_id):
        if scope.key is None or (order.symbol, order.position_side) == scope.key:
            d.emit(
                {
                    "type": "OrderCancelled",
                    "account": account_id,
                    "order_id": order.order_id,
                    "reason": "liquidation",
                    "order_removed": order.order_id,
                }
            )


def _close(
    account_id: str,
    key: Key,
    position: Position,
    quantity: Decimal,
    price: Decimal,
    *,
    liquidity: str = "liquidation",
    event_type: str = "PositionLiquidated",
    keep_margin: bool = True,
    market_price: Decimal | None = None,
) -> Fill:
    """A fee-free fill closing ``quantity`` of ``position`` (liquidation, takeover or ADL)."""
    return Fill(
        account=account_id,
        symbol=position.symbol,
        side=position.side.opposite,
        slot=key[1],
        quantity=quantity,
        price=price,
        fee_rate=ZERO,
        liquidity=liquidity,
        event_type=event_type,
        keep_margin=keep_margin,
        market_price=market_price,
    )


def _clearance_fee(d: Decision, position: Position, closed: Decimal, balance: Decimal) -> Decimal:
    """Owed to the fund (rounded up) but capped at what the scope still has (rounded down)."""
    rate = d.draft.instruments[position.symbol].liquidation_fee_rate
    owed = round_requirement(closed * _mark(d, position) * rate)
    return min(owed, max(ZERO, round_balance_delta(balance)))


def _reduce(d: Decision, account_id: str, scope: ScopeState, key: Key, position: Position) -> None:
    mark = _mark(d, position)
    quantity = _partial_quantity(d, scope, position, mark)
    partial = quantity < position.quantity
    fee = _clearance_fee(d, position, quantity, scope.margin_balance)
    if fee > 0:
        d.emit(
            {
                "type": "LiquidationFeeCharged",
                "account": account_id,
                "scope": scope.name,
                "amount": fee,
                "postings": [[_ledger(account_id, scope), -fee], ["insurance_fund", fee]],
            }
        )
    # a partial cut keeps the isolated margin with the rest; a whole close releases what is left
    fill = _close(account_id, key, position, quantity, mark, keep_margin=partial)
    d.emit(book_fill(d.draft, fill, {"scope": scope.name, "partial": partial}))


def _partial_quantity(d: Decision, scope: ScopeState, position: Position, mark: Decimal) -> Decimal:
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
    position_mm = maintenance_margin(rules, instrument, position, mark)
    balance = scope.margin_balance
    for lower in range(index - 1, -1, -1):
        cap = instrument.brackets[lower].cap
        if cap is None:
            continue
        keep = (cap / mark).quantize(QUANTITY_QUANTUM, rounding=ROUND_FLOOR)
        if not 0 < keep < position.quantity:
            continue
        closed = position.quantity - keep
        fee = _clearance_fee(d, position, closed, balance)
        reduced = Position(
            symbol=position.symbol,
            side=position.side,
            quantity=keep,
            entry_notional=position.entry_notional * keep / position.quantity,
            leverage=position.leverage,
            margin_mode=position.margin_mode,
        )
        after_mm = (
            scope.risk.maintenance_margin
            - position_mm
            + maintenance_margin(rules, instrument, reduced, mark)
        )
        if balance - fee > after_mm:
            return closed
    return position.quantity


# -- bankruptcy ----------------------------------------------------------------------------------


def bankruptcy_plan(
    d: Decision, account_id: str, scope: ScopeState
) -> list[tuple[Key, Position, Decimal, Decimal]]:
    """(key, position, mark, bankruptcy price) for each position, in takeover order.

    The deficit is assigned to the losing positions, largest loss first (then larger notional,
    then key), each up to its own loss, so every price lies between the mark and the entry."""
    positions = d.draft.accounts[account_id].positions
    rows = []
    for key in scope.keys:
        position = positions[key]
        mark = _mark(d, position)
        rows.append((position.unrealized_pnl(mark), -position.notional(mark), key, position, mark))
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    left = -scope.margin_balance
    plan = []
    for pnl, _, key, position, mark in rows:
        share = min(left, max(ZERO, -pnl))
        left -= share
        price = mark + position.side.sign * share / position.quantity
        plan.append((key, position, mark, round_trigger_price(price, mark)))
    return plan


def _bankrupt(d: Decision, account_id: str, scope: ScopeState) -> None:
    plan = bankruptcy_plan(d, account_id, scope)
    d.emit(
        {
            "type": "ScopeBankrupt",
            "account": account_id,
            "scope": scope.name,
            "deficit": -scope.margin_balance,
            "prices": {f"{key[0]}:{key[1]}": price for key, _, _, price in plan},
        }
    )
    extra = {"scope": scope.name}
    for key, position, mark, price in plan:
        gap = position.side.sign * (price - mark)
        if gap == 0:
            fill = _close(account_id, key, position, position.quantity, mark)
            d.emit(book_fill(d.draft, fill, {**extra, "partial": False}))
            continue
        quantity = position.quantity
        taken = _fund_takes(d.draft.ledgers.insurance_fund, position, quantity, price, mark)
        if taken > 0:
            fill = _close(account_id, key, position, taken, price, market_price=mark)
            details = {"partial": taken < quantity, "taken_over_by": "insurance_fund"}
            d.emit(book_fill(d.draft, fill, {**extra, **details}))
        left = quantity - taken
        if left > 0:
            left = _auto_deleverage(d, account_id, scope, key, price, left)
        if left > 0:  # no counterparty left: the rest closes at the mark, its gap unpaid
            current = d.draft.accounts[account_id].positions[key]
            fill = _close(account_id, key, current, left, mark)
            d.emit(book_fill(d.draft, fill, {**extra, "partial": False}))
    _settle(d, account_id, _state(d, account_id, scope.name), collect=True)


def _fund_takes(
    fund: Decimal, position: Position, quantity: Decimal, price: Decimal, mark: Decimal
) -> Decimal:
    """The most of ``quantity`` (on the quantity quantum) the fund can take over at ``price``:
    its share, what a close at ``price`` realizes beyond a close at ``mark``, must not exceed
    ``fund``."""
    if _fund_share(position, quantity, price, mark) <= fund:
        return quantity
    gap = position.side.sign * (price - mark)
    taken = min(quantity, (fund / gap).quantize(QUANTITY_QUANTUM, rounding=ROUND_FLOOR))
    while taken > 0 and _fund_share(position, taken, price, mark) > fund:
        taken -= QUANTITY_QUANTUM  # the two realized amounts round separately: at most a step
    return taken


def _fund_share(position: Position, quantity: Decimal, price: Decimal, mark: Decimal) -> Decimal:
    closed_entry = position.entry_notional * quantity / position.quantity
    sign = position.side.sign
    at_price = round_balance_delta(sign * (quantity * price - closed_entry))
    at_mark = round_balance_delta(sign * (quantity * mark - closed_entry))
    return at_price - at_mark


def adl_ranking(d: Decision, symbol: str, side: Side, exclude: str) -> list[tuple[str, str]]:
    """Opposite positions on ``symbol`` ranked for auto-deleveraging, best candidate first:
    ``PnL% x effective leverage`` when in profit, ``PnL% / effective leverage`` otherwise, with
    ``effective leverage = notional / margin balance`` of the position's scope."""
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
            balance = _scope_balance(d, account, (symbol, slot), position, pnl)
            leverage = position.notional(mark) / balance if balance > 0 else None
            if leverage is None:
                score = pnl_pct * Decimal("1e9") if pnl_pct >= 0 else pnl_pct
            else:
                score = pnl_pct * leverage if pnl_pct >= 0 else pnl_pct / leverage
            ranked.append((score, account_id, slot))
    ranked.sort(key=lambda item: (-item[0], item[1], item[2]))
    return [(account_id, slot) for _, account_id, slot in ranked]


def _scope_balance(
    d: Decision, account: Account, key: Key, position: Position, pnl: Decimal
) -> Decimal:
    if position.is_isolated:
        return account.isolated.get(key, ZERO) + pnl
    book = book_for(d.draft, account)
    return account.wallet + total_risk(book, book.cross_positions()).unrealized_pnl


def _auto_deleverage(
    d: Decision, account_id: str, scope: ScopeState, key: Key, price: Decimal, left: Decimal
) -> Decimal:
    """Close up to ``left`` of the bankrupt position at ``price`` against ranked counterparties;
    returns what no counterparty could take."""
    position = d.draft.accounts[account_id].positions[key]
    for other_id, slot in adl_ranking(d, position.symbol, position.side.opposite, account_id):
        if left <= 0:
            break
        other = d.draft.accounts[other_id].positions[(position.symbol, slot)]
        take = min(left, other.quantity)
        counterparty = _close(
            other_id,
            (position.symbol, slot),
            other,
            take,
            price,
            liquidity="adl",
            event_type="PositionAutoDeleveraged",
            keep_margin=False,
        )
        d.emit(book_fill(d.draft, counterparty, {"against": account_id}))
        current = d.draft.accounts[account_id].positions[key]
        own = _close(account_id, key, current, take, price, liquidity="adl")
        extra = {"scope": scope.name, "partial": take < current.quantity, "against": other_id}
        d.emit(book_fill(d.draft, own, extra))
        left -= take
    return left


def _settle(d: Decision, account_id: str, scope: ScopeState, *, collect: bool = False) -> None:
    """Bring a scope without positions to exactly zero: a surplus (only after a bankruptcy,
    ``collect``) goes to the fund; a deficit is paid by the fund, then recorded as bad debt."""
    ledger = _ledger(account_id, scope)
    balance = scope.collateral
    if balance > 0 and collect:
        d.emit(_posting_event("InsuranceFundCollected", account_id, scope, balance, ledger))
        return
    if balance >= 0:
        return
    paid = min(-balance, d.draft.ledgers.insurance_fund)
    if paid > 0:
        event = _posting_event("InsuranceFundPaid", account_id, scope, paid, ledger)
        d.emit(event)
    unpaid = -balance - paid
    if unpaid > 0:
        event = _posting_event("BadDebtRecorded", account_id, scope, unpaid, ledger)
        d.emit(event)


def _posting_event(
    kind: str, account_id: str, scope: ScopeState, amount: Decimal, ledger: str
) -> Event:
    other = {
        "InsuranceFundCollected": "insurance_fund",
        "InsuranceFundPaid": "insurance_fund",
        "BadDebtRecorded": "bad_debt",
    }[kind]
    into_scope = amount if kind != "InsuranceFundCollected" else -amount
    return {
        "type": kind,
        "account": account_id,
        "scope": scope.name,
        "amount": amount,
        "postings": [[ledger, into_scope], [other, -into_scope]],
    }


__all__ = ["MARGIN_CALL_THRESHOLD", "adl_ranking", "bankruptcy_plan", "examine", "tick_candidates"]
