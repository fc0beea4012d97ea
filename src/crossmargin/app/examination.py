"""The examination: after every accepted command, no account is left past maintenance.

What it owns: which accounts a command examines, liquidation of a scope (Binance's published
procedure: cancel orders, "smart" partial liquidation with a clearance fee), the hand-over of a
bankrupt scope to :mod:`crossmargin.app.bankruptcy`, the settlement of scopes left negative, and
margin calls. docs/engine.md states the procedure and its invariants; the reference model in
tests/model checks them after every step.

The set examined after a command: every account its events name (own fills, ADL counterparties,
funding payers...), plus the holders of a ticked symbol (pre-screened by floats, confirmed in
Decimal) and every account with an open margin call. The smallest account id is examined first;
a liquidation that touches other accounts (ADL counterparties) adds them back to the set.

Examining an account, scope by scope (cross, then isolated slots by (symbol, slot)):
* a scope without positions whose collateral is negative is settled (fund, then bad debt);
* a liquidatable scope (``MB <= MM``) is liquidated:
  1. ``LiquidationTriggered``; open orders are cancelled (all of the account's for the cross
     scope, as Binance does; the slot's for an isolated scope).
  2. While liquidatable and ``MB >= 0``: the largest position is cut, at the mark, to the cap of
     the first lower bracket after which ``MB - clearance fee > MM``, else closed whole. The
     clearance fee (closed notional x liquidation fee rate, rounded up, capped at MB rounded
     down) goes to the insurance fund. What is left after a full close stays with the trader.
  3. ``MB < 0``: bankrupt (app.bankruptcy).
then margin calls: ``MarginCallIssued`` once a scope's ratio ``MM / MB`` (rounded up) reaches 0.8
or its MB is not positive, ``MarginCallCleared`` when it falls back or the scope is gone.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_FLOOR, Decimal

from crossmargin.app import screening
from crossmargin.app.bankruptcy import bankrupt, close_fill, settle
from crossmargin.app.decision import Decision
from crossmargin.app.events import (
    LiquidationFeeCharged,
    LiquidationTriggered,
    MarginCallCleared,
    MarginCallIssued,
    OrderCancelled,
)
from crossmargin.app.ledgers import INSURANCE_FUND, Ledger, postings
from crossmargin.app.model import CALLED
from crossmargin.app.trading import book_fill
from crossmargin.app.views import scope_ids, scope_state
from crossmargin.core.errors import InvariantViolation
from crossmargin.core.margin import maintenance_margin, maintenance_terms
from crossmargin.core.numbers import ZERO, round_balance_delta, round_requirement
from crossmargin.core.position import Position
from crossmargin.core.risk import Scope
from crossmargin.core.scope import ScopeId

MARGIN_CALL_THRESHOLD = Decimal("0.8")
QUANTITY_QUANTUM = Decimal("1e-8")
MAX_PASSES = 200  # each pass of a liquidation removes a bracket or a position
Key = tuple[str, str]


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
            other = event.account_named
            if other is not None and other != account_id:
                pending.add(other)
    return liquidations


def _examine_account(d: Decision, account_id: str) -> int:
    liquidations = 0
    for scope_id in scope_ids(d.draft.accounts[account_id]):
        scope = _state(d, account_id, scope_id)
        if not scope.keys:
            if scope.collateral < 0:
                settle(d, account_id, scope)
        elif scope.liquidatable:
            _liquidate(d, account_id, scope)
            liquidations += 1
    _margin_calls(d, account_id)
    return liquidations


def settle_slot(d: Decision, account_id: str, key: Key) -> None:
    """Settle an isolated slot left without its position and below zero (a flip's close)."""
    scope = _state(d, account_id, ScopeId.isolated(*key))
    if not scope.keys and scope.collateral < 0:
        settle(d, account_id, scope)


def _state(d: Decision, account_id: str, scope: ScopeId) -> Scope:
    return scope_state(d.draft, d.draft.accounts[account_id], scope)


def _margin_calls(d: Decision, account_id: str) -> None:
    account = d.draft.accounts[account_id]
    current: dict[str, Decimal | None] = {}
    for scope_id in scope_ids(account):
        scope = scope_state(d.draft, account, scope_id)
        if scope.keys:
            current[str(scope_id)] = scope.margin_ratio
    for name, ratio in sorted(current.items()):
        high = ratio is None or ratio >= MARGIN_CALL_THRESHOLD
        if high and name not in account.margin_calls:
            d.emit(
                MarginCallIssued(
                    account=account_id,
                    scope=ScopeId.parse(name),
                    margin_ratio=ratio,
                    threshold=MARGIN_CALL_THRESHOLD,
                )
            )
    for name in sorted(account.margin_calls):
        ratio = current.get(name, ZERO)
        if name not in current or (ratio is not None and ratio < MARGIN_CALL_THRESHOLD):
            d.emit(MarginCallCleared(account=account_id, scope=ScopeId.parse(name)))


def _liquidate(d: Decision, account_id: str, scope: Scope) -> None:
    d.emit(
        LiquidationTriggered(
            account=account_id,
            scope=scope.id,
            margin_balance=scope.margin_balance,
            maintenance_margin=scope.risk.maintenance_margin,
        )
    )
    _cancel_orders(d, account_id, scope.id)
    for _ in range(MAX_PASSES):
        scope = _state(d, account_id, scope.id)
        if not scope.keys or not scope.liquidatable:
            break
        if scope.margin_balance < 0:
            bankrupt(d, account_id, scope)
            return
        positions = d.draft.accounts[account_id].positions
        key = max(scope.keys, key=lambda k: (positions[k].quantity * _mark(d, positions[k]), k))
        _reduce(d, account_id, scope, key, positions[key])
    else:
        raise InvariantViolation(f"{account_id} {scope.id}: liquidation did not finish")
    scope = _state(d, account_id, scope.id)
    if not scope.keys and scope.collateral < 0:  # rounding dust of the closes
        settle(d, account_id, scope)


def _mark(d: Decision, position: Position) -> Decimal:
    mark = d.draft.marks.get(position.symbol)
    return mark if mark is not None else position.entry_price


def _cancel_orders(d: Decision, account_id: str, scope: ScopeId) -> None:
    account = d.draft.accounts[account_id]
    for order in sorted(account.orders.values(), key=lambda o: o.order_id):
        if scope.is_cross or (order.symbol, order.position_side) == scope.key:
            d.emit(OrderCancelled.of(order, "liquidation"))


def _clearance_fee(d: Decision, position: Position, closed: Decimal, balance: Decimal) -> Decimal:
    """Owed to the fund (rounded up) but capped at what the scope still has (rounded down)."""
    rate = d.draft.instruments[position.symbol].liquidation_fee_rate
    owed = round_requirement(closed * _mark(d, position) * rate)
    return min(owed, max(ZERO, round_balance_delta(balance)))


def _reduce(d: Decision, account_id: str, scope: Scope, key: Key, position: Position) -> None:
    mark = _mark(d, position)
    quantity = _partial_quantity(d, scope, position, mark)
    partial = quantity < position.quantity
    fee = _clearance_fee(d, position, quantity, scope.margin_balance)
    if fee > 0:
        collateral = Ledger.collateral(account_id, scope.id)
        d.emit(
            LiquidationFeeCharged(
                account=account_id,
                scope=scope.id,
                amount=fee,
                postings=postings((collateral, -fee), (INSURANCE_FUND, fee)),
            )
        )
    # a partial cut keeps the isolated margin with the rest; a whole close releases what is left
    fill = close_fill(
        account_id, key, position, quantity, mark, keep_margin=partial, scope=scope.id
    )
    d.emit(book_fill(d.draft, fill))


def _partial_quantity(d: Decision, scope: Scope, position: Position, mark: Decimal) -> Decimal:
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
