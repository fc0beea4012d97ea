"""Hostile parameters on the Binance facade's routes get Binance-shaped refusals and change nothing.

Every value below is wrong for every parameter it is put in (huge, tiny, non-ASCII digits that
``int()`` would read, a NUL, 10,000 characters, ...). For each route and parameter, the request
that differs only in that one value is sent signed: the answer must be HTTP 400 with Binance's
``{"code", "msg"}`` and a negative code, the server must stay up, and the engine's state hash
must be what it was. The unchanged request is sent too and must be accepted, so the test cannot
pass by refusing everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.binance.live import Server, serve

HOSTILE = (
    "１２",  # full-width digits: int('１２') == 12
    "²",  # a digit to str.isdigit(), not to int()
    "--5",
    "-",
    "1" * 25,
    "1e20",
    "9" * 5000,
    "1e-30",
    "NaN",
    "Infinity",
    "0x10",
    "é😀",
    "\x00",
    "a" * 10_000,
    " ",
    "1,5",
    "[]",
)

LIMIT = {
    "symbol": "ETHUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "quantity": "0.01",
    "price": "1900",
    "timeInForce": "GTC",
}

# (method, path, parameters that are accepted as they are)
ROUTES: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("POST", "/fapi/v1/order", LIMIT),
    ("GET", "/fapi/v1/order", {"symbol": "ETHUSDT", "orderId": "{order}"}),
    ("POST", "/fapi/v1/leverage", {"symbol": "ETHUSDT", "leverage": "10"}),
    ("POST", "/fapi/v1/marginType", {"symbol": "BTCUSDT", "marginType": "ISOLATED"}),
    ("GET", "/fapi/v1/income", {"limit": "10"}),
    ("GET", "/fapi/v1/allOrders", {"symbol": "ETHUSDT"}),
    ("GET", "/fapi/v1/userTrades", {"symbol": "ETHUSDT", "limit": "5"}),
    ("GET", "/fapi/v2/positionRisk", {"symbol": "ETHUSDT"}),
    ("GET", "/fapi/v1/leverageBracket", {"symbol": "ETHUSDT"}),
    ("GET", "/fapi/v1/openOrders", {"symbol": "ETHUSDT"}),
    ("DELETE", "/fapi/v1/order", {"symbol": "ETHUSDT", "orderId": "{order}"}),
    ("DELETE", "/fapi/v1/allOpenOrders", {"symbol": "ETHUSDT"}),
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    folder: Path = tmp_path_factory.mktemp("hostile")
    with serve(folder) as server:
        server.marks(ETHUSDT="2000", BTCUSDT="40000")
        yield server, server.open_account("mallory", "1000")


def binance_refusal(response: httpx.Response) -> int:
    assert response.status_code == 400, response.text[:300]
    body = response.json()
    assert set(body) == {"code", "msg"} and isinstance(body["code"], int), body
    assert body["code"] < 0, body
    return int(body["code"])


def resting_order(server: Server, credentials: dict[str, str]) -> str:
    placed = server.signed("POST", "/fapi/v1/order", credentials, LIMIT)
    assert placed.status_code == 200, placed.text
    return str(placed.json()["orderId"])


def test_every_hostile_value_is_refused_like_binance_and_changes_nothing(
    world: tuple[Server, dict[str, str]],
) -> None:
    server, mallory = world
    order = resting_order(server, mallory)
    sent = 0
    for method, path, accepted in ROUTES:
        params = {k: v.replace("{order}", order) for k, v in accepted.items()}
        before = server.state_hash()
        for name in params:
            for value in HOSTILE:
                response = server.signed(method, path, mallory, {**params, name: value})
                binance_refusal(response)
                sent += 1
        assert server.state_hash() == before, (method, path)
        assert server.process.poll() is None
        answer = server.signed(method, path, mallory, params)
        assert answer.status_code == 200, (method, path, answer.text[:300])
    assert sent == len(HOSTILE) * sum(len(p) for _, _, p in ROUTES)


def test_unicode_digits_are_not_a_leverage(world: tuple[Server, dict[str, str]]) -> None:
    server, mallory = world
    for value in ("１２", "٣", "²"):
        response = server.signed(
            "POST", "/fapi/v1/leverage", mallory, {"symbol": "BTCUSDT", "leverage": value}
        )
        assert binance_refusal(response) == -1130
    accepted = server.signed(
        "POST", "/fapi/v1/leverage", mallory, {"symbol": "BTCUSDT", "leverage": "12"}
    )
    assert accepted.json()["leverage"] == 12


def test_a_limit_order_names_its_time_in_force(world: tuple[Server, dict[str, str]]) -> None:
    server, mallory = world
    before = server.state_hash()
    for force in ({}, {"timeInForce": ""}):
        params: dict[str, Any] = {k: v for k, v in LIMIT.items() if k != "timeInForce"}
        response = server.signed("POST", "/fapi/v1/order", mallory, {**params, **force})
        assert binance_refusal(response) == -1102
        assert "'timeInForce'" in response.json()["msg"]
    assert server.state_hash() == before
    assert server.signed("POST", "/fapi/v1/order", mallory, LIMIT).json()["status"] == "NEW"
