"""Read-side views of engine state through the exact core: books, risk, free margin.

The engine never re-implements a formula: it builds a core :class:`Book` for an account (isolated
margins attached to their positions, marks from state) and asks core.risk.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from crossmargin.app.events import StateLike
from crossmargin.app.model import Account
from crossmargin.core.numbers import ZERO
from crossmargin.core.position import Position
from crossmargin.core.risk import Book, Risk, is_liquidatable, margin_ratio, total_risk


def slot_key(position: Position, account: Account) -> tuple[str, str]:
    for key, held in account.positions.items():
        if held is position or (key[0] == position.symbol and held.side is position.side):
            return key
    raise KeyError(position.symbol)


def positions_with_margin(account: Account) -> tuple[Position, ...]:
    result = []
    for key, position in account.positions.items():
        if position.is_isolated:
            margin = account.isolated.get(key, ZERO)
            position = dataclasses.replace(position, isolated_margin=margin)
        result.append(position)
    return tuple(result)


def book_for(state: StateLike, account: Account) -> Book:
    marks = {}
    for position in account.positions.values():
        mark = state.marks.get(position.symbol)
        marks[position.symbol] = mark if mark is not None else position.entry_price
    return Book(
        rules=state.rules,
        instruments=state.instruments,
        marks=marks,
        positions=positions_with_margin(account),
        wallet_balance=account.wallet,
        position_mode=account.position_mode,
    )


def cross_risk(state: StateLike, account: Account) -> Risk:
    book = book_for(state, account)
    return total_risk(book, book.cross_positions())


def free_margin(state: StateLike, account: Account) -> Decimal:
    """What new orders and withdrawals may use: min(wallet, MB) - cross IM - open-order margin."""
    risk = cross_risk(state, account)
    balance = account.wallet + risk.unrealized_pnl
    return min(account.wallet, balance) - risk.initial_margin - account.reserved()


def scopes_at_risk(
    state: StateLike, account: Account
) -> list[tuple[str, Decimal, Risk, Decimal | None, bool]]:
    """Every scope of ``account``: (scope, collateral, risk, margin ratio, liquidatable).

    Scope names: ``cross`` or ``isolated:<symbol>:<slot>``.
    """
    book = book_for(state, account)
    result = []
    cross = total_risk(book, book.cross_positions())
    if cross.notional > 0:
        result.append(
            (
                "cross",
                account.wallet,
                cross,
                margin_ratio(account.wallet, cross),
                is_liquidatable(account.wallet, cross),
            )
        )
    for key, position in account.positions.items():
        if not position.is_isolated:
            continue
        collateral = account.isolated.get(key, ZERO)
        risk = total_risk(book, [dataclasses.replace(position, isolated_margin=collateral)])
        result.append(
            (
                f"isolated:{key[0]}:{key[1]}",
                collateral,
                risk,
                margin_ratio(collateral, risk),
                is_liquidatable(collateral, risk),
            )
        )
    return result
