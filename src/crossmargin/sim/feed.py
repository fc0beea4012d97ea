"""Price feeds: iterators of :class:`PriceMark` (a timestamp and a price per symbol).

Two sources share the one mark type (the service paces a replay itself, and operator-posted
marks go straight to the engine):

* **Candle replay** (:func:`replay`): aligned candles of several symbols replayed as marks, with
  intrabar realism.
* **Live polling** (:class:`PollingFeed`): polls an exchange object with ccxt's interface
  (``fetch_ticker``, ``fetch_mark_price``); ccxt itself is an optional extra, never imported here.

Intrabar convention. An hourly candle says the price visited Open, High, Low and Close, not in
which order. A replayed candle yields four marks, O -> first extreme -> second extreme -> C, and
the extreme *nearer the open* is visited first (the shorter excursion is the likelier first one);
on a tie the candle's direction decides (a rising candle visits its low first). So every candle
tests a long against its Low and a short against its High before its Close. Backtests that only
need the worst case use :meth:`Candle.worst_for` (Low for a long, High for a short).

Intrabar marks carry nominal times: the open at the candle's start, the extremes at 1/3 and 2/3
of the interval, the close at ``start + interval - 1 ms`` (the venue's own kline close time).
Only their order is data; the times exist so that marks are strictly increasing and can be paced.

Polling never calls ``time.sleep`` directly: it goes through an injected :class:`Clock`, so tests
poll without waiting.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from types import MappingProxyType
from typing import Any, Protocol

from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import parse_positive
from crossmargin.sim.candles import Candle, CandleSeries

CLOSE_BEFORE_END = timedelta(milliseconds=1)


class Clock(Protocol):
    """Wall time, a monotonic counter and sleeping: the only time a feed sees."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock (UTC wall time, ``time.monotonic``, ``time.sleep``)."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class IntrabarStep(Enum):
    OPEN = "open"
    FIRST_EXTREME = "first-extreme"
    SECOND_EXTREME = "second-extreme"
    CLOSE = "close"


class ExtremeOrder(Enum):
    LOW_FIRST = "low-first"  # O, L, H, C
    HIGH_FIRST = "high-first"  # O, H, L, C


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceMark:
    """Prices of one instant. Replayed marks also say which candle and intrabar step they are."""

    timestamp: datetime
    prices: Mapping[str, Decimal]
    candle_start: datetime | None = None
    step: IntrabarStep | None = None


def extreme_order(candle: Candle) -> ExtremeOrder:
    """Which extreme the replay visits first: the one nearer the open; ties by direction."""
    down = candle.open - candle.low
    up = candle.high - candle.open
    if down != up:
        return ExtremeOrder.LOW_FIRST if down < up else ExtremeOrder.HIGH_FIRST
    return ExtremeOrder.LOW_FIRST if candle.close >= candle.open else ExtremeOrder.HIGH_FIRST


def intrabar_path(candle: Candle) -> tuple[Decimal, Decimal, Decimal, Decimal]:
    """The four replayed prices of a candle: O, L, H, C or O, H, L, C (see module docstring)."""
    if extreme_order(candle) is ExtremeOrder.LOW_FIRST:
        return (candle.open, candle.low, candle.high, candle.close)
    return (candle.open, candle.high, candle.low, candle.close)


def intrabar_times(start: datetime, interval: timedelta) -> tuple[datetime, ...]:
    """Nominal, strictly increasing times of the four intrabar marks of a candle."""
    return (
        start,
        start + interval / 3,
        start + interval * 2 / 3,
        start + interval - CLOSE_BEFORE_END,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AlignedCandles:
    """Candles of several symbols on their common timestamps; ``dropped`` counts the rest."""

    interval: timedelta
    symbols: tuple[str, ...]
    timestamps: tuple[datetime, ...]
    rows: tuple[Mapping[str, Candle], ...]
    dropped: Mapping[str, int]


def align(series: Sequence[CandleSeries]) -> AlignedCandles:
    """Keep the timestamps every series has; a timestamp missing from one symbol is dropped for
    all (and counted), so a replay never invents a price."""
    if not series:
        raise InvalidInput("symbols", "at least one candle series is needed")
    symbols = tuple(item.symbol for item in series)
    if len(set(symbols)) != len(symbols):
        raise InvalidInput("symbols", f"a symbol appears twice: {', '.join(symbols)}")
    intervals = {item.interval for item in series}
    if len(intervals) != 1:
        raise InvalidInput("interval", "all series must share one candle interval")
    common = set(series[0].timestamps)
    for item in series[1:]:
        common &= set(item.timestamps)
    if not common:
        spans = "; ".join(f"{item.symbol} {item.span()}" for item in series)
        raise InvalidInput("symbols", f"the series share no timestamp ({spans})")
    timestamps = tuple(sorted(common))
    rows = tuple(
        MappingProxyType({item.symbol: _candle_at(item, stamp) for item in series})
        for stamp in timestamps
    )
    dropped = MappingProxyType({item.symbol: len(item) - len(timestamps) for item in series})
    return AlignedCandles(
        interval=series[0].interval,
        symbols=symbols,
        timestamps=timestamps,
        rows=rows,
        dropped=dropped,
    )


def _candle_at(series: CandleSeries, stamp: datetime) -> Candle:
    candle = series.at(stamp)
    if candle is None:
        raise InvalidInput("symbols", f"{series.symbol} has no candle at {stamp.isoformat()}")
    return candle


def replay(aligned: AlignedCandles, *, intrabar: bool = True) -> Iterator[PriceMark]:
    """Marks of aligned candles in order: four per candle (intrabar) or one at each close.

    At intrabar step k every symbol is at step k of its own path, so in one mark BTC may be at
    its low while ETH is at its high.
    """
    steps = tuple(IntrabarStep)
    for stamp, row in zip(aligned.timestamps, aligned.rows, strict=True):
        if not intrabar:
            prices = {symbol: candle.close for symbol, candle in row.items()}
            yield PriceMark(
                timestamp=stamp + aligned.interval - CLOSE_BEFORE_END,
                prices=MappingProxyType(prices),
                candle_start=stamp,
                step=IntrabarStep.CLOSE,
            )
            continue
        paths = {symbol: intrabar_path(candle) for symbol, candle in row.items()}
        times = intrabar_times(stamp, aligned.interval)
        for index, step in enumerate(steps):
            yield PriceMark(
                timestamp=times[index],
                prices=MappingProxyType({symbol: path[index] for symbol, path in paths.items()}),
                candle_start=stamp,
                step=step,
            )


class PriceSource(Enum):
    MARK = "mark"
    LAST = "last"


class TickerExchange(Protocol):
    """The part of a ccxt exchange object the live feed uses (``fetch_mark_price`` is optional,
    used when ``has['fetchMarkPrice']`` says so)."""

    def fetch_ticker(self, symbol: str) -> Mapping[str, Any]: ...


class PollingFeed:
    """Poll an exchange for prices every ``poll_seconds``; ``symbols`` maps our symbol to the
    exchange's (``{"BTCUSDT": "BTC/USDT:USDT"}``).

    With ``PriceSource.MARK`` (the default: venues liquidate on the mark price) a venue that
    publishes no mark price is an error, never a silent switch to the last trade.
    Marks are stamped with the clock's time of the poll.
    """

    def __init__(
        self,
        exchange: TickerExchange,
        symbols: Mapping[str, str],
        *,
        clock: Clock | None = None,
        poll_seconds: float = 5.0,
        source: PriceSource = PriceSource.MARK,
        max_polls: int | None = None,
    ) -> None:
        if not symbols:
            raise InvalidInput("symbols", "at least one symbol is required")
        if not poll_seconds > 0:
            raise InvalidInput("poll_seconds", f"must be positive, got {poll_seconds}")
        self._exchange = exchange
        self._symbols = dict(symbols)
        self._clock = clock or SystemClock()
        self._poll_seconds = poll_seconds
        self._source = source
        self._max_polls = max_polls

    def poll(self) -> PriceMark:
        prices = {ours: self._price(theirs) for ours, theirs in self._symbols.items()}
        return PriceMark(timestamp=self._clock.now(), prices=MappingProxyType(prices))

    def __iter__(self) -> Iterator[PriceMark]:
        polls = 0
        while self._max_polls is None or polls < self._max_polls:
            if polls:
                self._clock.sleep(self._poll_seconds)
            yield self.poll()
            polls += 1

    def _price(self, symbol: str) -> Decimal:
        if self._source is PriceSource.LAST:
            ticker = self._exchange.fetch_ticker(symbol)
            return _ticker_price(ticker, ("last", "close"), f"{symbol}.last")
        capabilities = getattr(self._exchange, "has", {})
        fetch_mark = getattr(self._exchange, "fetch_mark_price", None)
        if capabilities.get("fetchMarkPrice") and callable(fetch_mark):
            ticker = fetch_mark(symbol)
        else:
            ticker = self._exchange.fetch_ticker(symbol)
        return _ticker_price(ticker, ("markPrice",), f"{symbol}.markPrice")


def _ticker_price(ticker: Mapping[str, Any], keys: tuple[str, ...], field: str) -> Decimal:
    for key in keys:
        value = ticker.get(key)
        if value is not None:
            # ccxt hands out floats; their shortest repr is the decimal text the venue sent.
            return parse_positive(repr(value) if isinstance(value, float) else value, field)
    raise InvalidInput(field, f"the exchange returned no {' or '.join(keys)}")


def ccxt_exchange(exchange_id: str, options: Mapping[str, Any] | None = None) -> Any:
    """Build a ccxt exchange object (needs the ``live`` extra: ``pip install crossmargin[live]``)."""
    try:
        ccxt = importlib.import_module("ccxt")
    except ImportError:
        raise InvalidInput(
            "exchange", "the live feed needs ccxt: pip install 'crossmargin[live]'"
        ) from None
    factory = getattr(ccxt, exchange_id, None)
    if not isinstance(exchange_id, str) or not exchange_id.isidentifier() or factory is None:
        raise InvalidInput("exchange", f"ccxt has no exchange {exchange_id!r}")
    return factory(dict(options or {}))
