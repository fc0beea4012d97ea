"""A bankrupt scope (``MB < 0``): takeover at the bankruptcy price, insurance fund, ADL, bad debt.

The deficit ``D = -MB`` is assigned to the scope's losing positions, largest loss first (then
larger notional, then key), each up to its own unrealized loss. A position's bankruptcy price is
its mark moved by its share per unit toward its entry (``mark + side x share / quantity``),
rounded toward the mark (``round_trigger_price``) so a counterparty is never closed beyond the
exact price; closing every position at its own price brings the scope to zero. For each
position, in that order:

* the insurance fund takes it over at that price as far as it can pay the gap to the mark (the
  trader realizes the bankruptcy price, the market pays a close at the mark, the fund the rest);
* the rest is auto-deleveraged at the same price against the opposite positions of other
  accounts on the same symbol, ranked best first by ``PnL% x effective leverage`` (profitable)
  or ``PnL% / effective leverage`` (losing), ``effective leverage = notional / margin balance``;
* what no counterparty can take closes at the mark (that part of the deficit stays unpaid).

Then the scope is settled to exactly zero: rounding dust left over goes to the fund, a deficit
is paid by the fund, then recorded as bad debt (``bad_debt`` ledger).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from crossmargin.app.decision import Decision
from crossmargin.app.events import (
    BadDebtRecorded,
    FillEvent,
    InsuranceFundCollected,
    InsuranceFundPaid,
    PositionAutoDeleveraged,
    PositionLiquidated,
    ScopeBankrupt,
    ScopeMoney,
)
from crossmargin.app.ledgers import BAD_DEBT, INSURANCE_FUND, Ledger, postings
from crossmargin.app.model import Account
from crossmargin.app.trading import Fill, book_fill
from crossmargin.app.views import book_for, scope_state
from crossmargin.core.numbers import ZERO, round_balance_delta, round_trigger_price
from crossmargin.core.position import Position, Side
from crossmargin.core.risk import Scope, total_risk
from crossmargin.core.scope import ScopeId

QUANTITY_QUANTUM = Decimal("1e-8")
Key = tuple[str, str]


def close_fill(
    account_id: str,
    key: Key,
    position: Position,
    quantity: Decimal,
    price: Decimal,
    *,
    keep_margin: bool = True,
    scope: ScopeId | None = None,
    liquidity: str = "liquidation",
    event_type: type[FillEvent] = PositionLiquidated,
    market_price: Decimal | None = None,
    against: str | None = None,
    taken_over_by: str | None = None,
) -> Fill:
    """A fee-free fill closing ``quantity`` of ``position`` (liquidation, takeover or ADL).
    The liquidated side names its ``scope`` (and whether the close is ``partial``); an ADL
    counterparty names the account it was deleveraged ``against``."""
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
        scope=scope,
        partial=None if scope is None else quantity < position.quantity,
        against=against,
        taken_over_by=taken_over_by,
    )


def _mark(d: Decision, position: Position) -> Decimal:
    mark = d.draft.marks.get(position.symbol)
    return mark if mark is not None else position.entry_price


def bankruptcy_plan(
    d: Decision, account_id: str, scope: Scope
) -> list[tuple[Key, Position, Decimal, Decimal]]:
    """(key, position, mark, bankruptcy price) for each position, in takeover order."""
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


def bankrupt(d: Decision, account_id: str, scope: Scope) -> None:
    plan = bankruptcy_plan(d, account_id, scope)
    d.emit(
        ScopeBankrupt(
            account=account_id,
            scope=scope.id,
            deficit=-scope.margin_balance,
            prices={f"{key[0]}:{key[1]}": price for key, _, _, price in plan},
        )
    )
    for key, position, mark, price in plan:
        if price == mark:
            fill = close_fill(account_id, key, position, position.quantity, mark, scope=scope.id)
            d.emit(book_fill(d.draft, fill))
            continue
        quantity = position.quantity
        taken = _fund_takes(d.draft.ledgers.insurance_fund, position, quantity, price, mark)
        if taken > 0:
            fill = close_fill(
                account_id,
                key,
                position,
                taken,
                price,
                scope=scope.id,
                market_price=mark,
                taken_over_by="insurance_fund",
            )
            d.emit(book_fill(d.draft, fill))
        left = quantity - taken
        if left > 0:
            left = _auto_deleverage(d, account_id, scope.id, key, price, left)
        if left > 0:  # no counterparty left: the rest closes at the mark, its gap unpaid
            current = d.draft.accounts[account_id].positions[key]
            fill = close_fill(account_id, key, current, left, mark, scope=scope.id)
            d.emit(book_fill(d.draft, fill))
    after = scope_state(d.draft, d.draft.accounts[account_id], scope.id)
    settle(d, account_id, after, collect=True)


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
    d: Decision, account_id: str, scope: ScopeId, key: Key, price: Decimal, left: Decimal
) -> Decimal:
    """Close up to ``left`` of the bankrupt position at ``price`` against ranked counterparties;
    returns what no counterparty could take."""
    position = d.draft.accounts[account_id].positions[key]
    for other_id, slot in adl_ranking(d, position.symbol, position.side.opposite, account_id):
        if left <= 0:
            break
        other = d.draft.accounts[other_id].positions[(position.symbol, slot)]
        take = min(left, other.quantity)
        counterparty = close_fill(
            other_id,
            (position.symbol, slot),
            other,
            take,
            price,
            keep_margin=False,
            liquidity="adl",
            event_type=PositionAutoDeleveraged,
            against=account_id,
        )
        d.emit(book_fill(d.draft, counterparty))
        current = d.draft.accounts[account_id].positions[key]
        own = close_fill(
            account_id, key, current, take, price, scope=scope, liquidity="adl", against=other_id
        )
        d.emit(book_fill(d.draft, own))
        left -= take
    return left


def settle(d: Decision, account_id: str, scope: Scope, *, collect: bool = False) -> None:
    """Bring a scope without positions to exactly zero: a surplus (only after a bankruptcy,
    ``collect``) goes to the fund; a deficit is paid by the fund, then recorded as bad debt."""
    ledger = Ledger.collateral(account_id, scope.id)
    balance = scope.collateral
    if balance > 0 and collect:
        d.emit(_money(InsuranceFundCollected, account_id, scope.id, balance, ledger))
        return
    if balance >= 0:
        return
    paid = min(-balance, d.draft.ledgers.insurance_fund)
    if paid > 0:
        d.emit(_money(InsuranceFundPaid, account_id, scope.id, paid, ledger))
    unpaid = -balance - paid
    if unpaid > 0:
        d.emit(_money(BadDebtRecorded, account_id, scope.id, unpaid, ledger))


def _money(
    kind: type[ScopeMoney], account_id: str, scope: ScopeId, amount: Decimal, ledger: Ledger
) -> ScopeMoney:
    source = BAD_DEBT if kind is BadDebtRecorded else INSURANCE_FUND
    into_scope = -amount if kind is InsuranceFundCollected else amount
    return kind(
        account=account_id,
        scope=scope,
        amount=amount,
        postings=postings((ledger, into_scope), (source, -into_scope)),
    )
