"""Read-side views of engine state through the exact core: books, risk, free margin.

The engine never re-implements a formula: it builds a core :class:`Book` for an account (isolated
margins attached to their positions, marks from state) and asks core.risk.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from crossmargin.app.evolve import StateLike
from crossmargin.app.model import Account
from crossmargin.core.numbers import ZERO
from crossmargin.core.position import Position
from crossmargin.core.risk import Book, Risk, Scope, scopes, total_risk
from crossmargin.core.scope import CROSS, ScopeId

Key = tuple[str, str]  # (symbol, slot)


def scope_ids(account: Account) -> list[ScopeId]:
    """The account's scopes in examination order: cross, then isolated slots by (symbol, slot);
    a slot or wallet without positions is listed while it holds negative collateral."""
    ids = []
    if account.wallet < 0 or any(not p.is_isolated for p in account.positions.values()):
        ids.append(CROSS)
    slots = {k for k, p in account.positions.items() if p.is_isolated} | {
        k for k, margin in account.isolated.items() if margin != 0
    }
    ids += [ScopeId.isolated(*key) for key in sorted(slots)]
    return ids


def account_scopes(state: StateLike, account: Account) -> list[Scope]:
    """Every scope of ``account`` (core.risk.scopes of its book, plus a wallet or slot left
    without positions and below zero), in examination order."""
    found = {scope.id: scope for scope in scopes(book_for(state, account))}
    return [found.get(scope_id) or _emptied(account, scope_id) for scope_id in scope_ids(account)]


def scope_state(state: StateLike, account: Account, scope_id: ScopeId) -> Scope:
    """One scope of ``account`` now (empty of positions when only its collateral is left)."""
    for scope in scopes(book_for(state, account)):
        if scope.id == scope_id:
            return scope
    return _emptied(account, scope_id)


def _emptied(account: Account, scope_id: ScopeId) -> Scope:
    collateral = account.wallet if scope_id.is_cross else account.isolated.get(scope_id.key, ZERO)
    return Scope(id=scope_id, collateral=collateral, positions=(), keys=(), risk=Risk())


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


def isolated_shortfall(book: Book, position: Position, margin: Decimal) -> Risk | None:
    """The position's risk when ``margin`` (counting an unrealized loss) is below its initial
    margin, else None: what removing isolated margin or lowering leverage must not cause."""
    risk = total_risk(book, [dataclasses.replace(position, isolated_margin=margin)])
    return risk if margin + min(ZERO, risk.unrealized_pnl) < risk.initial_margin else None


def cross_risk(state: StateLike, account: Account) -> Risk:
    book = book_for(state, account)
    return total_risk(book, book.cross_positions())


def free_margin(state: StateLike, account: Account) -> Decimal:
    """What new orders and withdrawals may use: min(wallet, MB) - cross IM - open-order margin."""
    risk = cross_risk(state, account)
    balance = account.wallet + risk.unrealized_pnl
    return min(account.wallet, balance) - risk.initial_margin - account.reserved()
