"""Price feeds: intrabar ordering, alignment, pacing, the posted queue and the polling feed."""

from __future__ import annotations

import sys
import types
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossmargin.core.errors import InvalidInput
from crossmargin.core.position import Side
from crossmargin.sim.candles import Candle, CandleSeries
from crossmargin.sim.episodes import load_episode
from crossmargin.sim.feed import (
    ExtremeOrder,
    IntrabarStep,
    PollingFeed,
    PriceSource,
    align,
    ccxt_exchange,
    extreme_order,
    intrabar_path,
    intrabar_times,
    replay,
)
from crossmargin.sim.market import parse_candles
from tests.sim.candles import START, csv_text, row, rows

HOUR = timedelta(hours=1)


class FakeClock:
    """A clock whose time only moves when someone sleeps."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return START + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds


def candle(open_: str, high: str, low: str, close: str) -> Candle:
    return Candle(
        timestamp=START,
        open=Decimal(open_),
        high=Decimal(high),
        low=Decimal(low),
        close=Decimal(close),
        volume=Decimal(1),
    )


def series(symbol: str, lines: list[str]) -> CandleSeries:
    return parse_candles(csv_text(lines).splitlines(), source=symbol, symbol=symbol).series


def test_extreme_nearer_the_open_comes_first() -> None:
    falling = candle("100", "101", "90", "91")
    rising = candle("100", "110", "99", "109")
    assert intrabar_path(falling) == tuple(Decimal(x) for x in ("100", "101", "90", "91"))
    assert intrabar_path(rising) == tuple(Decimal(x) for x in ("100", "99", "110", "109"))


def test_tie_is_broken_by_the_candle_direction() -> None:
    assert extreme_order(candle("100", "105", "95", "102")) is ExtremeOrder.LOW_FIRST
    assert extreme_order(candle("100", "105", "95", "98")) is ExtremeOrder.HIGH_FIRST
    assert extreme_order(candle("100", "105", "95", "100")) is ExtremeOrder.LOW_FIRST


@pytest.mark.parametrize("side", [Side.LONG, Side.SHORT])
def test_every_candle_tests_its_worst_price_before_the_close(side: Side) -> None:
    for bar in (candle("100", "101", "90", "91"), candle("100", "110", "99", "109")):
        path = intrabar_path(bar)
        assert bar.worst_for(side) in path[1:3]
        assert path[0] == bar.open
        assert path[3] == bar.close


def test_intrabar_times_are_strictly_increasing_within_the_candle() -> None:
    times = intrabar_times(START, HOUR)
    assert list(times) == sorted(set(times))
    assert times[0] == START
    assert times[-1] < START + HOUR
    assert times[1] == START + timedelta(minutes=20)


def test_align_keeps_common_timestamps_and_counts_dropped() -> None:
    btc = series("BTCUSDT", rows(5))
    eth = series("ETHUSDT", [*rows(2), *rows(3, start_hour=3)])  # hour 2 missing
    aligned = align([btc, eth])
    assert [t.hour for t in aligned.timestamps] == [0, 1, 3, 4]
    assert dict(aligned.dropped) == {"BTCUSDT": 1, "ETHUSDT": 1}
    assert aligned.rows[2]["ETHUSDT"].timestamp == START + 3 * HOUR


def test_align_refuses_disjoint_and_duplicate_series() -> None:
    early = series("BTCUSDT", rows(2))
    late = series("ETHUSDT", rows(2, start_hour=10))
    with pytest.raises(InvalidInput, match="share no timestamp"):
        align([early, late])
    with pytest.raises(InvalidInput, match="appears twice"):
        align([early, early])
    with pytest.raises(InvalidInput):
        align([])


def test_intrabar_replay_yields_four_ordered_marks_per_candle() -> None:
    btc = series("BTCUSDT", [row(0, "100", "101", "90", "91"), row(1, "91", "99", "90", "98")])
    eth = series("ETHUSDT", [row(0, "10", "12", "9.9", "11"), row(1, "11", "11.5", "10", "10.2")])
    marks = list(replay(align([btc, eth])))
    assert len(marks) == 8
    assert [m.step for m in marks[:4]] == list(IntrabarStep)
    assert [m.prices["BTCUSDT"] for m in marks[:4]] == [
        Decimal(x) for x in ("100", "101", "90", "91")
    ]
    assert [m.prices["ETHUSDT"] for m in marks[:4]] == [
        Decimal(x) for x in ("10", "9.9", "12", "11")
    ]
    times = [m.timestamp for m in marks]
    assert times == sorted(set(times))
    assert {m.candle_start for m in marks[4:]} == {START + HOUR}


def test_close_only_replay_yields_one_mark_per_candle() -> None:
    marks = list(replay(align([series("BTCUSDT", rows(3))]), intrabar=False))
    assert [m.prices["BTCUSDT"] for m in marks] == [Decimal(101), Decimal(102), Decimal(103)]
    assert all(m.step is IntrabarStep.CLOSE for m in marks)


def test_replay_of_a_real_episode_reaches_the_crash_low() -> None:
    data = load_episode("march-2020", ["BTCUSDT", "ETHUSDT"])
    aligned = align(list(data.series.values()))
    lowest = min(mark.prices["BTCUSDT"] for mark in replay(aligned))
    assert lowest == min(c.low for c in data.series["BTCUSDT"].candles) == Decimal("3621.81")
    closes = min(mark.prices["BTCUSDT"] for mark in replay(aligned, intrabar=False))
    assert closes > lowest


class FakeExchange:
    """Duck-typed like a ccxt exchange: ``has``, ``fetch_ticker`` and ``fetch_mark_price``."""

    def __init__(self, tickers: dict[str, dict[str, Any]], *, mark_endpoint: bool) -> None:
        self.has = {"fetchMarkPrice": mark_endpoint}
        self.tickers = tickers
        self.calls: list[tuple[str, str]] = []

    def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        self.calls.append(("fetch_ticker", symbol))
        return self.tickers[symbol]

    def fetch_mark_price(self, symbol: str) -> dict[str, Any]:
        self.calls.append(("fetch_mark_price", symbol))
        return {"symbol": symbol, "markPrice": self.tickers[symbol]["markPrice"]}


TICKERS = {
    "BTC/USDT:USDT": {"last": 60001.1, "markPrice": 60000.3, "timestamp": 1},
    "ETH/USDT:USDT": {"last": 3000.25, "markPrice": 2999.9, "timestamp": 1},
}
SYMBOLS = {"BTCUSDT": "BTC/USDT:USDT", "ETHUSDT": "ETH/USDT:USDT"}


def test_polling_feed_reads_mark_prices_through_the_mark_endpoint_and_sleeps_between_polls() -> (
    None
):
    exchange = FakeExchange(TICKERS, mark_endpoint=True)
    clock = FakeClock()
    marks = list(PollingFeed(exchange, SYMBOLS, clock=clock, poll_seconds=2.0, max_polls=3))
    assert len(marks) == 3
    assert dict(marks[0].prices) == {"BTCUSDT": Decimal("60000.3"), "ETHUSDT": Decimal("2999.9")}
    assert {name for name, _ in exchange.calls} == {"fetch_mark_price"}
    assert clock.sleeps == [2.0, 2.0]
    assert [m.timestamp for m in marks] == [START + timedelta(seconds=s) for s in (0, 2, 4)]


def test_polling_feed_falls_back_to_the_tickers_mark_field_or_reads_last() -> None:
    exchange = FakeExchange(TICKERS, mark_endpoint=False)
    mark = PollingFeed(exchange, SYMBOLS, clock=FakeClock()).poll()
    assert mark.prices["BTCUSDT"] == Decimal("60000.3")
    assert {name for name, _ in exchange.calls} == {"fetch_ticker"}
    last = PollingFeed(exchange, SYMBOLS, clock=FakeClock(), source=PriceSource.LAST).poll()
    assert last.prices["ETHUSDT"] == Decimal("3000.25")


def test_polling_feed_never_swaps_a_missing_mark_price_for_the_last_trade() -> None:
    exchange = FakeExchange({"BTC/USDT": {"last": 1.0, "markPrice": None}}, mark_endpoint=False)
    with pytest.raises(InvalidInput) as caught:
        PollingFeed(exchange, {"BTCUSDT": "BTC/USDT"}, clock=FakeClock()).poll()
    assert caught.value.field == "BTC/USDT.markPrice"


@pytest.mark.parametrize("bad", [float("nan"), 0.0, -3.0, "x"])
def test_polling_feed_refuses_bad_ticker_values(bad: object) -> None:
    exchange = FakeExchange({"BTC/USDT": {"markPrice": bad}}, mark_endpoint=False)
    with pytest.raises(InvalidInput):
        PollingFeed(exchange, {"BTCUSDT": "BTC/USDT"}, clock=FakeClock()).poll()


def test_ccxt_exchange_needs_the_extra_and_builds_by_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ccxt", None)
    with pytest.raises(InvalidInput, match=r"crossmargin\[live\]"):
        ccxt_exchange("binanceusdm")

    class FakeBinance:
        def __init__(self, options: dict[str, Any]) -> None:
            self.options = options

    fake = types.ModuleType("ccxt")
    fake.binanceusdm = FakeBinance  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ccxt", fake)
    built = ccxt_exchange("binanceusdm", {"enableRateLimit": True})
    assert isinstance(built, FakeBinance)
    assert built.options == {"enableRateLimit": True}
    with pytest.raises(InvalidInput, match="no exchange"):
        ccxt_exchange("nosuchvenue")


PRICES = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(100000), places=4)


@given(st.lists(PRICES, min_size=4, max_size=4), st.booleans())
def test_intrabar_path_visits_both_extremes_nearer_one_first(
    values: list[Decimal], rising: bool
) -> None:
    low, first, second, high = sorted(values)
    open_, close = (first, second) if rising else (second, first)
    bar = candle(str(open_), str(high), str(low), str(close))
    path = intrabar_path(bar)
    assert (path[0], path[3]) == (bar.open, bar.close)
    assert sorted(path[1:3]) == [bar.low, bar.high]
    assert abs(path[1] - bar.open) <= abs(path[2] - bar.open)
