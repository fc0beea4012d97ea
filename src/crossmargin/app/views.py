"""Read-side views of engine state through the exact core: books, risk, free margin.

The engine never re-implements a formula: it builds a core :class:`Book` for an account (isolated
margins attached to their positions, marks from state) and asks core.risk.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal

from crossmargin.app.evolve import StateLike
from crossmargin.app.model import Account
from crossmargin.core.numbers import ZERO
from crossmargin.core.position import Position
from crossmargin.core.risk import Book, Risk, is_liquidatable, margin_ratio, total_risk
from crossmargin.core.scope import CROSS, ScopeId

Key = tuple[str, str]  # (symbol, slot)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeState:
    """One scope of an account now: the cross scope or one isolated slot.

    ``keys`` are the positions in it (none when only its collateral is left)."""

    scope: ScopeId
    collateral: Decimal
    keys: tuple[Key, ...]
    risk: Risk

    @property
    def margin_balance(self) -> Decimal:
        return self.collateral + self.risk.unrealized_pnl

    @property
    def liquidatable(self) -> bool:
        return is_liquidatable(self.collateral, self.risk)

    @property
    def margin_ratio(self) -> Decimal | None:
        return margin_ratio(self.collateral, self.risk)


def scope_ids(account: Account) -> list[ScopeId]:
    """The account's scopes in examination order: cross, then isolated slots by (symbol, slot);
    a slot or wallet without positions is listed while it holds negative collateral."""
    scopes = []
    if account.wallet < 0 or any(not p.is_isolated for p in account.positions.values()):
        scopes.append(CROSS)
    slots = {k for k, p in account.positions.items() if p.is_isolated} | {
        k for k, margin in account.isolated.items() if margin != 0
    }
    scopes += [ScopeId.isolated(*key) for key in sorted(slots)]
    return scopes


def scope_state(state: StateLike, account: Account, scope: ScopeId) -> ScopeState:
    book = book_for(state, account)
    if scope.is_cross:
        keys = tuple(sorted(k for k, p in account.positions.items() if not p.is_isolated))
        risk = total_risk(book, [account.positions[k] for k in keys])
        return ScopeState(scope=scope, collateral=account.wallet, keys=keys, risk=risk)
    collateral = account.isolated.get(scope.key, ZERO)
    position = account.positions.get(scope.key)
    if position is None or not position.is_isolated:
        return ScopeState(scope=scope, collateral=collateral, keys=(), risk=Risk())
    risk = total_risk(book, [dataclasses.replace(position, isolated_margin=collateral)])
    return ScopeState(scope=scope, collateral=collateral, keys=(scope.key,), risk=risk)


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
