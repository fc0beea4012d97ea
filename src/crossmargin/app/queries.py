"""Read models: what the outside (the service, the Binance facade) may read of a running engine.

A :class:`ReadModel` is handed to every read the service runs on the engine thread; it exposes
the engine's configuration, its accounts, marks, instruments and money ledgers as read-only
views, an account's core book and scopes, and the log (for an index rebuilt at start). The
service never reaches into the engine, its state or its store itself: what it publishes comes
from the entries a batch committed (``Engine.run_batch``), what it shows from here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from types import MappingProxyType

from crossmargin.app.examination import MARGIN_CALL_THRESHOLD
from crossmargin.app.model import Account, Ledgers
from crossmargin.app.views import account_scopes, book_for, free_margin
from crossmargin.app.writer import Engine
from crossmargin.core.instrument import Instrument
from crossmargin.core.risk import Book, Scope
from crossmargin.ledger.store import StoredEntry

__all__ = ["MARGIN_CALL_THRESHOLD", "ReadModel"]


class ReadModel:
    """Read-only access to one engine (use it on the engine thread only)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @property
    def venue(self) -> str:
        return str(self._engine.config["venue"])

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(str(symbol) for symbol in self._engine.config["symbols"])

    @property
    def matching(self) -> str:
        return self._engine.matching

    @property
    def last_seq(self) -> int:
        return self._engine.last_seq

    def state_hash(self) -> str:
        return self._engine.state_hash()

    @property
    def accounts(self) -> Mapping[str, Account]:
        return MappingProxyType(self._engine.state.accounts)

    def account(self, account_id: str) -> Account | None:
        return self._engine.state.accounts.get(account_id)

    @property
    def instruments(self) -> Mapping[str, Instrument]:
        return MappingProxyType(self._engine.state.instruments)

    @property
    def marks(self) -> Mapping[str, Decimal]:
        return MappingProxyType(self._engine.state.marks)

    @property
    def ledgers(self) -> Ledgers:
        return self._engine.state.ledgers

    def book(self, account: Account) -> Book:
        """The account's core book (isolated margins attached, marks from the engine)."""
        return book_for(self._engine.state, account)

    def free_margin(self, account: Account) -> Decimal:
        """What new orders and withdrawals may use (app.views.free_margin)."""
        return free_margin(self._engine.state, account)

    def scopes(self, account: Account) -> list[Scope]:
        return account_scopes(self._engine.state, account)

    def entries(self, after_seq: int = 0) -> Iterator[StoredEntry]:
        """The log's entries after ``after_seq`` (an index rebuilt at start reads them)."""
        return self._engine.store.read(after_seq)
