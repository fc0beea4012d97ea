"""Market data from the engine's marks: candles, tickers, the book; filters; exchangeInfo."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from crossmargin.service.binance.tape import INTERVALS_MS, MarkTape, align
from tests.binance.live import Server, serve

MINUTE = 60_000
T0 = 1_700_000_040_000  # a minute boundary


def tape(*points: tuple[int, str]) -> MarkTape:
    marks = MarkTape()
    for ms, price in points:
        marks.mark("ETHUSDT", Decimal(price), ms)
    return marks


def test_a_candle_opens_at_the_mark_in_force_and_spans_its_marks() -> None:
    marks = tape(
        (T0 + 5_000, "100"), (T0 + 65_000, "104"), (T0 + 70_000, "99"), (T0 + 80_000, "101")
    )
    rows = marks.klines("ETHUSDT", MINUTE, start=None, end=None, limit=10, now=T0 + 90_000)
    assert [row[0] for row in rows] == [T0, T0 + MINUTE]
    assert rows[0][1:5] == ["100", "100", "100", "100"]
    assert rows[1][1:5] == ["100", "104", "99", "101"]  # opens at the close before it
    assert rows[1][6] == T0 + 2 * MINUTE - 1


def test_a_minute_without_marks_repeats_the_last_close_with_no_volume() -> None:
    marks = tape((T0, "100"), (T0 + 3 * MINUTE + 1, "90"))
    marks.fill("ETHUSDT", Decimal(2), Decimal(100), True, T0 + 10)
    rows = marks.klines("ETHUSDT", MINUTE, start=None, end=None, limit=10, now=T0 + 3 * MINUTE + 5)
    assert [row[4] for row in rows] == ["100", "100", "100", "90"]
    assert [row[5] for row in rows] == ["2", "0", "0", "0"]
    assert rows[0][8] == 1 and rows[0][9] == "2"  # one trade, a taker buy


def test_start_time_and_limit_page_like_binance() -> None:
    marks = tape(*((T0 + i * MINUTE, str(100 + i)) for i in range(10)))
    now = T0 + 9 * MINUTE + 1
    recent = marks.klines("ETHUSDT", MINUTE, start=None, end=None, limit=3, now=now)
    assert [row[0] for row in recent] == [T0 + 7 * MINUTE, T0 + 8 * MINUTE, T0 + 9 * MINUTE]
    paged = marks.klines("ETHUSDT", MINUTE, start=T0 + 1, end=None, limit=2, now=now)
    assert [row[0] for row in paged] == [T0 + MINUTE, T0 + 2 * MINUTE]  # opens at or after start


def test_weekly_candles_open_on_monday() -> None:
    monday = 1_699_833_600_000  # 2023-11-13 00:00 UTC, a Monday
    assert align(monday + 3 * INTERVALS_MS["1d"], INTERVALS_MS["1w"]) == monday


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder: Path = tmp_path_factory.mktemp("market")
    with serve(folder) as running:
        running.marks(ETHUSDT="2000.005", BTCUSDT="40000")
        yield running


def get(server: Server, path: str, **params: object) -> httpx.Response:
    return httpx.get(server.url + path, params=params, timeout=30)


def test_exchange_info_lists_the_engines_symbols_with_filters(server: Server) -> None:
    info = get(server, "/fapi/v1/exchangeInfo").json()
    symbols = {s["symbol"]: s for s in info["symbols"]}
    assert sorted(symbols) == ["BTCUSDT", "ETHUSDT"]
    eth = symbols["ETHUSDT"]
    assert (eth["contractType"], eth["marginAsset"], eth["orderTypes"]) == (
        "PERPETUAL",
        "USDT",
        ["LIMIT", "MARKET"],
    )
    filters = {f["filterType"]: f for f in eth["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01"
    assert filters["LOT_SIZE"]["stepSize"] == "0.001"
    assert filters["MIN_NOTIONAL"]["notional"] == "5"
    assert eth["liquidationFee"] == "0.0125"  # the venue preset's clearance fee


def test_the_book_surrounds_the_mark_at_the_tick(server: Server) -> None:
    book = get(server, "/fapi/v1/depth", symbol="ETHUSDT", limit=5).json()
    assert [level[0] for level in book["bids"]][:2] == ["2000", "1999.99"]
    assert [level[0] for level in book["asks"]][:2] == ["2000.01", "2000.02"]
    top = get(server, "/fapi/v1/ticker/bookTicker", symbol="ETHUSDT").json()
    assert (top["bidPrice"], top["askPrice"]) == ("2000", "2000.01")
    mark = get(server, "/fapi/v1/premiumIndex", symbol="ETHUSDT").json()
    assert mark["markPrice"] == mark["indexPrice"] == "2000.005"


def test_bad_market_requests_get_binance_codes(server: Server) -> None:
    assert get(server, "/fapi/v1/depth", symbol="DOGEUSDT").json()["code"] == -1121
    assert get(server, "/fapi/v1/klines", symbol="ETHUSDT", interval="2m").json()["code"] == -1120
    assert get(server, "/fapi/v1/depth", symbol="ETHUSDT", limit=7).json()["code"] == -1130
    missing = get(server, "/fapi/v1/klines", interval="1m")
    assert missing.status_code == 400 and missing.json()["code"] == -1102
    extra = get(server, "/fapi/v1/time", foo="1").json()
    assert extra["code"] == -1104 and "'foo'" in extra["msg"]


def test_orders_outside_the_filters_are_refused_and_change_nothing(server: Server) -> None:
    credentials = server.open_account("filters", "1000")
    before = server.state_hash()
    cases = [
        ({"quantity": "0.0005"}, -1111),  # off the 0.001 step
        ({"quantity": "0.001"}, -4164),  # 2 USDT notional < 5
        ({"quantity": "0"}, -4003),
        ({"type": "LIMIT", "price": "1999.999", "timeInForce": "GTC"}, -4014),
        ({"type": "STOP_MARKET"}, -1116),
        ({"side": "UP"}, -1117),
        ({"positionSide": "LONG"}, -4061),  # one-way mode
        ({"newClientOrderId": "has space"}, -4015),
        ({"type": "LIMIT", "price": "1900", "timeInForce": "IOC"}, -1115),
    ]
    base = {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
    for change, code in cases:
        response = server.signed("POST", "/fapi/v1/order", credentials, {**base, **change})
        assert response.json().get("code") == code, (change, response.text)
    assert server.state_hash() == before
    accepted = server.signed("POST", "/fapi/v1/order", credentials, base)
    assert accepted.json()["status"] == "FILLED"


def test_hedge_mode_orders_name_their_position_side(server: Server) -> None:
    credentials = server.open_account("hedger", "5000")

    def call(method: str, path: str, **params: str) -> dict[str, object]:
        body: dict[str, object] = server.signed(method, path, credentials, params).json()
        return body

    assert call("GET", "/fapi/v1/positionSide/dual") == {"dualSidePosition": False}
    assert call("POST", "/fapi/v1/positionSide/dual", dualSidePosition="true")["code"] == 200
    assert call("POST", "/fapi/v1/positionSide/dual", dualSidePosition="true")["code"] == -4059
    order = {"symbol": "ETHUSDT", "type": "MARKET", "quantity": "0.5"}
    assert call("POST", "/fapi/v1/order", side="BUY", **order)["code"] == -4061  # no side named
    assert (
        call("POST", "/fapi/v1/order", side="BUY", positionSide="LONG", **order)["status"]
        == "FILLED"
    )
    assert (
        call("POST", "/fapi/v1/order", side="SELL", positionSide="SHORT", **order)["status"]
        == "FILLED"
    )
    refused = call(
        "POST", "/fapi/v1/order", side="SELL", positionSide="LONG", reduceOnly="true", **order
    )
    assert refused["code"] == -1106  # Binance: reduceOnly is not sent in hedge mode
    rows = server.signed("GET", "/fapi/v3/positionRisk", credentials).json()
    assert {(r["positionSide"], r["positionAmt"]) for r in rows} == {
        ("LONG", "0.5"),
        ("SHORT", "-0.5"),
    }
    assert call("POST", "/fapi/v1/positionSide/dual", dualSidePosition="false")["code"] == -4068


def test_resting_orders_are_found_by_client_id_and_cancelled_together(server: Server) -> None:
    credentials = server.open_account("rester", "5000")
    limit = {
        "symbol": "ETHUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.1",
    }
    for client, price in (("low-1", "1900"), ("low-2", "1800")):
        placed = server.signed(
            "POST",
            "/fapi/v1/order",
            credentials,
            {**limit, "price": price, "newClientOrderId": client},
        )
        assert placed.json()["status"] == "NEW", placed.text
    again = server.signed(
        "POST",
        "/fapi/v1/order",
        credentials,
        {**limit, "price": "1700", "newClientOrderId": "low-1"},
    )
    assert again.json()["code"] == -4116  # in use by an open order
    found = server.signed(
        "GET", "/fapi/v1/order", credentials, {"symbol": "ETHUSDT", "origClientOrderId": "low-2"}
    ).json()
    assert (found["price"], found["status"]) == ("1800", "NEW")
    done = server.signed("DELETE", "/fapi/v1/allOpenOrders", credentials, {"symbol": "ETHUSDT"})
    assert done.json()["code"] == 200
    assert server.signed("GET", "/fapi/v1/openOrders", credentials).json() == []
    statuses = [
        o["status"]
        for o in server.signed(
            "GET", "/fapi/v1/allOrders", credentials, {"symbol": "ETHUSDT"}
        ).json()
    ]
    assert statuses == ["CANCELED", "CANCELED"]
    gone = server.signed(
        "DELETE", "/fapi/v1/order", credentials, {"symbol": "ETHUSDT", "origClientOrderId": "low-1"}
    )
    assert gone.json()["code"] == -2011
