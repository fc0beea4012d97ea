"""What one request may cost: bodies are refused while read (413), risk requests are bounded in
size (422) and in flight per key (429 with Retry-After), and hammering the calculators and the
body limit does not starve the orders of other clients."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from crossmargin.core.venues import venue
from crossmargin.service.compute import MAX_BRACKETS, MAX_PORTFOLIOS, MAX_POSITIONS
from crossmargin.service.errors import TooManyRequests
from crossmargin.service.limits import DEFAULT_BODY_LIMIT, RISK_BODY_LIMIT, WorkGate
from tests.service.conftest import World
from tests.service.server import Running, serve

MEGABYTE = 1024 * 1024


def raw_request(server: Running, head: str, body_chunks: list[bytes]) -> bytes:
    """Send a request by hand (a body the client never finishes); the server's answer."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as connection:
        connection.sendall(head.encode("ascii"))
        for chunk in body_chunks:
            try:
                connection.sendall(chunk)
            except OSError:  # the server answered and closed: it read no further
                break
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = connection.recv(65536)
            if not data:
                break
            answer += data
        return answer


def headers(server: Running, path: str, key: str, extra: str) -> str:
    host = urlsplit(server.url).netloc
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\n{extra}\r\n"
    )


def test_a_declared_oversized_body_is_refused_before_it_is_sent(world: World) -> None:
    head = headers(world.server, "/v1/risk", world.alice, f"Content-Length: {10 * MEGABYTE}\r\n")
    answer = raw_request(world.server, head, [b"[" + b" " * 1000])  # 10 MB promised, 1 kB sent
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"connection: close" in answer.lower()


def test_a_chunked_body_is_refused_once_it_passes_the_limit(world: World) -> None:
    head = headers(
        world.server, "/v1/accounts/alice/deposits", world.alice, "Transfer-Encoding: chunked\r\n"
    )
    chunk = b" " * 4096
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    # just past the limit, and the terminating chunk never sent: the answer cannot wait for it
    count = DEFAULT_BODY_LIMIT // len(chunk) + 1
    answer = raw_request(world.server, head, [framed] * count)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"reason":"PAYLOAD_TOO_LARGE"' in answer
    assert b"connection: close" in answer.lower()  # the rest of the body is never read


def test_body_limits_are_per_route(world: World) -> None:
    padding = " " * (DEFAULT_BODY_LIMIT + 10)
    with world.server.client(world.alice) as alice:
        deposit = alice.post(
            "/v1/accounts/alice/deposits",
            content=('{"amount": "1"' + padding + "}").encode(),
            headers={"Content-Type": "application/json"},
        )
        risk = alice.post(
            "/v1/risk",
            content=(json.dumps(small_portfolio()) + padding).encode(),
            headers={"Content-Type": "application/json"},
        )
        too_big = alice.post(
            "/v1/risk",
            content=(json.dumps(small_portfolio()) + " " * RISK_BODY_LIMIT).encode(),
            headers={"Content-Type": "application/json"},
        )
    assert deposit.status_code == 413 and deposit.json()["field"] == "body"
    assert risk.status_code == 200, risk.text
    assert too_big.status_code == 413


def small_portfolio() -> dict[str, Any]:
    return {
        "wallet_balance": "1000",
        "positions": [
            {
                "symbol": "ETHUSDT",
                "side": "long",
                "quantity": "1",
                "entry_price": "2000",
                "leverage": "10",
                "margin_mode": "cross",
            }
        ],
    }


def largest_portfolio() -> dict[str, Any]:
    """MAX_POSITIONS cross positions in hedge mode: both sides of as many symbols."""
    rules = venue("binance-usdm")
    symbols = [s for s in rules.symbols() if rules.instrument(s).settle_asset == "USDT"]
    positions = [
        {
            "symbol": symbols[index // 2],
            "side": "long" if index % 2 == 0 else "short",
            "quantity": "3.7",
            "entry_price": "101.3",
            "leverage": "2",
            "margin_mode": "cross",
        }
        for index in range(MAX_POSITIONS)
    ]
    marks = {p["symbol"]: "97.1" for p in positions}
    return {
        "wallet_balance": "100000",
        "position_mode": "hedge",
        "positions": positions,
        "mark_prices": marks,
    }


def test_risk_requests_are_bounded_in_size(world: World) -> None:
    many_positions = largest_portfolio()
    many_positions["positions"] = many_positions["positions"] * 2
    brackets = [
        {"notional_floor": str(1000 * i), "notional_cap": str(1000 * (i + 1)), "max_leverage": 5}
        for i in range(MAX_BRACKETS + 1)
    ]
    many_brackets = {**small_portfolio(), "instruments": {"ETHUSDT": {"brackets": brackets}}}
    with world.server.client(world.bob) as bob:
        largest = bob.post("/v1/risk", json=[largest_portfolio()] * MAX_PORTFOLIOS)
        portfolios = bob.post("/v1/risk", json=[small_portfolio()] * (MAX_PORTFOLIOS + 1))
        positions = bob.post("/v1/risk", json=[small_portfolio(), many_positions])
        scenario = bob.post(
            "/v1/scenario", json={"portfolio": many_positions, "shocks": ["ETHUSDT=-1%"]}
        )
        bracketed = bob.post("/v1/risk", json=many_brackets)
    assert largest.status_code == 200 and len(largest.json()) == MAX_PORTFOLIOS
    assert portfolios.status_code == 422 and portfolios.json()["field"] == "body"
    assert positions.status_code == 422 and positions.json()["field"] == "[1].positions"
    assert scenario.status_code == 422 and scenario.json()["field"] == "portfolio.positions"
    assert bracketed.status_code == 422
    assert bracketed.json()["field"] == "instruments.ETHUSDT.brackets"


def test_a_key_with_a_calculation_in_flight_is_told_to_retry(world: World) -> None:
    server = world.server
    gate = server.context.gate
    slot = gate.slot("account:bob")
    server.on_server(slot.__aenter__())  # bob's calculation is running
    try:
        with server.client(world.bob) as bob:
            busy = bob.post("/v1/risk", json=small_portfolio())
            busy_scenario = bob.post("/v1/accounts/bob/scenario", json={"shocks": ["ETHUSDT=-5%"]})
        with server.client(world.alice) as alice:
            other_key = alice.post("/v1/risk", json=small_portfolio())
    finally:
        server.on_server(slot.__aexit__(None, None, None))
    with server.client(world.bob) as bob:
        after = bob.post("/v1/risk", json=small_portfolio())
    for response in (busy, busy_scenario):
        assert response.status_code == 429, response.text
        assert int(response.headers["Retry-After"]) >= 1
        assert response.json()["reason"] == "TOO_MANY_REQUESTS"
    assert other_key.status_code == 200 and after.status_code == 200


# -- orders keep flowing under attack ------------------------------------------------------------

ATTACKERS = 4
ROUNDS = 5
PHASE_SECONDS = 1.5
SETTLE_SECONDS = 1.5  # refusals are answered after 1 s: let the last ones land between phases


@pytest.fixture(scope="module")
def trading(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, str, list[str]]]:
    with serve(str(tmp_path_factory.mktemp("load") / "log.db")) as server:
        trader = server.open_account("trader", "1000000")
        attackers = [server.open_account(f"attacker-{i}", "10") for i in range(ATTACKERS)]
        server.post_marks(ETHUSDT="2000", BTCUSDT="40000")
        yield server, trader, attackers


def orders_placed(client: httpx.Client, seconds: float, prefix: str) -> int:
    """Market orders one after another for ``seconds``; how many were served."""
    placed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        order = {
            "order_id": f"{prefix}-{placed}",
            "symbol": "BTCUSDT",
            "side": "buy" if placed % 2 == 0 else "sell",
            "order_type": "market",
            "quantity": "0.01",
        }
        response = client.post("/v1/accounts/trader/orders", json=order)
        assert response.status_code == 200, response.text
        placed += 1
    return placed


def attack(url: str, key: str, hammer: Any, stop: Any, results: Any) -> None:
    """One hostile client (in its own process, as it would be on its own machine): the largest
    risk request allowed and a 10 MB body, as fast as the server answers, while ``hammer`` is set;
    it never backs off."""
    largest = json.dumps([largest_portfolio()] * MAX_PORTFOLIOS).encode()
    oversized = b'{"amount": "1", "pad": "' + b"x" * (10 * MEGABYTE) + b'"}'
    content = {"Content-Type": "application/json"}
    seen: dict[int, int] = {}
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=auth, timeout=60) as client:
        results.put("ready")
        sent = 0
        while not stop.is_set():
            if not hammer.is_set():
                time.sleep(0.02)
                continue
            sent += 1
            try:
                if sent % 4 == 0:
                    response = client.post("/v1/risk", content=oversized, headers=content)
                else:
                    response = client.post("/v1/risk", content=largest, headers=content)
                status = response.status_code
            except httpx.TransportError:  # refused mid-upload: the server closed the connection
                status = 413
            seen[status] = seen.get(status, 0) + 1
    results.put(seen)


def test_orders_keep_flowing_while_risk_and_oversized_bodies_hammer_the_server(
    trading: tuple[Running, str, list[str]],
) -> None:
    server, trader, attackers = trading
    spawn = multiprocessing.get_context("spawn")
    hammer, stop, results = spawn.Event(), spawn.Event(), spawn.Queue()
    processes = [
        spawn.Process(target=attack, args=(server.url, key, hammer, stop, results), daemon=True)
        for key in [*attackers, *attackers]  # two clients per key: the gate sees both
    ]
    for process in processes:
        process.start()
    quiet = loud = 0
    seen: dict[int, int] = {}
    try:
        for _ in processes:
            assert results.get(timeout=120) == "ready"
        with server.client(trader) as client:
            orders_placed(client, PHASE_SECONDS, "warm-up")
            # quiet and loud phases alternate, so load from outside the test falls on both
            for round_number in range(ROUNDS):
                quiet += orders_placed(client, PHASE_SECONDS, f"quiet-{round_number}")
                hammer.set()
                loud += orders_placed(client, PHASE_SECONDS, f"loud-{round_number}")
                hammer.clear()
                time.sleep(SETTLE_SECONDS)
    finally:
        stop.set()
        for _ in processes:
            report = results.get(timeout=120)
            for status, count in report.items():
                seen[status] = seen.get(status, 0) + count
        for process in processes:
            process.join(timeout=60)
    assert seen.get(200, 0) > 0, seen  # the attack really ran the calculators
    assert seen.get(413, 0) > 0, seen
    assert set(seen) <= {200, 413, 429}, seen
    # a generous floor: the old server (calculations on a thread of the server process, no
    # limits, oversized bodies read whole) served several times fewer orders under this attack
    print("orders served: quiet", quiet, "loud", loud, "attack answers", seen)
    assert loud >= quiet / 5, (loud, quiet, seen)


def test_a_request_waiting_for_its_keys_slot_runs_when_the_slot_frees() -> None:
    async def run() -> list[str]:
        gate = WorkGate(per_key=1, total=4, retry_after_seconds=5)
        order: list[str] = []

        async def job(name: str, hold: float) -> None:
            async with gate.slot("account:alice"):
                order.append(f"{name} in")
                await asyncio.sleep(hold)
                order.append(f"{name} out")

        await asyncio.gather(job("first", 0.2), job("second", 0))
        return order

    assert asyncio.run(run()) == ["first in", "first out", "second in", "second out"]


def test_a_request_that_finds_no_slot_in_time_is_refused() -> None:
    async def run() -> tuple[bool, int]:
        gate = WorkGate(per_key=2, total=2, retry_after_seconds=1)
        async with gate.slot("a"), gate.slot("b"):
            try:
                async with gate.slot("c"):
                    return True, 0
            except TooManyRequests as refused:
                return False, refused.retry_after_seconds

    assert asyncio.run(run()) == (False, 1)
