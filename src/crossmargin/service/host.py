"""The engine host: one thread owns the engine; one asyncio writer task feeds it.

* Every touch of the engine (commands and reads alike) runs on a single-worker executor thread,
  so the engine stays single-threaded and the event loop never blocks on an fsync.
* Commands go through one ``asyncio.Queue``; the writer task takes what is waiting (up to
  ``MAX_BATCH``) and hands it to ``Engine.execute_batch``: one durable append for the group
  (group commit). Results are answered only after the append returned.
* The engine returns the entries it committed (``Engine.run_batch``): nothing is read back from
  the log. On the engine thread they go to the listeners (the Binance facade's index); on the
  event loop they are published (through ``service.hub``): events to the accounts they concern
  (redacted, see ``service.redaction``; one walk to strings, one JSON pass per message), marks to
  the price stream, and a fresh account view to every watched account that the batch touched or
  whose symbols moved.
* An ``InvariantViolation`` stops the writer: every later command fails with it (HTTP 500).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from crossmargin.app.commands import Command
from crossmargin.app.queries import ReadModel
from crossmargin.app.writer import OPERATOR, Engine, log_key
from crossmargin.core.errors import InvariantViolation, StorageError
from crossmargin.ledger import open_store
from crossmargin.ledger.store import StoredEntry
from crossmargin.service.hub import Hub, PriceBoard
from crossmargin.service.redaction import event_accounts, redact_for
from crossmargin.service.views import account_view, holders_of, symbols_marked
from crossmargin.service.wire import dumps, plain

T = TypeVar("T")
# Called on the engine thread with the entries each batch committed, in order (the Binance
# facade keeps its index this way).
Listener = Callable[[list[StoredEntry]], None]
LOG = logging.getLogger("crossmargin.service")
MAX_BATCH = 256
RECENT_EVENTS = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineSettings:
    database: str
    schema: str | None = None  # PostgreSQL only: the schema holding the log's tables
    venue: str = "binance-usdm"
    symbols: tuple[str, ...] = ()
    matching: str = "simulated"


@dataclass(frozen=True, slots=True)
class _Item:
    commands: list[Command | dict[str, Any]]
    stamp: datetime | None
    future: asyncio.Future[list[dict[str, Any]]]
    principal: str = OPERATOR  # who sent the commands: their ids are unique per principal


@dataclass(frozen=True, slots=True)
class _Batch:
    results: list[dict[str, Any]]
    entries: list[StoredEntry]
    views: dict[str, dict[str, Any]]


class EngineHost:
    """The engine, its writer task, its subscribers and its price board."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.hub = Hub()
        self.prices = PriceBoard()
        self.recent: dict[str, deque[dict[str, Any]]] = {}
        self.failure: InvariantViolation | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._engine: Engine | None = None
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self.listeners: list[Listener] = []

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._engine = await loop.run_in_executor(self._executor, self._open)
        marks = await self.read(lambda model: dict(model.marks))
        now = datetime.now(UTC)
        for symbol, price in sorted(marks.items()):
            self.prices.record(symbol, plain(price), now)
        recent = await self.read(_recent_entries)
        for entry in recent:
            self._remember(entry)
        self._writer = asyncio.create_task(self._write_loop(), name="engine-writer")

    def _open(self) -> Engine:
        settings = self.settings
        store = open_store(settings.database, schema=settings.schema)
        try:
            kwargs: dict[str, Any] = {"venue_name": settings.venue, "matching": settings.matching}
            if settings.symbols:
                kwargs["symbols"] = settings.symbols
            return Engine(store, **kwargs)
        except BaseException:
            store.close()
            raise

    async def stop(self) -> None:
        if self._writer is not None:
            await self._queue.put(None)
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        if self._engine is not None:
            engine = self._engine
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._executor, _close, engine)
            self._engine = None
        self._executor.shutdown(wait=True)

    # -- access ------------------------------------------------------------------------------

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise StorageError("the engine is not running")
        return self._engine

    async def read(self, query: Callable[[ReadModel], T]) -> T:
        """Run ``query`` on the engine thread (serialised with commands), over the engine's
        read model: the only view of the engine the service has."""
        model = ReadModel(self.engine)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, query, model)

    async def submit(
        self,
        command: Command | dict[str, Any],
        stamp: datetime | None = None,
        *,
        principal: str = OPERATOR,
    ) -> dict[str, Any]:
        return (await self.submit_many([command], stamp, principal=principal))[0]

    async def submit_many(
        self,
        commands: Sequence[Command | dict[str, Any]],
        stamp: datetime | None = None,
        *,
        principal: str = OPERATOR,
    ) -> list[dict[str, Any]]:
        """Queue commands for the writer; answers once they are durable (in order).

        ``principal`` (``operator``, ``feed`` or ``account:<id>``) sent them: command ids are
        unique per principal."""
        if self.failure is not None:
            raise self.failure
        if self._writer is None:
            raise StorageError("the engine is not running")
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(list(commands), stamp, future, principal))
        return await future

    # -- the writer ----------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            first = await self._queue.get()
            if first is None:
                return
            items, stopping = self._take_batch(first)
            await self._write(items)
            if stopping:
                return

    def _take_batch(self, first: _Item) -> tuple[list[_Item], bool]:
        """``first`` and what else is waiting, up to ``MAX_BATCH``; True when a stop came too."""
        items = [first]
        while len(items) < MAX_BATCH and not self._queue.empty():
            item = self._queue.get_nowait()
            if item is None:
                return items, True
            items.append(item)
        return items, False

    async def _write(self, items: list[_Item]) -> None:
        """Run the items' commands as one batch; answer each item with its results (or the
        error), then publish what the batch committed."""
        commands = [command for item in items for command in item.commands]
        principals = [item.principal for item in items for _ in item.commands]
        watched = self.hub.watched()
        try:
            if self.failure is not None:
                raise self.failure
            batch = await asyncio.get_running_loop().run_in_executor(
                self._executor,
                _execute,
                self.engine,
                commands,
                principals,
                watched,
                tuple(self.listeners),
            )
        except Exception as error:
            if isinstance(error, InvariantViolation):
                self.failure = error
                LOG.error("invariant violated, the writer stops: %s", error)
            for item in items:
                if not item.future.done():
                    item.future.set_exception(error)
            return
        start = 0
        for item in items:
            end = start + len(item.commands)
            if not item.future.done():
                item.future.set_result(batch.results[start:end])
            start = end
        self._publish(items, batch)

    def _publish(self, items: list[_Item], batch: _Batch) -> None:
        stamps: dict[str, datetime] = {}
        for item in items:
            for command in item.commands:
                command_id = command_id_of(command)
                if item.stamp is not None and command_id is not None:
                    stamps[log_key(item.principal, command_id)] = item.stamp
        now = datetime.now(UTC)
        for entry in batch.entries:
            for event in entry.events:
                if isinstance(event, dict) and event.get("type") == "MarkPriceUpdated":
                    symbol, price = str(event["symbol"]), plain(event["price"])
                    seconds, _ = self.prices.record(
                        symbol, price, stamps.get(entry.command_id, now)
                    )
                    self.hub.send_prices(
                        dumps({"type": "price", "symbol": symbol, "price": price, "time": seconds})
                    )
            for account, message in self._remember(entry):
                self.hub.send_account(account, dumps(message))
        for account, view in batch.views.items():
            self.hub.send_account(account, dumps({"type": "account", "view": view}))

    def _remember(self, entry: StoredEntry) -> list[tuple[str, dict[str, Any]]]:
        """Keep each account's recent events; returns the (account, message) pairs to send."""
        messages = []
        for event in entry.events:
            if not isinstance(event, dict):
                continue
            for account in sorted(event_accounts(event)):
                message = {
                    "type": "event",
                    "seq": entry.seq,
                    "event": plain(redact_for(event, account)),
                }
                self.recent.setdefault(account, deque(maxlen=RECENT_EVENTS)).append(message)
                messages.append((account, message))
        return messages


def command_id_of(command: Command | dict[str, Any]) -> str | None:
    if isinstance(command, Command):
        return command.command_id
    command_id = command.get("command_id")
    return command_id if isinstance(command_id, str) else None


def _execute(
    engine: Engine,
    commands: list[Command | dict[str, Any]],
    principals: list[str],
    watched: frozenset[str],
    listeners: tuple[Listener, ...],
) -> _Batch:
    """On the engine thread: decide and append, hand the committed entries to the listeners,
    build the fresh views."""
    outcome = engine.run_batch(commands, principals)
    results, entries = outcome.results, outcome.committed
    for listener in listeners:
        listener(entries)
    views: dict[str, dict[str, Any]] = {}
    if watched and entries:
        events = [e for entry in entries for e in entry.events if isinstance(e, dict)]
        touched = set().union(*(event_accounts(event) for event in events)) & watched
        model = ReadModel(engine)
        touched |= holders_of(model, symbols_marked(events), watched)
        for account in sorted(touched):
            view = account_view(model, account)
            if view is not None:
                views[account] = view
    return _Batch(results=[plain(r) for r in results], entries=entries, views=views)


def _recent_entries(model: ReadModel) -> list[StoredEntry]:
    return list(model.entries(max(0, model.last_seq - 5 * RECENT_EVENTS)))


def _close(engine: Engine) -> None:
    with contextlib.suppress(Exception):
        engine.snapshot()
    engine.store.close()
