"""The facade's runtime: credentials, the activity index, and the way to the engine.

* On start the index is rebuilt from the whole log (on the engine thread); from then on the host
  hands it every batch's committed entries, on the engine thread, as the batch commits (a host
  listener): nothing is read back from the log, and a client always sees its own last command.
* Every read that serves a request runs on the engine thread too, so the index is only ever
  touched by that one thread.
* Commands go to the host under the account's principal (``account:<id>``) with a fresh command
  id, after the engine's own validation.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from crossmargin.app.commands import parse_command
from crossmargin.app.queries import ReadModel
from crossmargin.app.writer import account_principal, log_key
from crossmargin.core.errors import StorageError
from crossmargin.ledger.store import StoredEntry
from crossmargin.service.binance import auth
from crossmargin.service.binance.credentials import ExchangeCredentials
from crossmargin.service.binance.index import ActivityIndex
from crossmargin.service.context import ServiceContext

T = TypeVar("T")


class BinanceFacade:
    def __init__(
        self,
        credentials: ExchangeCredentials | None = None,
        clock: Callable[[], int] = auth.now_ms,
    ) -> None:
        self.credentials = credentials or ExchangeCredentials.in_memory()
        self.clock = clock
        self.index = ActivityIndex(clock)
        self._context: ServiceContext | None = None

    @property
    def context(self) -> ServiceContext:
        if self._context is None:
            raise StorageError("the service is not started")
        return self._context

    async def start(self, context: ServiceContext) -> None:
        self._context = context
        self.index = ActivityIndex(self.clock)
        # rebuilt and subscribed in one step on the engine thread: no batch can fall between
        await context.host.read(self._rebuild)

    async def stop(self) -> None:
        if self._context is not None:
            with contextlib.suppress(ValueError):
                self._context.host.listeners.remove(self._committed)

    def _rebuild(self, model: ReadModel) -> None:
        self.index.follow(model.entries(0), live=False)
        now = self.clock()
        for symbol, price in sorted(model.marks.items()):
            self.index.tape.mark(symbol, price, now)
        self.context.host.listeners.append(self._committed)

    def _committed(self, entries: list[StoredEntry]) -> None:
        self.index.follow(entries)

    async def read(self, query: Callable[[ReadModel, ActivityIndex], T]) -> T:
        """``query`` on the engine thread (where the index is kept up to date)."""
        return await self.context.host.read(lambda model: query(model, self.index))

    async def signed(self, request: Request) -> auth.Caller:
        return await auth.signed(request, self.credentials, self.clock)

    async def submit(self, account: str, command: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Run an engine command for ``account``; its log key and the engine's result."""
        command_id = f"bn.{uuid.uuid4().hex}"
        typed = parse_command({**command, "account": account, "command_id": command_id})
        principal = account_principal(account)
        result = await self.context.host.submit(typed, principal=principal)
        return log_key(principal, command_id), result


def facade_of(request: Request) -> BinanceFacade:
    facade = getattr(request.app.state, "binance", None)
    if not isinstance(facade, BinanceFacade):
        raise StorageError("the Binance facade is not installed")
    return facade
