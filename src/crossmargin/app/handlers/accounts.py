"""Money in and out of an account: open, deposit, withdraw, isolated margin moves, fund seeding.

Withdrawals and isolated-margin adds draw on the free margin
(``min(wallet, wallet + cross UPNL) - cross IM - open orders' reservations``); a withdrawal that
would leave the cross scope at or below maintenance is refused too. Removing isolated margin
keeps at least the position's initial margin (counting an unrealized loss).
"""

from __future__ import annotations

import dataclasses

from crossmargin.app.commands import (
    AddIsolatedMargin,
    Deposit,
    IsolatedMarginMove,
    OpenAccount,
    RemoveIsolatedMargin,
    SeedInsuranceFund,
    Withdraw,
)
from crossmargin.app.decision import Decision, account_of, reject, symbol_of
from crossmargin.app.events import (
    AccountOpened,
    FundsDeposited,
    FundsWithdrawn,
    InsuranceFundSeeded,
    IsolatedMarginAdded,
    IsolatedMarginMoved,
    IsolatedMarginRemoved,
)
from crossmargin.app.ledgers import DEPOSITS, INSURANCE_FUND, INSURANCE_SEEDING, Ledger, postings
from crossmargin.app.model import BOTH, Account, Reason
from crossmargin.app.views import book_for, cross_risk, free_margin, isolated_shortfall
from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import ZERO
from crossmargin.core.position import PositionMode
from crossmargin.core.risk import is_liquidatable


def open_account(d: Decision, c: OpenAccount) -> None:
    if c.account in d.draft.accounts:
        raise reject(Reason.ACCOUNT_EXISTS, f"account {c.account!r} already exists")
    d.emit(AccountOpened(account=c.account))


def deposit(d: Decision, c: Deposit) -> None:
    account = account_of(d, c.account)
    d.emit(
        FundsDeposited(
            account=account.account_id,
            amount=c.amount,
            postings=postings((Ledger.wallet(c.account), c.amount), (DEPOSITS, -c.amount)),
        )
    )


def withdraw(d: Decision, c: Withdraw) -> None:
    account = account_of(d, c.account)
    free = free_margin(d.draft, account)
    if c.amount > free:
        raise reject(
            Reason.INSUFFICIENT_BALANCE,
            f"withdrawable {max(ZERO, free)} is below the requested {c.amount}",
        )
    after = dataclasses.replace(account, wallet=account.wallet - c.amount)
    if is_liquidatable(after.wallet, cross_risk(d.draft, after)):
        raise reject(Reason.WITHDRAWAL_WOULD_LIQUIDATE, "the account would fall to maintenance")
    d.emit(
        FundsWithdrawn(
            account=account.account_id,
            amount=c.amount,
            postings=postings((Ledger.wallet(c.account), -c.amount), (DEPOSITS, c.amount)),
        )
    )


def _isolated_slot(
    d: Decision, c: AddIsolatedMargin | RemoveIsolatedMargin, account: Account
) -> tuple[str, str]:
    symbol = symbol_of(d, c.symbol)
    if account.position_mode is PositionMode.HEDGE and c.position_side is None:
        raise InvalidInput("position_side", "is required in hedge mode")
    slot = BOTH if account.position_mode is PositionMode.ONE_WAY else str(c.position_side)
    position = account.positions.get((symbol, slot))
    if position is None:
        raise reject(Reason.NO_POSITION, f"no {symbol} position to move margin into or out of")
    if not position.is_isolated:
        raise reject(Reason.NOT_ISOLATED, f"the {symbol} position is cross margined")
    return symbol, slot


def add_isolated_margin(d: Decision, c: AddIsolatedMargin) -> None:
    account = account_of(d, c.account)
    symbol, slot = _isolated_slot(d, c, account)
    if c.amount > free_margin(d.draft, account):
        raise reject(Reason.INSUFFICIENT_BALANCE, "the cross wallet cannot spare that much")
    _move(d, IsolatedMarginAdded, c, symbol, slot, into_slot=True)


def remove_isolated_margin(d: Decision, c: RemoveIsolatedMargin) -> None:
    account = account_of(d, c.account)
    symbol, slot = _isolated_slot(d, c, account)
    position = account.positions[(symbol, slot)]
    left = account.isolated.get((symbol, slot), ZERO) - c.amount
    short = isolated_shortfall(book_for(d.draft, account), position, left)
    if short is not None:
        mark = d.draft.marks.get(symbol, position.entry_price)
        raise reject(
            Reason.ISOLATED_BELOW_INITIAL_MARGIN,
            f"the {symbol} position would hold less than its initial margin "
            f"{short.initial_margin} at mark {mark}",
        )
    _move(d, IsolatedMarginRemoved, c, symbol, slot, into_slot=False)


def _move(
    d: Decision,
    kind: type[IsolatedMarginMoved],
    c: IsolatedMarginMove,
    symbol: str,
    slot: str,
    *,
    into_slot: bool,
) -> None:
    wallet, slot_ledger = Ledger.wallet(c.account), Ledger.isolated(c.account, symbol, slot)
    source, target = (wallet, slot_ledger) if into_slot else (slot_ledger, wallet)
    moves = postings((source, -c.amount), (target, c.amount))
    d.emit(kind(account=c.account, symbol=symbol, slot=slot, amount=c.amount, postings=moves))


def seed_insurance_fund(d: Decision, c: SeedInsuranceFund) -> None:
    d.emit(
        InsuranceFundSeeded(
            amount=c.amount,
            postings=postings((INSURANCE_FUND, c.amount), (INSURANCE_SEEDING, -c.amount)),
        )
    )
