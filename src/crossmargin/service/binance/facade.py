"""The facade's runtime: credentials, the activity index, and the way to the engine.

* On start the index is rebuilt from the whole log (on the engine thread), then a background
  task follows the log: whenever the engine's last sequence number moves, the new entries are
  read and indexed, so every record's time is within ``FOLLOW_SECONDS`` of its commit.
* Every read that serves a request first catches the index up and then builds its answer, both
  on the engine thread, so a client always sees its own last command and the index is only
  ever touched by that one thread.
* Commands go to the host under the account's principal (``account:<id>``) with a fresh command
  id, after the engine's own validation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from crossmargin.app.commands import validate
from crossmargin.app.writer import Engine, account_principal, log_key
from crossmargin.core.errors import CrossmarginError, StorageError
from crossmargin.service.binance import auth
from crossmargin.service.binance.credentials import ExchangeCredentials
from crossmargin.service.binance.index import ActivityIndex
from crossmargin.service.context import ServiceContext

T = TypeVar("T")
LOG = logging.getLogger("crossmargin.service.binance")
FOLLOW_SECONDS = 0.2


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
        self._task: asyncio.Task[None] | None = None

    @property
    def context(self) -> ServiceContext:
        if self._context is None:
            raise StorageError("the service is not started")
        return self._context

    async def start(self, context: ServiceContext) -> None:
        self._context = context
        self.index = ActivityIndex(self.clock)
        await context.host.read(self._rebuild)
        self._task = asyncio.create_task(self._follow(), name="binance-index")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _rebuild(self, engine: Engine) -> None:
        self.index.follow(engine.store.read(0), live=False)
        now = self.clock()
        for symbol, price in sorted(engine.state.marks.items()):
            self.index.tape.mark(symbol, price, now)

    def _catch_up(self, engine: Engine) -> None:
        if engine.last_seq > self.index.last_seq:
            self.index.follow(engine.store.read(self.index.last_seq))

    async def _follow(self) -> None:
        host = self.context.host
        while True:
            await asyncio.sleep(FOLLOW_SECONDS)
            try:
                if host.engine.last_seq != self.index.last_seq:
                    await host.read(self._catch_up)
            except CrossmarginError as error:  # the engine stopped or the store failed
                LOG.warning("binance index: cannot follow the log: %s", error)

    async def read(self, query: Callable[[Engine, ActivityIndex], T]) -> T:
        """``query`` on the engine thread, after the index caught up with the log."""

        def run(engine: Engine) -> T:
            self._catch_up(engine)
            return query(engine, self.index)

        return await self.context.host.read(run)

    async def signed(self, request: Request) -> auth.Caller:
        return await auth.signed(request, self.credentials, self.clock)

    async def submit(self, account: str, command: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Run an engine command for ``account``; its log key and the engine's result."""
        command_id = f"bn.{uuid.uuid4().hex}"
        full = {**command, "account": account, "command_id": command_id}
        validate(full)
        principal = account_principal(account)
        result = await self.context.host.submit(full, principal=principal)
        return log_key(principal, command_id), result


def facade_of(request: Request) -> BinanceFacade:
    facade = getattr(request.app.state, "binance", None)
    if not isinstance(facade, BinanceFacade):
        raise StorageError("the Binance facade is not installed")
    return facade
