"""Replayed marks for the live-client tests: the bundled May 2021 candles, posted on cue.

A :class:`MarkPump` posts the current prices to ``/v1/marks`` (the operator's mark feed) every
``period`` seconds, so the server's candles stay current while a client trades; ``play`` walks
a stretch of real intrabar marks (open, nearer extreme, farther extreme, close of each hourly
candle, as the service's replay feed does) one step per ``step`` seconds and holds the last.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

from crossmargin.sim.episodes import load_episode
from crossmargin.sim.feed import PriceMark, align, replay
from tests.binance.live import Server

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def may_2021() -> list[PriceMark]:
    data = load_episode("may-2021", SYMBOLS)
    return list(replay(align(list(data.series.values()))))


def stretch(marks: list[PriceMark], start: str, end: str) -> list[PriceMark]:
    """The marks with ``start <= time < end`` (ISO times, UTC)."""
    low = datetime.fromisoformat(start).replace(tzinfo=UTC)
    high = datetime.fromisoformat(end).replace(tzinfo=UTC)
    return [mark for mark in marks if low <= mark.timestamp < high]


class MarkPump:
    """Posts the current marks every ``period`` seconds on a background thread."""

    def __init__(self, server: Server, prices: Mapping[str, Decimal], period: float = 1.0) -> None:
        self.server = server
        self.period = period
        self.prices = dict(prices)
        self.posted = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mark-pump", daemon=True)

    def __enter__(self) -> MarkPump:
        self._post()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _post(self) -> None:
        with self._lock:
            prices = dict(self.prices)
            try:
                self.server.marks(**prices)
                self.posted += 1
            except Exception as error:  # a failed post is retried on the next beat
                self.errors.append(f"{type(error).__name__}: {error}")

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self._post()

    def play(self, marks: list[PriceMark], step: float = 1.0) -> None:
        """Post each mark in turn (``step`` seconds apart); the last one stays current."""
        for mark in marks:
            with self._lock:
                self.prices = dict(mark.prices)
            self._post()
            time.sleep(step)
