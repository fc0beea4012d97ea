"""Reference model, part 3: the examination after every accepted command, and liquidation.

Examination: accounts in ascending id order (ADL counterparties join the queue, again if already
examined); per account, each scope in order (cross, then isolated slots by (symbol, slot)): a
scope without a position and with negative collateral is settled, a liquidatable one (MB <= MMs)
is liquidated; then the account's margin calls.

Liquidation (Binance): cancel orders; while liquidatable and MB >= 0, cut the largest position to
the first lower bracket cap that restores the margin after the 1.25% clearance fee, else close
it whole, at the mark; MB < 0 is a bankruptcy: each position gets a bankruptcy price between its
mark and its entry (closing everything there brings the scope to zero), the insurance fund takes
over what its balance covers, the rest is auto-deleveraged against the best-ranked opposite
positions of other accounts at that price, and what nobody takes closes at the mark. The scope
then settles to exactly zero: dust to the fund, a deficit from the fund, the rest bad debt.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Any

from tests.model.ref_booking import book_fill, cover_deficit
from tests.model.ref_figures import (
    CROSS,
    LIQUIDATION_FEE,
    MARGIN_CALL,
    QUANTUM,
    ZERO,
    Acct,
    Pos,
    State,
    bracket_index,
    collateral,
    down,
    figures,
    maintenance,
    move_collateral,
    scope_key,
    scope_name,
    scope_positions,
    scopes,
    up,
    upnl,
)

Event = dict[str, Any]
MAX_PASSES = 200
ADL_UNLEVERED = Decimal("1e9")


def examine(state: State, events: list[Event], accounts: set[str]) -> None:
    queue = set(accounts) | {a for a, acct in state.accounts.items() if acct.calls}
    queue &= set(state.accounts)
    while queue:
        account_id = min(queue)
        queue.discard(account_id)
        queue |= examine_account(state, events, account_id)


def examine_account(state: State, events: list[Event], account_id: str) -> set[str]:
    account = state.accounts[account_id]
    touched: set[str] = set()
    for scope in scopes(account):
        current = figures(state, account, scope)
        if not current.has_position and collateral(account, scope) < 0:
            settle(state, events, account, scope)
        elif current.liquidatable:
            touched |= liquidate(state, events, account, scope)
    margin_calls(state, events, account)
    return touched


def margin_calls(state: State, events: list[Event], account: Acct) -> None:
    current: dict[str, Decimal | None] = {}
    for scope in scopes(account):
        scope_figures = figures(state, account, scope)
        if scope_figures.has_position:
            current[scope] = scope_figures.ratio
    for scope, ratio in sorted(current.items()):
        if (ratio is None or ratio >= MARGIN_CALL) and scope not in account.calls:
            account.calls.add(scope)
            events.append(
                {"type": "MarginCallIssued", "account": account.account_id, "scope": scope}
            )
    for scope in sorted(account.calls):
        ratio = current.get(scope, ZERO)
        if scope not in current or (ratio is not None and ratio < MARGIN_CALL):
            account.calls.discard(scope)
            events.append(
                {"type": "MarginCallCleared", "account": account.account_id, "scope": scope}
            )


def liquidate(state: State, events: list[Event], account: Acct, scope: str) -> set[str]:
    start = figures(state, account, scope)
    events.append(
        {
            "type": "LiquidationTriggered",
            "account": account.account_id,
            "scope": scope,
            "margin_balance": start.balance,
            "maintenance_margin": start.maintenance,
        }
    )
    _cancel_orders(events, account, scope)
    touched: set[str] = set()
    for _ in range(MAX_PASSES):
        now = figures(state, account, scope)
        positions = scope_positions(account, scope)
        if not now.liquidatable or not positions:
            break
        if now.balance < 0:
            touched |= _bankrupt(state, events, account, scope, -now.balance)
            break
        key, position = max(
            positions, key=lambda item: (item[1].qty * state.marks[item[0][0]], item[0])
        )
        _cut(state, events, account, scope, key, position, now.balance, now.maintenance)
    if not scope_positions(account, scope) and collateral(account, scope) < 0:
        settle(state, events, account, scope)
    return touched


def _cancel_orders(events: list[Event], account: Acct, scope: str) -> None:
    key = scope_key(scope)
    for order_id in sorted(account.orders):
        order = account.orders[order_id]
        if key is None or (order.symbol, order.slot) == key:
            del account.orders[order_id]
            events.append(
                {
                    "type": "OrderCancelled",
                    "account": account.account_id,
                    "order_id": order_id,
                    "reason": "liquidation",
                }
            )


def _cut(
    state: State,
    events: list[Event],
    account: Acct,
    scope: str,
    key: tuple[str, str],
    position: Pos,
    balance: Decimal,
    scope_mm: Decimal,
) -> None:
    symbol = key[0]
    mark = state.marks[symbol]
    closed = partial_cut(state, symbol, position, mark, balance, scope_mm)
    partial = closed < position.qty
    fee = min(up(closed * mark * LIQUIDATION_FEE), max(ZERO, down(balance)))
    if fee > 0:
        move_collateral(account, scope, -fee)
        state.fund += fee
        events.append(
            {
                "type": "LiquidationFeeCharged",
                "account": account.account_id,
                "scope": scope,
                "amount": fee,
            }
        )
    book_fill(
        state, account, symbol, key[1], -position.side, closed, mark, ZERO, release=not partial
    )
    events.append(_liquidated(account, scope, key, closed, mark, "liquidation", partial=partial))


def partial_cut(
    state: State, symbol: str, position: Pos, mark: Decimal, balance: Decimal, scope_mm: Decimal
) -> Decimal:
    """The quantity to close: the first cut to a lower bracket's cap that restores the margin."""
    brackets = state.brackets[symbol]
    position_mm = maintenance(state, symbol, position.qty, mark)
    for lower in range(bracket_index(brackets, position.qty * mark) - 1, -1, -1):
        keep = (brackets[lower].cap / mark).quantize(QUANTUM, rounding=ROUND_FLOOR)
        if not 0 < keep < position.qty:
            continue
        closed = position.qty - keep
        fee = min(up(closed * mark * LIQUIDATION_FEE), max(ZERO, down(balance)))
        reduced_mm = maintenance(state, symbol, keep, mark)
        if balance - fee > scope_mm - position_mm + reduced_mm:
            return closed
    return position.qty


def _liquidated(
    account: Acct,
    scope: str,
    key: tuple[str, str],
    qty: Decimal,
    price: Decimal,
    liquidity: str,
    **extra: Any,
) -> Event:
    return {
        "type": "PositionLiquidated",
        "account": account.account_id,
        "scope": scope,
        "symbol": key[0],
        "slot": key[1],
        "quantity": qty,
        "price": price,
        "liquidity": liquidity,
        **extra,
    }


def bankruptcy_prices(
    state: State, account: Acct, scope: str, deficit: Decimal
) -> list[tuple[tuple[str, str], Pos, Decimal]]:
    """The scope's positions in takeover order, each with its bankruptcy price."""
    rows = []
    for key, position in scope_positions(account, scope):
        mark = state.marks[key[0]]
        rows.append((upnl(position, mark), -position.qty * mark, key, position))
    rows.sort(key=lambda row: (row[0], row[1], row[2]))
    left = deficit
    result = []
    for pnl, _, key, position in rows:
        share = min(left, max(ZERO, -pnl))
        left -= share
        mark = state.marks[key[0]]
        exact = mark + position.side * share / position.qty
        price = down(exact) if position.side > 0 else up(exact)  # toward the mark
        result.append((key, position, price))
    return result


def _bankrupt(
    state: State, events: list[Event], account: Acct, scope: str, deficit: Decimal
) -> set[str]:
    plan = bankruptcy_prices(state, account, scope, deficit)
    events.append(
        {
            "type": "ScopeBankrupt",
            "account": account.account_id,
            "scope": scope,
            "deficit": deficit,
            "prices": {f"{key[0]}:{key[1]}": price for key, _, price in plan},
        }
    )
    touched: set[str] = set()
    for key, position, price in plan:
        touched |= _close_bankrupt(state, events, account, scope, key, position, price)
    settle(state, events, account, scope)
    assert collateral(account, scope) == 0 and not scope_positions(account, scope)
    return touched


def _close_bankrupt(
    state: State,
    events: list[Event],
    account: Acct,
    scope: str,
    key: tuple[str, str],
    position: Pos,
    price: Decimal,
) -> set[str]:
    symbol, slot = key
    mark = state.marks[symbol]
    gap = position.side * (price - mark)
    if gap == 0:
        book_fill(
            state, account, symbol, slot, -position.side, position.qty, mark, ZERO, release=False
        )
        events.append(_liquidated(account, scope, key, position.qty, mark, "liquidation"))
        return set()
    # The fund takes the whole position when it can pay its share of it (the share is the
    # difference of two rounded-down realized amounts); else the most, on the quantity quantum,
    # whose share it can pay: floor(F / g), stepped down while the rounded share still exceeds F.
    if _fund_share(position, position.qty, price, mark) <= state.fund:
        taken = position.qty
    else:
        taken = min(position.qty, (state.fund / gap).quantize(QUANTUM, rounding=ROUND_FLOOR))
        while taken > 0 and _fund_share(position, taken, price, mark) > state.fund:
            taken -= QUANTUM
    if taken > 0:
        _fund_takeover(state, events, account, scope, key, position, taken, price)
    rest = position.qty - taken
    touched: set[str] = set()
    if rest > 0:
        for other_id, other_slot in adl_ranking(state, account.account_id, symbol, position.side):
            if rest <= 0:
                break
            other = state.accounts[other_id]
            counter = other.positions[(symbol, other_slot)]
            size = min(rest, counter.qty)
            fill = book_fill(state, other, symbol, other_slot, position.side, size, price, ZERO)
            events.append(
                {
                    "type": "PositionAutoDeleveraged",
                    "account": other_id,
                    "symbol": symbol,
                    "slot": other_slot,
                    "quantity": size,
                    "price": price,
                    "realized_pnl": fill.realized,
                    "against": account.account_id,
                }
            )
            book_fill(
                state, account, symbol, slot, -position.side, size, price, ZERO, release=False
            )
            events.append(
                _liquidated(
                    account,
                    scope,
                    key,
                    size,
                    price,
                    "adl",
                    against=other_id,
                    mark=mark,
                    entry=position.entry / position.qty,
                    bankrupt_side=position.side,
                )
            )
            touched.add(other_id)
            rest -= size
    if rest > 0:
        book_fill(state, account, symbol, slot, -position.side, rest, mark, ZERO, release=False)
        events.append(_liquidated(account, scope, key, rest, mark, "liquidation"))
    return touched


def _fund_share(position: Pos, taken: Decimal, price: Decimal, mark: Decimal) -> Decimal:
    """What the fund pays to take ``taken`` over at ``price``: the realized PnL at that price
    less the realized PnL of a close at the mark, each rounded down."""
    taken_entry = position.entry * taken / position.qty
    at_price = down(position.side * (taken * price - taken_entry))
    at_mark = down(position.side * (taken * mark - taken_entry))
    return at_price - at_mark


def _fund_takeover(
    state: State,
    events: list[Event],
    account: Acct,
    scope: str,
    key: tuple[str, str],
    position: Pos,
    taken: Decimal,
    price: Decimal,
) -> None:
    mark = state.marks[key[0]]
    taken_entry = position.entry * taken / position.qty
    at_price = down(position.side * (taken * price - taken_entry))
    at_mark = down(position.side * (taken * mark - taken_entry))
    move_collateral(account, scope, at_price)
    state.flow("trading", -at_mark)
    state.fund -= at_price - at_mark
    if taken == position.qty:
        account.positions.pop(key)
    else:
        account.positions[key] = Pos(
            side=position.side,
            qty=position.qty - taken,
            entry=position.entry - taken_entry,
            leverage=position.leverage,
            isolated=position.isolated,
        )
    events.append(
        _liquidated(
            account,
            scope,
            key,
            taken,
            price,
            "liquidation",
            taken_over_by="insurance_fund",
            fund_paid=at_price - at_mark,
        )
    )


def adl_ranking(state: State, bankrupt: str, symbol: str, side: int) -> list[tuple[str, str]]:
    """Opposite positions of other accounts on ``symbol``, best ADL candidate first."""
    ranked = []
    for account_id in sorted(state.accounts):
        if account_id == bankrupt:
            continue
        account = state.accounts[account_id]
        for (held, slot), position in sorted(account.positions.items()):
            if held != symbol or position.side != -side:
                continue
            mark = state.marks[symbol]
            pnl = upnl(position, mark)
            pnl_pct = pnl / position.entry
            if position.isolated:
                balance = account.margin((symbol, slot)) + pnl
            else:
                balance = account.wallet + sum(
                    (upnl(p, state.marks[k[0]]) for k, p in scope_positions(account, CROSS)), ZERO
                )
            leverage = position.qty * mark / balance if balance > 0 else None
            if leverage is None:
                score = pnl_pct * ADL_UNLEVERED if pnl_pct >= 0 else pnl_pct
            else:
                score = pnl_pct * leverage if pnl_pct >= 0 else pnl_pct / leverage
            ranked.append((-score, account_id, slot))
    ranked.sort()
    return [(account_id, slot) for _, account_id, slot in ranked]


def settle(state: State, events: list[Event], account: Acct, scope: str) -> None:
    """A scope without positions goes to exactly zero: dust to the fund, a deficit from it."""
    balance = collateral(account, scope)
    base = {"account": account.account_id, "scope": scope}
    if balance > 0:
        move_collateral(account, scope, -balance)
        state.fund += balance
        events.append({"type": "InsuranceFundCollected", **base, "amount": balance})
    elif balance < 0:
        paid, unpaid = cover_deficit(state, -balance)
        move_collateral(account, scope, -balance)
        if paid > 0:
            events.append({"type": "InsuranceFundPaid", **base, "amount": paid})
        if unpaid > 0:
            events.append({"type": "BadDebtRecorded", **base, "amount": unpaid})


__all__ = ["examine", "scope_name"]
