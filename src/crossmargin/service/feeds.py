"""Background price feeds the service runs: a replay of a bundled crash, or a live exchange.

Both turn each :class:`~crossmargin.sim.feed.PriceMark` into one ``update_marks`` command (every
symbol's mark at that instant, so the holders are examined once, at the new prices of all their
legs), stamped with the mark's time for the price history.

* :class:`ReplayFeed`: a bundled episode (``sim.episodes``, real Binance hourly candles around a
  real crash) replayed intrabar (O, nearer extreme, farther extreme, C; see ``sim.feed``) at
  ``speed`` x real time, from ``start`` (default: the episode's start). Pacing awaits
  ``asyncio.sleep``, anchored at the first mark, so a slow engine does not
  accumulate drift. Commands are the feed's own (principal ``feed``: no account can claim their
  ids) with ids ``replay.<episode>.<time>``: after a restart the marks already in the log
  come back as duplicates and change nothing.
* :class:`LiveFeed`: polls an exchange object with ccxt's interface through
  ``sim.feed.PollingFeed`` (the blocking call runs in a worker thread); ccxt itself is only needed
  to build a real exchange (``sim.feed.ccxt_exchange``, the ``live`` extra). A failed poll is
  logged and retried after the poll interval; the feed never stops the service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from crossmargin.app.writer import FEED
from crossmargin.core.errors import CrossmarginError, InvalidInput
from crossmargin.core.numbers import format_decimal
from crossmargin.service.host import EngineHost
from crossmargin.sim.episodes import get_episode, load_episode
from crossmargin.sim.feed import PollingFeed, PriceMark, PriceSource, TickerExchange, align, replay

LOG = logging.getLogger("crossmargin.service.feed")


def mark_commands(mark: PriceMark, prefix: str) -> list[dict[str, Any]]:
    """The tick as one ``update_marks``: every symbol's mark at that instant, examined once."""
    stamp = mark.timestamp.astimezone(UTC).strftime("%Y%m%dT%H%M%S%f")
    return [
        {
            "type": "update_marks",
            "command_id": f"{prefix}.{stamp}",
            "prices": dict(sorted(mark.prices.items())),
        }
    ]


class ReplayFeed:
    """Replay a bundled episode's candles as marks."""

    def __init__(
        self,
        episode: str,
        symbols: tuple[str, ...],
        *,
        speed: float,
        start: datetime | None = None,
    ) -> None:
        if not speed > 0:
            raise InvalidInput("speed", f"must be positive, got {speed}")
        self.episode = get_episode(episode)
        data = load_episode(episode, symbols)
        marks = list(replay(align(list(data.series.values()))))
        if start is not None:
            if start.utcoffset() is None:
                raise InvalidInput("start", "must be timezone-aware (UTC)")
            marks = [mark for mark in marks if mark.timestamp >= start]
            if not marks:
                raise InvalidInput("start", f"is after the end of episode {episode!r}")
        self.marks = marks
        self.speed = speed
        self.position = 0
        self.now: datetime | None = None
        self.done = False

    def first_prices(self) -> Mapping[str, Decimal]:
        return self.marks[0].prices

    def first_time(self) -> datetime:
        return self.marks[0].timestamp

    def status(self) -> dict[str, Any]:
        return {
            "kind": "replay",
            "episode": self.episode.name,
            "title": self.episode.title,
            "speed": self.speed,
            "time": None if self.now is None else self.now.isoformat(),
            "marks_done": self.position,
            "marks_total": len(self.marks),
            "done": self.done,
        }

    async def run(self, host: EngineHost) -> None:
        loop = asyncio.get_running_loop()
        first = self.marks[0].timestamp
        started = loop.time()
        for index, mark in enumerate(self.marks):
            due = started + (mark.timestamp - first).total_seconds() / self.speed
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await host.submit_many(
                    mark_commands(mark, f"replay.{self.episode.name}"),
                    mark.timestamp,
                    principal=FEED,
                )
            except CrossmarginError as error:
                LOG.error("replay stopped at %s: %s", mark.timestamp.isoformat(), error)
                return
            self.position, self.now = index + 1, mark.timestamp
        self.done = True


class LiveFeed:
    """Poll an exchange (ccxt interface) for mark prices."""

    def __init__(
        self,
        exchange: TickerExchange,
        symbols: Mapping[str, str],
        *,
        poll_seconds: float = 5.0,
        source: PriceSource = PriceSource.MARK,
        max_polls: int | None = None,
    ) -> None:
        self.poller = PollingFeed(exchange, symbols, poll_seconds=poll_seconds, source=source)
        self.poll_seconds = poll_seconds
        self.max_polls = max_polls
        self.polls = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last: dict[str, str] = {}

    def status(self) -> dict[str, Any]:
        return {
            "kind": "live",
            "polls": self.polls,
            "failures": self.failures,
            "last_error": self.last_error,
            "last": dict(self.last),
        }

    async def run(self, host: EngineHost) -> None:
        while self.max_polls is None or self.polls + self.failures < self.max_polls:
            try:
                mark = await asyncio.to_thread(self.poller.poll)
            except Exception as error:  # the exchange's own errors are not ours to know
                self.failures += 1
                self.last_error = f"{type(error).__name__}: {error}"
                LOG.warning("live feed poll failed: %s", self.last_error)
            else:
                await host.submit_many(mark_commands(mark, "live"), mark.timestamp, principal=FEED)
                self.polls += 1
                self.last = {s: format_decimal(p) for s, p in mark.prices.items()}
            await asyncio.sleep(self.poll_seconds)
