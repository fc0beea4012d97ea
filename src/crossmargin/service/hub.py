"""The event loop's side of publishing: WebSocket outboxes by stream, and the price board.

What it owns: ``Subscriber`` (one socket's bounded outbox; a consumer ``SUBSCRIBER_BACKLOG``
messages behind is marked overflowed and disconnected by its handler), ``Hub`` (the subscribers of
the price stream and of each account, and revoking a key's sockets) and ``PriceBoard`` (the
latest mark and a bounded history per symbol). ``service.host`` fills them after each batch;
everything here runs on the event loop only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PRICE_HISTORY = 20_000
SUBSCRIBER_BACKLOG = 1_000


@dataclass(slots=True, eq=False)
class Subscriber:
    """One WebSocket's outbox. ``account`` None: the price stream. ``credential``: the hash of
    the key it authenticated with; ``revoked`` is set when that key stops working."""

    account: str | None
    credential: str = ""
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(SUBSCRIBER_BACKLOG))
    overflowed: bool = False
    revoked: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, text: str) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True  # a consumer this far behind is disconnected by its handler


class Hub:
    """Subscribers by stream; lives on the event loop."""

    def __init__(self) -> None:
        self.prices: set[Subscriber] = set()
        self.accounts: dict[str, set[Subscriber]] = {}

    def subscribe(self, account: str | None, credential: str = "") -> Subscriber:
        subscriber = Subscriber(account=account, credential=credential)
        if account is None:
            self.prices.add(subscriber)
        else:
            self.accounts.setdefault(account, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber.account is None:
            self.prices.discard(subscriber)
            return
        group = self.accounts.get(subscriber.account)
        if group is not None:
            group.discard(subscriber)
            if not group:
                del self.accounts[subscriber.account]

    def revoke(self, credentials: frozenset[str]) -> int:
        """Mark every subscriber of these keys revoked (its handler closes it); how many."""
        found = 0
        for subscriber in (*self.prices, *(s for group in self.accounts.values() for s in group)):
            if subscriber.credential in credentials:
                subscriber.revoked.set()
                found += 1
        return found

    def watched(self) -> frozenset[str]:
        return frozenset(self.accounts)

    def send_prices(self, text: str) -> None:
        for subscriber in tuple(self.prices):
            subscriber.offer(text)

    def send_account(self, account: str, text: str) -> None:
        for subscriber in tuple(self.accounts.get(account, ())):
            subscriber.offer(text)


class PriceBoard:
    """Latest mark and a bounded history per symbol, with the feed's timestamps in seconds.

    Each symbol's times strictly increase, so a chart can plot them: a mark in the same second as
    the last one is moved one second on, and a mark from before the history's end (a replay of
    2021 after prices posted today) starts a new history rather than bend the time axis.
    """

    def __init__(self) -> None:
        self.history: dict[str, deque[tuple[int, str]]] = {}

    def record(self, symbol: str, price: str, stamp: datetime) -> tuple[int, str]:
        series = self.history.setdefault(symbol, deque(maxlen=PRICE_HISTORY))
        seconds = int(stamp.timestamp())
        if series and seconds < series[-1][0] - 1:
            series.clear()
        if series and seconds <= series[-1][0]:
            seconds = series[-1][0] + 1
        point = (seconds, price)
        series.append(point)
        return point

    def latest(self) -> dict[str, dict[str, Any]]:
        return {
            symbol: {"price": series[-1][1], "time": series[-1][0]}
            for symbol, series in sorted(self.history.items())
            if series
        }
