"""Background feeds through a real server: a bundled crash replay and a (fake) live exchange."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from crossmargin.service.feeds import LiveFeed, ReplayFeed
from crossmargin.sim.episodes import get_episode, load_episode
from tests.service.server import Running, serve

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def wait_until(condition: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def marks(server: Running) -> dict[str, str]:
    with server.client() as operator:
        return {s: m["price"] for s, m in operator.get("/v1/marks").json()["marks"].items()}


def short_replay() -> ReplayFeed:
    episode = get_episode("may-2021")
    return ReplayFeed("may-2021", SYMBOLS, speed=1e7, start=episode.end - timedelta(hours=3))


def test_a_replay_posts_every_intrabar_mark_and_ends_at_the_last_close(tmp_path: Path) -> None:
    feed = short_replay()
    with serve(str(tmp_path / "log.db"), feed=feed, symbols=SYMBOLS) as server:
        wait_until(lambda: feed.status()["done"])
        final = marks(server)
        with server.client() as operator:
            history = operator.get("/v1/marks/ETHUSDT/history").json()["points"]
            status = operator.get("/v1/engine").json()["feed"]
    series = load_episode("may-2021", SYMBOLS).series
    assert final == {s: str(series[s].candles[-1].close) for s in SYMBOLS}
    assert len(history) == 3 * 4 == status["marks_total"] == status["marks_done"]
    assert status["kind"] == "replay" and status["done"]


def test_replaying_again_after_a_restart_changes_nothing(tmp_path: Path) -> None:
    database = str(tmp_path / "log.db")
    first_feed = short_replay()
    with serve(database, feed=first_feed, symbols=SYMBOLS) as server:
        wait_until(lambda: first_feed.status()["done"])
        state_hash = server.state_hash()
    again = short_replay()
    with serve(database, feed=again, symbols=SYMBOLS) as server:
        wait_until(lambda: again.status()["done"])
        assert server.state_hash() == state_hash


class FakeExchange:
    """The part of a ccxt exchange the live feed uses; records what it was asked."""

    has: Mapping[str, bool] = {"fetchMarkPrice": True}

    def __init__(self, prices: dict[str, float], fail: bool = False) -> None:
        self.prices = prices
        self.fail = fail
        self.asked: list[str] = []

    def fetch_mark_price(self, symbol: str) -> dict[str, Any]:
        self.asked.append(symbol)
        if self.fail:
            raise ConnectionError("exchange unreachable")
        return {"symbol": symbol, "markPrice": self.prices[symbol]}

    def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        raise AssertionError("the mark price must come from fetch_mark_price")


def test_a_live_feed_posts_the_exchanges_mark_prices(tmp_path: Path) -> None:
    exchange = FakeExchange({"ETH/USDT:USDT": 2345.67, "BTC/USDT:USDT": 43210.5})
    feed = LiveFeed(
        exchange,
        {"ETHUSDT": "ETH/USDT:USDT", "BTCUSDT": "BTC/USDT:USDT"},
        poll_seconds=0.01,
        max_polls=2,
    )
    with serve(str(tmp_path / "log.db"), feed=feed, symbols=SYMBOLS) as server:
        wait_until(lambda: feed.status()["polls"] == 2)
        wait_until(lambda: len(marks(server)) == 2)
        assert marks(server) == {"ETHUSDT": "2345.67", "BTCUSDT": "43210.5"}
    assert sorted(set(exchange.asked)) == ["BTC/USDT:USDT", "ETH/USDT:USDT"]


def test_a_failing_exchange_is_reported_and_the_service_keeps_serving(tmp_path: Path) -> None:
    exchange = FakeExchange({}, fail=True)
    feed = LiveFeed(exchange, {"ETHUSDT": "ETH/USDT:USDT"}, poll_seconds=0.01, max_polls=3)
    with serve(str(tmp_path / "log.db"), feed=feed, symbols=SYMBOLS) as server:
        wait_until(lambda: feed.status()["failures"] == 3)
        with server.client() as operator:
            status = operator.get("/v1/engine").json()["feed"]
        assert marks(server) == {}
    assert status["polls"] == 0 and "exchange unreachable" in status["last_error"]
