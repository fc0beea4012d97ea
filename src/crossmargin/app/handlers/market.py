"""The market: mark prices (filling resting limits they reach) and funding settlement.

``update_mark`` moves one symbol; ``update_marks`` moves several at one instant and examines
once, after all of them (a hedged cross book is judged at the new prices of both legs, never
at one leg's new price beside the other's old one).

Ticks and funding hand the holders to the examination: on a tick the ones the float screen flags
(confirmed in Decimal), after funding every holder (every holder's balance moved).

Funding at a funding time: ``owed = side x quantity x mark x rate`` per position; ``owed > 0``
(longs when the rate is positive) is paid by the trader, rounded up; ``owed < 0`` is received,
rounded down; the venue keeps the dust in ``external:funding``. An isolated position pays and
receives through its isolated margin.
"""

from __future__ import annotations

from decimal import Decimal

from crossmargin.app.commands import SettleFunding, UpdateMark, UpdateMarks
from crossmargin.app.decision import Decision, reject, symbol_of
from crossmargin.app.events import FundingSettled, MarkPriceUpdated
from crossmargin.app.examination import tick_candidates
from crossmargin.app.handlers.orders import fill_order
from crossmargin.app.ledgers import FUNDING, Ledger, Posting
from crossmargin.app.model import Reason, resting_key
from crossmargin.app.records import Payment
from crossmargin.core.numbers import round_balance_delta, round_requirement


def update_mark(d: Decision, c: UpdateMark) -> None:
    _move_marks(d, [(symbol_of(d, c.symbol), c.price)])


def update_marks(d: Decision, c: UpdateMarks) -> None:
    _move_marks(d, [(symbol_of(d, symbol), price) for symbol, price in c.prices])


def _move_marks(d: Decision, marks: list[tuple[str, Decimal]]) -> None:
    """One instant's marks (one or several): all set, then resting limits fill (symbol by
    symbol), then the holders of every moved symbol are examined together, at the new prices
    only."""
    for symbol, price in marks:
        d.emit(MarkPriceUpdated(symbol=symbol, price=price))
    if d.matching == "simulated":
        for symbol, price in marks:
            _fill_resting(d, symbol, price)
    for symbol, _ in marks:
        d.examine_also |= tick_candidates(d, symbol)


def _fill_resting(d: Decision, symbol: str, mark: Decimal) -> None:
    """Resting limits the mark reached fill whole at their limit price, as makers, in
    (order id, account) order."""
    resting = sorted(
        (
            order
            for account_id in d.draft.holders.members(resting_key(symbol))
            for order in d.draft.accounts[account_id].orders.values()
            if order.symbol == symbol and order.price is not None
        ),
        key=lambda order: (order.order_id, order.account),
    )
    rate = d.draft.instruments[symbol].maker_fee_rate
    for order in resting:
        limit = order.price if order.price is not None else mark
        if order.side.sign * (limit - mark) >= 0:
            current = d.draft.accounts[order.account].orders.get(order.order_id)
            if current is not None:
                fill_order(d, current, current.quantity, limit, rate, "maker")


def settle_funding(d: Decision, c: SettleFunding) -> None:
    symbol = symbol_of(d, c.symbol)
    mark = d.draft.marks.get(symbol)
    if mark is None:
        raise reject(Reason.NO_MARK_PRICE, f"no mark price for {symbol} yet")
    moves: list[Posting] = []
    payments: list[Payment] = []
    for account_id in sorted(d.draft.holders.members(symbol)):
        account = d.draft.accounts[account_id]
        for key, position in sorted(account.positions.items()):
            if key[0] != symbol:
                continue
            owed = position.side.sign * position.quantity * mark * c.rate  # > 0: trader pays
            amount = round_requirement(owed) if owed > 0 else -round_balance_delta(-owed)
            if amount == 0:
                continue
            payer = (
                Ledger.isolated(account_id, symbol, key[1])
                if position.is_isolated
                else Ledger.wallet(account_id)
            )
            moves += [Posting(payer, -amount), Posting(FUNDING, amount)]
            payments.append(Payment(account=account_id, slot=key[1], paid=amount))
    d.emit(
        FundingSettled(
            symbol=symbol, rate=c.rate, mark=mark, payments=tuple(payments), postings=tuple(moves)
        )
    )
    d.examine_also |= tick_candidates(d, symbol, screened=False)
