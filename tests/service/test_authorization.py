"""Every route refuses a missing key (401) and a key of another account (403); no leaks.

The route list comes from the app's own OpenAPI document, so a route added later without the
right dependency fails here rather than slipping through.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from tests.service.conftest import World
from tests.service.server import Running

OPERATOR_ONLY = {
    ("GET", "/v1/engine"),
    ("GET", "/v1/accounts"),
    ("POST", "/v1/accounts"),
    ("POST", "/v1/accounts/{account}/keys"),
    ("DELETE", "/v1/accounts/{account}/keys"),
    ("POST", "/v1/marks"),
    ("POST", "/v1/funding"),
    ("POST", "/v1/insurance-fund"),
    ("POST", "/v1/fills"),
}
ANY_KEY = {
    ("GET", "/v1/me"),
    ("GET", "/v1/marks"),
    ("GET", "/v1/marks/{symbol}/history"),
    ("POST", "/v1/risk"),
    ("POST", "/v1/scenario"),
}


def routes(server: Running) -> list[tuple[str, str]]:
    with server.client() as client:
        document = client.get("/openapi.json").json()
    found = [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    ]
    assert len(found) >= 20
    return sorted(found)


def concrete(path: str, account: str = "alice") -> str:
    return (
        path.replace("{account}", account)
        .replace("{order_id}", "a1")
        .replace("{symbol}", "ETHUSDT")
    )


def call(client: httpx.Client, method: str, path: str) -> httpx.Response:
    body: Any = {} if method in ("POST", "PUT") else None
    return client.request(method, path, json=body)


def test_every_route_is_classified(world: World) -> None:
    account_routes = {r for r in routes(world.server) if r[1].startswith("/v1/accounts/{account}")}
    for route in routes(world.server):
        assert route in OPERATOR_ONLY | ANY_KEY or route in account_routes, route


def test_every_route_refuses_a_missing_key(world: World) -> None:
    with world.server.client(None) as anonymous:
        for method, path in routes(world.server):
            response = call(anonymous, method, concrete(path))
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers.get("www-authenticate") == "Bearer"


def test_every_route_refuses_an_unknown_key(world: World) -> None:
    with world.server.client("ak_not-a-key-at-all") as stranger:
        for method, path in routes(world.server):
            assert call(stranger, method, concrete(path)).status_code == 401, (method, path)


def test_account_routes_refuse_another_accounts_key(world: World) -> None:
    checked = 0
    with world.server.client(world.bob) as bob:
        for method, path in routes(world.server):
            if not path.startswith("/v1/accounts/{account}"):
                continue
            response = call(bob, method, concrete(path, "alice"))
            assert response.status_code == 403, (method, path, response.text)
            assert "alice" not in response.text.replace("/alice", "")
            checked += 1
    assert checked >= 10


def test_operator_routes_refuse_an_account_key(world: World) -> None:
    with world.server.client(world.alice) as alice:
        for method, path in sorted(OPERATOR_ONLY):
            response = call(alice, method, concrete(path, "alice"))
            assert response.status_code == 403, (method, path, response.text)


def test_refused_requests_change_nothing(world: World) -> None:
    before = world.server.state_hash()
    with world.server.client(world.bob) as bob:
        bob.post("/v1/accounts/alice/withdrawals", json={"amount": "100"})
        bob.post(
            "/v1/accounts/alice/orders",
            json={
                "order_id": "x",
                "symbol": "ETHUSDT",
                "side": "sell",
                "order_type": "market",
                "quantity": "2",
            },
        )
        bob.post("/v1/marks", json={"prices": {"ETHUSDT": "1"}})
    assert world.server.state_hash() == before


def test_own_account_routes_answer(world: World) -> None:
    with world.server.client(world.alice) as alice:
        assert alice.get("/v1/accounts/alice").status_code == 200
        assert alice.get("/v1/me").json() == {"operator": False, "account": "alice"}


def test_an_accounts_responses_never_mention_another_account(world: World) -> None:
    server = world.server
    with server.client() as operator:
        settled = operator.post("/v1/funding", json={"symbol": "ETHUSDT", "rate": "0.0001"})
        assert settled.status_code == 200, settled.text
    with server.client(world.alice) as alice:
        texts = [
            alice.get("/v1/accounts/alice").text,
            alice.get("/v1/accounts/alice/risk").text,
            alice.get("/v1/accounts/alice/events").text,
            alice.post("/v1/accounts/alice/scenario", json={"shocks": ["ETHUSDT=-10%"]}).text,
        ]
        events = alice.get("/v1/accounts/alice/events").json()["events"]
    assert any(item["event"]["type"] == "FundingSettled" for item in events)
    for text in texts:
        assert "bob" not in text


def _ws_messages(server: Running, path: str, key: str | None, count: int) -> tuple[list[Any], Any]:
    async def run() -> tuple[list[Any], Any]:
        received: list[Any] = []
        async with websockets.connect(server.ws_url + path) as socket:
            if key is not None:
                await socket.send(json.dumps({"key": key}))
            else:
                await socket.send(json.dumps({}))
            try:
                for _ in range(count):
                    received.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
            except websockets.ConnectionClosed as closed:
                return received, closed.rcvd.code if closed.rcvd else None
        return received, None

    return asyncio.run(run())


@pytest.mark.parametrize("path", ["/v1/ws/prices", "/v1/ws/accounts/alice"])
def test_websockets_refuse_a_missing_key(world: World, path: str) -> None:
    messages, code = _ws_messages(world.server, path, None, 1)
    assert messages == [] and code == 4401


def test_account_websocket_refuses_another_accounts_key(world: World) -> None:
    messages, code = _ws_messages(world.server, "/v1/ws/accounts/alice", world.bob, 1)
    assert messages == [] and code == 4403


def test_account_websocket_snapshot_holds_only_its_account(world: World) -> None:
    messages, code = _ws_messages(world.server, "/v1/ws/accounts/alice", world.alice, 3)
    assert code is None
    assert [m["type"] for m in messages] == ["ready", "account", "events"]
    assert messages[1]["view"]["account"] == "alice"
    assert "bob" not in json.dumps(messages)
