"""Marks and fills by the server's clock: what klines, tickers and the 24h figures are built from.

Each mark the engine commits is recorded with the wall-clock time at which the facade saw it
(the engine's log carries no clock); fills likewise, for volumes. A replay feed's historical
timestamps are therefore not used: a venue serves candles in its own time, and a bot decides on
candles that are current. The tape is memory only (bounded per symbol); after a restart it
starts from the marks the engine holds.

Klines (``[open time, open, high, low, close, volume, close time, quote volume, trades, taker
buy volume, taker buy quote volume, "0"]``): an interval with no mark repeats the previous
close (as Binance does for an interval without trades), with zero volume.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crossmargin.core.numbers import ZERO
from crossmargin.service.binance.wire import number

MAX_POINTS = 200_000  # per symbol; the oldest half is dropped past twice this
DAY_MS = 86_400_000
MONDAY_OFFSET_MS = 4 * DAY_MS  # 1970-01-05 was a Monday: weekly candles open on Mondays
INTERVALS_MS = {
    "1m": 60_000,
    "3m": 180_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "2h": 7_200_000,
    "4h": 14_400_000,
    "6h": 21_600_000,
    "8h": 28_800_000,
    "12h": 43_200_000,
    "1d": DAY_MS,
    "3d": 3 * DAY_MS,
    "1w": 7 * DAY_MS,
}


def align(ms: int, interval: int) -> int:
    """The open time of the interval holding ``ms``."""
    offset = MONDAY_OFFSET_MS if interval == INTERVALS_MS["1w"] else 0
    return (ms - offset) // interval * interval + offset


@dataclass(slots=True)
class _Series:
    times: list[int] = field(default_factory=list)
    prices: list[Decimal] = field(default_factory=list)

    def add(self, ms: int, price: Decimal) -> None:
        if self.times and ms < self.times[-1]:
            ms = self.times[-1]  # the clock never runs backwards on the tape
        self.times.append(ms)
        self.prices.append(price)
        if len(self.times) > 2 * MAX_POINTS:
            del self.times[:MAX_POINTS]
            del self.prices[:MAX_POINTS]


@dataclass(slots=True)
class _Fills:
    times: list[int] = field(default_factory=list)
    quantities: list[Decimal] = field(default_factory=list)
    quotes: list[Decimal] = field(default_factory=list)
    buys: list[bool] = field(default_factory=list)

    def add(self, ms: int, quantity: Decimal, price: Decimal, buy: bool) -> None:
        if self.times and ms < self.times[-1]:
            ms = self.times[-1]
        self.times.append(ms)
        self.quantities.append(quantity)
        self.quotes.append(quantity * price)
        self.buys.append(buy)
        if len(self.times) > 2 * MAX_POINTS:
            for column in (self.times, self.quantities, self.quotes, self.buys):
                del column[:MAX_POINTS]

    def window(self, start: int, end: int) -> tuple[Decimal, Decimal, int, Decimal, Decimal]:
        """Volume, quote volume, count, taker-buy volume and quote volume in [start, end)."""
        low, high = bisect_left(self.times, start), bisect_left(self.times, end)
        volume = sum(self.quantities[low:high], ZERO)
        quote = sum(self.quotes[low:high], ZERO)
        buy_volume = sum(
            (q for q, b in zip(self.quantities[low:high], self.buys[low:high], strict=True) if b),
            ZERO,
        )
        buy_quote = sum(
            (q for q, b in zip(self.quotes[low:high], self.buys[low:high], strict=True) if b), ZERO
        )
        return volume, quote, high - low, buy_volume, buy_quote


class MarkTape:
    """Marks and fills per symbol, by the server's clock."""

    def __init__(self) -> None:
        self.marks: dict[str, _Series] = {}
        self.fills: dict[str, _Fills] = {}

    def mark(self, symbol: str, price: Decimal, ms: int) -> None:
        self.marks.setdefault(symbol, _Series()).add(ms, price)

    def fill(self, symbol: str, quantity: Decimal, price: Decimal, buy: bool, ms: int) -> None:
        self.fills.setdefault(symbol, _Fills()).add(ms, quantity, price, buy)

    def last(self, symbol: str) -> tuple[int, Decimal] | None:
        series = self.marks.get(symbol)
        if series is None or not series.times:
            return None
        return series.times[-1], series.prices[-1]

    def _price_before(self, series: _Series, ms: int) -> Decimal | None:
        index = bisect_left(series.times, ms)
        return series.prices[index - 1] if index > 0 else None

    def klines(
        self,
        symbol: str,
        interval: int,
        *,
        start: int | None,
        end: int | None,
        limit: int,
        now: int,
        with_volume: bool = True,
    ) -> list[list[Any]]:
        series = self.marks.get(symbol)
        if series is None or not series.times:
            return []
        first = align(series.times[0], interval)
        last = align(min(end, now) if end is not None else now, interval)
        if start is not None:
            begin = align(start, interval)
            if begin < start:  # Binance: candles that open at or after startTime
                begin += interval
            opens = range(max(first, begin), last + 1, interval)[:limit]
        else:
            opens = range(max(first, last - (limit - 1) * interval), last + 1, interval)
        fills = self.fills.get(symbol, _Fills())
        rows = []
        for open_ms in opens:
            close_ms = open_ms + interval
            low, high = bisect_left(series.times, open_ms), bisect_left(series.times, close_ms)
            prices = series.prices[low:high]
            previous = self._price_before(series, open_ms)
            if not prices:
                if previous is None:
                    continue
                prices = [previous]
            opening = previous if previous is not None and low > 0 else prices[0]
            volume = quote = buy = buy_quote = ZERO
            count = 0
            if with_volume:
                volume, quote, count, buy, buy_quote = fills.window(open_ms, close_ms)
            rows.append(
                [
                    open_ms,
                    number(opening),
                    number(max(opening, *prices)),
                    number(min(opening, *prices)),
                    number(prices[-1]),
                    number(volume),
                    close_ms - 1,
                    number(quote),
                    count,
                    number(buy),
                    number(buy_quote),
                    "0",
                ]
            )
        return rows

    def day(self, symbol: str, now: int) -> dict[str, Any] | None:
        """The rolling 24-hour figures of ``/fapi/v1/ticker/24hr``."""
        series = self.marks.get(symbol)
        if series is None or not series.times:
            return None
        start = now - DAY_MS
        low = bisect_right(series.times, start)
        prices = series.prices[low:]
        opening = series.prices[low - 1] if low > 0 else prices[0]
        last = series.prices[-1]
        volume, quote, count, _, _ = self.fills.get(symbol, _Fills()).window(start, now + 1)
        change = last - opening
        percent = (change * 100 / opening).quantize(Decimal("0.001")) if opening else ZERO
        return {
            "symbol": symbol,
            "priceChange": number(change),
            "priceChangePercent": number(percent),
            "weightedAvgPrice": number(
                (quote / volume).quantize(Decimal("1e-8")) if volume else last
            ),
            "lastPrice": number(last),
            "lastQty": "0",
            "openPrice": number(opening),
            "highPrice": number(max(opening, *prices) if prices else opening),
            "lowPrice": number(min(opening, *prices) if prices else opening),
            "volume": number(volume),
            "quoteVolume": number(quote),
            "openTime": max(start, series.times[0]),
            "closeTime": now,
            "firstId": 0,
            "lastId": 0,
            "count": count,
        }
