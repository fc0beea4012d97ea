"""Hostile input over HTTP: every refusal is a 4xx in the documented shape, naming the field, and
the server logs no error; ids follow the one id rule on every route and path parameter."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from crossmargin.service.app import create_app
from crossmargin.service.host import EngineSettings
from crossmargin.service.keys import KeyRing
from tests.service.conftest import World

HUGE = ["1e20", "100000000000000000000", "1E+20"]
MONEY_ROUTES = [
    ("POST", "/v1/accounts/alice/deposits", {}),
    ("POST", "/v1/accounts/alice/withdrawals", {}),
    ("POST", "/v1/accounts/alice/isolated-margin", {"symbol": "ETHUSDT", "action": "add"}),
    ("POST", "/v1/accounts/alice/isolated-margin", {"symbol": "ETHUSDT", "action": "remove"}),
    ("POST", "/v1/insurance-fund", {}),
]


def raw_body(client: httpx.Client, method: str, path: str, text: str) -> httpx.Response:
    return client.request(
        method, path, content=text.encode(), headers={"Content-Type": "application/json"}
    )


def assert_refusal(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) <= {"status", "reason", "message", "field"}, body
    assert body["status"] in ("rejected", "error") and body["reason"] and body["message"]
    if field is not None:
        assert body.get("field") == field, body


@pytest.mark.parametrize(("method", "path", "extra"), MONEY_ROUTES)
@pytest.mark.parametrize("value", HUGE)
def test_an_amount_of_1e20_is_a_named_422(
    world: World,
    method: str,
    path: str,
    extra: dict[str, Any],
    value: str,
    errors_logged: list[logging.LogRecord],
) -> None:
    before = world.server.state_hash()
    with world.server.client() as operator:
        as_string = operator.request(method, path, json={**extra, "amount": value})
        fields = "".join(f'"{k}": "{v}", ' for k, v in extra.items())
        as_number = raw_body(operator, method, path, "{" + fields + f'"amount": {value}' + "}")
    assert_refusal(as_string, 422, "amount")
    assert_refusal(as_number, 422, "amount")
    assert world.server.state_hash() == before
    assert errors_logged == []


@pytest.mark.parametrize("digits", [41, 4_301, 20_000])
def test_a_long_json_integer_is_a_named_422(
    world: World, digits: int, errors_logged: list[logging.LogRecord]
) -> None:
    text = '{"amount": ' + "9" * digits + "}"
    with world.server.client(world.alice) as alice:
        deposit = raw_body(alice, "POST", "/v1/accounts/alice/deposits", text)
        marks_body = '{"prices": {"ETHUSDT": ' + "7" * digits + "}}"
    with world.server.client() as operator:
        marks = raw_body(operator, "POST", "/v1/marks", marks_body)
    for response in (deposit, marks):
        status = 413 if len(text) > 16 * 1024 else 422
        assert_refusal(response, status, "body")
    assert errors_logged == []


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/v1/accounts/alice/nothing-here", 404),
        ("PUT", "/v1/marks", 405),
        ("DELETE", "/v1/me", 405),
        ("GET", "/v1/marks/ETHUSDT/history?limit=many", 422),
        ("GET", "/v1/accounts/alice/events?limit=0", 422),
    ],
)
def test_framework_refusals_have_the_documented_shape(
    world: World, method: str, path: str, status: int
) -> None:
    with world.server.client(world.alice) as alice:
        response = alice.request(method, path)
    assert_refusal(response, status)
    assert "detail" not in response.json()


def test_an_order_id_outside_the_id_rule_is_refused_on_every_route(
    world: World, errors_logged: list[logging.LogRecord]
) -> None:
    order = {"symbol": "ETHUSDT", "side": "buy", "order_type": "limit", "quantity": "0.01"}
    with world.server.client(world.alice) as alice:
        long_id = alice.post(
            "/v1/accounts/alice/orders", json={**order, "price": "900", "order_id": "x" * 10_000}
        )
        slash = alice.post(
            "/v1/accounts/alice/orders", json={**order, "price": "900", "order_id": "a/b"}
        )
        cancel_long = alice.delete("/v1/accounts/alice/orders/" + "y" * 65)
        cancel_symbol = alice.delete("/v1/accounts/alice/orders/bad$id")
        cancel_slash = alice.delete("/v1/accounts/alice/orders/a%2Fb")
        ok = alice.post(
            "/v1/accounts/alice/orders", json={**order, "price": "900", "order_id": "o" * 64}
        )
        cancelled = alice.delete("/v1/accounts/alice/orders/" + "o" * 64)
    assert_refusal(long_id, 422, "order_id")
    assert_refusal(slash, 422, "order_id")
    assert_refusal(cancel_long, 422, "order_id")
    assert_refusal(cancel_symbol, 422, "order_id")
    assert cancel_slash.status_code in (404, 422)
    assert_refusal(cancel_slash, cancel_slash.status_code)
    assert ok.status_code == 200 and cancelled.status_code == 200, (ok.text, cancelled.text)
    assert errors_logged == []


def test_a_marks_post_is_one_command_under_its_own_id(world: World) -> None:
    server = world.server
    with server.client() as operator:
        too_long = operator.post(
            "/v1/marks", json={"command_id": "m" * 65, "prices": {"ETHUSDT": "2000"}}
        )
        not_an_id = operator.post(
            "/v1/marks", json={"command_id": "tick/1", "prices": {"BTCUSDT": "40000"}}
        )
        fits = operator.post(
            "/v1/marks",
            json={"command_id": "m" * 64, "prices": {"ETHUSDT": "2000", "BTCUSDT": "40000"}},
        )
        again = operator.post(
            "/v1/marks",
            json={"command_id": "m" * 64, "prices": {"ETHUSDT": "1", "BTCUSDT": "1"}},
        )
    assert_refusal(too_long, 422, "command_id")
    assert_refusal(not_an_id, 422, "command_id")
    assert fits.status_code == 200 and fits.json()["status"] == "accepted", fits.text
    assert again.json()["duplicate"] is True  # the same tick, answered from the log
    host = server.context.host
    keys = server.on_server(host.read(lambda model: [e.command_id for e in model.entries(0)]))
    generated = [key.split("/", 1)[1] for key in keys if "m" * 64 in key]
    assert generated == ["m" * 64]  # both symbols in one logged command
    with server.client() as operator:
        marks = operator.get("/v1/marks").json()["marks"]
    assert (marks["ETHUSDT"]["price"], marks["BTCUSDT"]["price"]) == ("2000", "40000")


def test_every_documented_command_id_is_an_id() -> None:
    document = create_app(EngineSettings(database="unused.db"), KeyRing(None)).openapi()
    schemas = [
        operation["requestBody"]["content"]["application/json"]["schema"]
        for path in document["paths"].values()
        for operation in path.values()
        if "requestBody" in operation
    ]
    command_ids = [
        s["properties"]["command_id"] for s in schemas if "command_id" in s.get("properties", {})
    ]
    assert command_ids and all(c["maxLength"] == 64 and c["pattern"] for c in command_ids)
