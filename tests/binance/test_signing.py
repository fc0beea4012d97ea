"""Signed requests are checked the way Binance checks them; refusals change nothing.

Each refusal is compared with a request that differs only in the one thing refused, which is
accepted, so a test cannot pass by refusing everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from tests.binance.live import Server, now_ms, serve, sign

ORDER = {"symbol": "ETHUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    folder: Path = tmp_path_factory.mktemp("signing")
    with serve(folder, log_level="info") as server:
        server.marks(ETHUSDT="2000", BTCUSDT="40000")
        yield server, server.open_account("alice", "1000")


def refused(response: httpx.Response, code: int, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "msg"} and body["code"] == code, body
    return str(body["msg"])


def test_a_good_signature_passes_and_a_wrong_one_is_minus_1022(
    world: tuple[Server, dict[str, str]],
) -> None:
    server, alice = world
    assert server.signed("GET", "/fapi/v2/balance", alice).status_code == 200
    forged = {**alice, "secret": alice["secret"][::-1]}
    text = refused(server.signed("GET", "/fapi/v2/balance", forged), -1022)
    assert text == "Signature for this request is not valid."


def test_the_signature_covers_the_exact_form_body(world: tuple[Server, dict[str, str]]) -> None:
    server, alice = world
    before = server.state_hash()
    payload = urlencode({**ORDER, "timestamp": now_ms()})
    signature = sign(alice["secret"], payload)
    headers = {
        "X-MBX-APIKEY": alice["api_key"],
        "Content-Type": "application/x-www-form-urlencoded",
    }
    tampered = payload.replace("quantity=0.01", "quantity=0.02") + f"&signature={signature}"
    with httpx.Client(base_url=server.url) as client:
        refused(client.post("/fapi/v1/order", content=tampered, headers=headers), -1022)
        assert server.state_hash() == before
        # query string + body, concatenated, is what Binance signs
        query, body = payload.split("&quantity=")
        both = sign(alice["secret"], query + "&quantity=" + body)
        split = client.post(
            f"/fapi/v1/order?{query}",
            content=f"&quantity={body}&signature={both}",
            headers=headers,
        )
    assert split.status_code == 200, split.text
    assert split.json()["status"] == "FILLED"


def test_stale_and_future_timestamps_are_minus_1021(world: tuple[Server, dict[str, str]]) -> None:
    server, alice = world
    old = now_ms() - 10_000
    text = refused(server.signed("GET", "/fapi/v2/balance", alice, timestamp=old), -1021)
    assert "outside of the recvWindow" in text
    widened = server.signed("GET", "/fapi/v2/balance", alice, {"recvWindow": 20_000}, timestamp=old)
    assert widened.status_code == 200
    ahead = now_ms() + 5_000
    text = refused(server.signed("GET", "/fapi/v2/balance", alice, timestamp=ahead), -1021)
    assert "ahead of the server" in text
    refused(server.signed("GET", "/fapi/v2/balance", alice, {"recvWindow": 70_000}), -1131)


def test_missing_timestamp_or_signature_is_minus_1102(world: tuple[Server, dict[str, str]]) -> None:
    server, alice = world
    headers = {"X-MBX-APIKEY": alice["api_key"]}
    payload = urlencode({"recvWindow": 5000})
    with httpx.Client(base_url=server.url, headers=headers) as client:
        text = refused(
            client.get(f"/fapi/v2/balance?{payload}&signature={sign(alice['secret'], payload)}"),
            -1102,
        )
        assert "'timestamp'" in text
        text = refused(client.get(f"/fapi/v2/balance?timestamp={now_ms()}"), -1102)
        assert "'signature'" in text


def test_foreign_missing_and_revoked_keys_are_refused_like_binance(
    world: tuple[Server, dict[str, str]],
) -> None:
    server, alice = world
    before = server.state_hash()
    with httpx.Client(base_url=server.url) as client:
        refused(client.get("/fapi/v2/balance", params={"timestamp": now_ms()}), -2014, 401)
    foreign = {"api_key": "K" * 64, "secret": "s" * 64}
    assert refused(server.signed("GET", "/fapi/v2/balance", foreign), -2015, 401) == (
        "Invalid API-key, IP, or permissions for action."
    )
    bearer = {**alice, "api_key": "ak_" + "x" * 40}  # a crossmargin bearer key is no API key
    refused(server.signed("GET", "/fapi/v2/balance", bearer), -2014, 401)
    refused(server.signed("POST", "/fapi/v1/order", foreign, ORDER), -2015, 401)
    assert server.state_hash() == before

    bob = server.open_account("bob", "100")
    assert server.signed("GET", "/fapi/v2/balance", bob).status_code == 200
    with server.operator() as operator:
        fresh = operator.post("/v1/accounts/bob/exchange-keys").json()
    refused(server.signed("GET", "/fapi/v2/balance", bob), -2015, 401)
    assert server.signed("GET", "/fapi/v2/balance", fresh).status_code == 200
    # one account's key with another's secret signs nothing
    refused(server.signed("GET", "/fapi/v2/balance", fresh, secret=alice["secret"]), -1022)


def test_a_key_sees_only_its_own_account(world: tuple[Server, dict[str, str]]) -> None:
    server, alice = world
    carol = server.open_account("carol", "777")
    balances = {
        name: server.signed("GET", "/fapi/v2/balance", creds).json()[0]["balance"]
        for name, creds in (("carol", carol), ("alice", alice))
    }
    assert balances["carol"] == "777" and balances["alice"] != "777"


def test_only_the_operator_issues_exchange_keys(world: tuple[Server, dict[str, str]]) -> None:
    server, _ = world
    with server.operator() as operator:
        opened = operator.post("/v1/accounts", json={"account": "dave"}).json()
        assert operator.post("/v1/accounts/nobody/exchange-keys").status_code == 404
    own = httpx.post(
        f"{server.url}/v1/accounts/dave/exchange-keys",
        headers={"Authorization": f"Bearer {opened['key']}"},
    )
    assert own.status_code == 403
    assert httpx.post(f"{server.url}/v1/accounts/dave/exchange-keys").status_code == 401


def test_secrets_and_signatures_never_reach_the_log(world: tuple[Server, dict[str, str]]) -> None:
    server, alice = world
    response = server.signed("GET", "/fapi/v2/balance", alice)
    assert response.status_code == 200
    signature = str(response.request.url.params["signature"])
    log = (server.folder / "server.log").read_text()
    assert "/fapi/v2/balance" in log  # the access log is on (--log-level info) ...
    assert "signature=<redacted>" in log
    for secret in (signature, alice["secret"]):  # ... and holds neither
        assert secret not in log
    stored = "".join(p.read_text() for p in server.folder.glob("exchange-*"))
    assert alice["secret"] not in stored and alice["api_key"] not in stored
