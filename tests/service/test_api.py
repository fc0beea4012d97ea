"""The HTTP API over a real server: commands, rejections, idempotency, queries, streams."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import websockets

from tests.helpers import risk, run_cli
from tests.service.conftest import World
from tests.service.server import Running

ORDER = {"symbol": "ETHUSDT", "side": "buy", "order_type": "market"}


def last_seq(server: Running) -> int:
    with server.client() as operator:
        return int(operator.get("/v1/engine").json()["last_seq"])


def test_opening_an_account_returns_a_key_that_works_only_for_it(world: World) -> None:
    key = world.server.open_account("carol", "500")
    with world.server.client(key) as carol:
        view = carol.get("/v1/accounts/carol").json()
        assert view["summary"]["wallet_balance"] == "500"
        assert carol.get("/v1/accounts/alice").status_code == 403


def test_opening_an_existing_account_is_a_conflict(world: World) -> None:
    with world.server.client() as operator:
        response = operator.post("/v1/accounts", json={"account": "alice"})
    assert response.status_code == 409
    assert response.json()["reason"] == "ACCOUNT_EXISTS"
    assert "key" not in response.json()


def test_a_malformed_field_is_named_and_nothing_is_logged(world: World) -> None:
    before = last_seq(world.server)
    with world.server.client(world.alice) as alice:
        side = alice.post(
            "/v1/accounts/alice/orders",
            json={**ORDER, "order_id": "bad", "side": "up", "quantity": "1"},
        )
        amount = alice.post("/v1/accounts/alice/deposits", json={"amount": "-3"})
        unknown = alice.post("/v1/accounts/alice/deposits", json={"amount": "3", "memo": "x"})
        routed = alice.post("/v1/accounts/alice/deposits", json={"amount": "3", "account": "bob"})
        bad_json = alice.post(
            "/v1/accounts/alice/deposits",
            content=b'{"amount": ',
            headers={"Content-Type": "application/json"},
        )
        nan = alice.post(
            "/v1/accounts/alice/deposits",
            content=b'{"amount": NaN}',
            headers={"Content-Type": "application/json"},
        )
        twice = alice.post(
            "/v1/accounts/alice/deposits",
            content=b'{"amount": "1", "amount": "2"}',
            headers={"Content-Type": "application/json"},
        )
    fields = [r.json().get("field") for r in (side, amount, unknown, routed, bad_json, nan, twice)]
    assert fields == ["side", "amount", "memo", "account", "body", "amount", "amount"]
    assert {r.status_code for r in (side, amount, unknown, routed, bad_json, nan, twice)} == {422}
    assert "side" in side.json()["message"]
    assert last_seq(world.server) == before


def test_a_business_rejection_is_409_with_the_engines_reason(world: World) -> None:
    with world.server.client(world.alice) as alice:
        response = alice.post(
            "/v1/accounts/alice/orders", json={**ORDER, "order_id": "huge", "quantity": "1000"}
        )
        cancel = alice.delete("/v1/accounts/alice/orders/no-such-order")
    assert response.status_code == 409
    assert response.json()["reason"] == "INSUFFICIENT_MARGIN"
    assert cancel.status_code == 404 and cancel.json()["reason"] == "UNKNOWN_ORDER"


def test_an_unknown_symbol_is_a_422_naming_the_symbol(world: World) -> None:
    with world.server.client(world.alice) as alice:
        response = alice.put(
            "/v1/accounts/alice/leverage", json={"symbol": "XYZUSDT", "leverage": "5"}
        )
    assert response.status_code == 422 and response.json()["field"] == "symbol"


def test_a_repeated_command_id_applies_once(world: World) -> None:
    key = world.server.open_account("dave", "100")
    with world.server.client(key) as dave:
        body = {"amount": "25", "command_id": "dave-deposit-1"}
        first = dave.post("/v1/accounts/dave/deposits", json=body)
        second = dave.post("/v1/accounts/dave/deposits", json=body)
        wallet = dave.get("/v1/accounts/dave").json()["summary"]["wallet_balance"]
    assert first.status_code == second.status_code == 200
    assert "duplicate" not in first.json() and second.json()["duplicate"] is True
    assert wallet == "125"


def test_unknown_account_is_404_for_the_operator(world: World) -> None:
    with world.server.client() as operator:
        assert operator.get("/v1/accounts/nobody").status_code == 404
        deposit = operator.post("/v1/accounts/nobody/deposits", json={"amount": "1"})
    assert deposit.status_code == 404 and deposit.json()["field"] == "account"


def test_marks_refuse_an_unknown_symbol_and_change_nothing(world: World) -> None:
    before = last_seq(world.server)
    with world.server.client() as operator:
        response = operator.post("/v1/marks", json={"prices": {"ETHUSDT": "1", "NOPE": "2"}})
    assert response.status_code == 422 and response.json()["field"] == "prices.NOPE"
    assert last_seq(world.server) == before


def test_account_risk_is_the_risk_contract_of_the_same_book(world: World) -> None:
    with world.server.client(world.alice) as alice:
        served = alice.get("/v1/accounts/alice/risk").json()
        marks = alice.get("/v1/marks").json()["marks"]
    portfolio = {
        "wallet_balance": served["wallet_balance"],
        "positions": [
            {
                "symbol": p["symbol"],
                "side": p["side"],
                "quantity": p["quantity"],
                "entry_price": p["entry_price"],
                "leverage": p["leverage"],
                "margin_mode": p["margin_mode"],
            }
            for p in served["positions"]
        ],
        "mark_prices": {"ETHUSDT": marks["ETHUSDT"]["price"]},
    }
    expected = json.loads(json.dumps(risk(portfolio), default=str))
    assert served["positions"] and served == expected


def test_stateless_risk_and_scenario_match_the_cli(world: World) -> None:
    portfolio = {
        "wallet_balance": "1000",
        "positions": [
            {
                "symbol": "ETHUSDT",
                "side": "long",
                "quantity": "2",
                "entry_price": "2000",
                "leverage": "10",
                "margin_mode": "isolated",
                "isolated_margin": "400",
            },
            {
                "symbol": "BTCUSDT",
                "side": "short",
                "quantity": "0.075",
                "entry_price": "40000",
                "leverage": "5",
                "margin_mode": "cross",
            },
        ],
    }
    with world.server.client(world.bob) as bob:
        served_risk = bob.post("/v1/risk", json=portfolio).json()
        served_list = bob.post("/v1/risk", json=[portfolio, portfolio]).json()
        served_scenario = bob.post(
            "/v1/scenario", json={"portfolio": portfolio, "shocks": ["ETHUSDT=-20%"]}
        ).json()
        bad = bob.post("/v1/risk", json=[portfolio, {**portfolio, "wallet_balance": "-1"}])
    code, out, _ = run_cli("scenario", "-", "--shock", "ETHUSDT=-20%", stdin=json.dumps(portfolio))
    assert code == 0
    assert served_risk == json.loads(json.dumps(risk(portfolio), default=str))
    assert served_list == [served_risk, served_risk]
    assert served_scenario == json.loads(out)
    assert bad.status_code == 422 and bad.json()["field"] == "[1].wallet_balance"


def test_account_scenario_names_a_bad_shock(world: World) -> None:
    with world.server.client(world.alice) as alice:
        good = alice.post("/v1/accounts/alice/scenario", json={"shocks": ["ETHUSDT=-50%"]})
        unheld = alice.post("/v1/accounts/alice/scenario", json={"shocks": ["BNBUSDT=-5%"]})
        garbled = alice.post("/v1/accounts/alice/scenario", json={"shocks": ["ETH down"]})
    assert good.status_code == 200
    shocked = good.json()["shocked"]["positions"][0]
    assert (
        Decimal(shocked["mark_price"])
        == Decimal(good.json()["current"]["positions"][0]["mark_price"]) / 2
    )
    assert unheld.status_code == 422 and unheld.json()["field"] == "shocks[0]"
    assert garbled.status_code == 422 and garbled.json()["field"] == "shocks[0]"


def test_a_falling_mark_liquidates_and_the_events_say_so(world: World) -> None:
    server = world.server
    key = server.open_account("erin", "100")
    server.post_marks(BNBUSDT="500")
    with server.client(key) as erin:
        erin.put("/v1/accounts/erin/leverage", json={"symbol": "BNBUSDT", "leverage": "20"})
        placed = erin.post(
            "/v1/accounts/erin/orders",
            json={
                "order_id": "e1",
                "symbol": "BNBUSDT",
                "side": "buy",
                "order_type": "market",
                "quantity": "3",
            },
        )
        assert placed.status_code == 200, placed.text
        liquidation_price = Decimal(
            erin.get("/v1/accounts/erin").json()["report"]["positions"][0]["liquidation_price"]
        )
        server.post_marks(BNBUSDT=str(liquidation_price + Decimal("0.2")))
        warned = erin.get("/v1/accounts/erin").json()
        server.post_marks(BNBUSDT=str(liquidation_price - Decimal("0.2")))
        after = erin.get("/v1/accounts/erin").json()
        events = [
            item["event"]["type"] for item in erin.get("/v1/accounts/erin/events").json()["events"]
        ]
    assert warned["summary"]["margin_calls"] == ["cross"]
    assert after["report"]["positions"] == []
    assert "MarginCallIssued" in events and "LiquidationTriggered" in events
    assert "PositionLiquidated" in events


def _stream(server: Running, path: str, key: str, post: dict[str, str], want: int) -> list[Any]:
    async def run() -> list[Any]:
        received: list[Any] = []
        async with websockets.connect(server.ws_url + path) as socket:
            await socket.send(json.dumps({"key": key}))
            while len(received) < 2:
                received.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
            await asyncio.to_thread(server.post_marks, **post)
            while len(received) < want:
                received.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
        return received

    return asyncio.run(run())


def test_the_price_stream_carries_a_posted_mark(world: World) -> None:
    messages = _stream(world.server, "/v1/ws/prices", world.bob, {"BTCUSDT": "41234.5"}, 3)
    assert messages[0] == {"type": "ready"} and messages[1]["type"] == "prices"
    assert messages[2]["type"] == "price"
    assert (messages[2]["symbol"], messages[2]["price"]) == ("BTCUSDT", "41234.5")


def test_the_account_stream_pushes_a_fresh_view_when_its_mark_moves(world: World) -> None:
    messages = _stream(world.server, "/v1/ws/accounts/alice", world.alice, {"ETHUSDT": "2100"}, 4)
    views = [m["view"] for m in messages if m["type"] == "account"]
    assert views[-1]["report"]["positions"][0]["mark_price"] == "2100"
    events = [m for m in messages if m["type"] == "event"]
    assert events == []  # a mark update is not an event of alice's


def test_mark_history_is_served_per_symbol(world: World) -> None:
    world.server.post_marks(ETHUSDT="2001")
    with world.server.client(world.alice) as alice:
        points = alice.get("/v1/marks/ETHUSDT/history").json()["points"]
        missing = alice.get("/v1/marks/NOPE/history")
    assert points[-1]["price"] == "2001"
    times = [p["time"] for p in points]
    assert times == sorted(set(times))
    assert missing.status_code == 404
