"""Keeping the batch liquidation screen (batch.screen) in step with the engine's state.

The writer calls :func:`sync` with the accounts that a committed command touched, and
:func:`rebuild` after loading. On a mark update the liquidation engine asks the screen which
accounts to confirm with the Decimal core; the core alone decides and emits events. Every number
reaches the screen through :mod:`crossmargin.batch.convert`, the one place that turns a
``Decimal`` into a float.
"""

from __future__ import annotations

from collections.abc import Iterable

from crossmargin.app.events import Event
from crossmargin.app.model import EngineState
from crossmargin.batch.convert import decimal_to_float, position_floats
from crossmargin.batch.screen import LiquidationScreen
from crossmargin.core.numbers import ZERO


def touched_accounts(events: Iterable[Event]) -> set[str]:
    accounts: set[str] = set()
    for event in events:
        if event.account_named is not None:
            accounts.add(event.account_named)
        for posting in getattr(event, "postings", ()):
            if posting.ledger.account:
                accounts.add(posting.ledger.account)
    return accounts


def sync(state: EngineState, accounts: Iterable[str]) -> None:
    screen = state.screen
    if screen is None:
        return
    for account_id in accounts:
        account = state.accounts.get(account_id)
        if account is None:
            continue
        screen.sync_account(account_id, decimal_to_float(account.wallet), _rows(state, account_id))


def _rows(state: EngineState, account_id: str) -> list[tuple[str, str, float, float, float | None]]:
    """The screen's rows of one account: (symbol, slot, quantity, entry notional, margin)."""
    account = state.accounts[account_id]
    rows = []
    for (symbol, slot), position in account.positions.items():
        margin = account.isolated.get((symbol, slot), ZERO) if position.is_isolated else None
        rows.append((symbol, slot, *position_floats(position, margin)))
    return rows


def rebuild(state: EngineState) -> None:
    screen = LiquidationScreen(state.rules, state.instruments)
    for symbol, price in state.marks.items():
        screen.marks[symbol] = decimal_to_float(price)
    wallets = {account_id: decimal_to_float(a.wallet) for account_id, a in state.accounts.items()}
    screen.load(
        wallets,
        ((a, *row) for a in state.accounts for row in _rows(state, a)),
    )
    state.screen = screen
