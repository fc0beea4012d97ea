"""WebSocket lifecycle: a replaced or revoked key closes its sockets (4410); a socket that does not
authenticate is closed (4401) at its first wrong frame or after the deadline; an account path that
is not an account closes cleanly (4404) with a short reason; no traceback in the server log."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote

import pytest
import websockets

from crossmargin.service.ws import (
    CLOSE_NOT_FOUND,
    CLOSE_REVOKED,
    CLOSE_UNAUTHENTICATED,
    MAX_CLOSE_REASON_BYTES,
)
from tests.service.conftest import World
from tests.service.server import OPERATOR_KEY, Running

GENEROUS_SECONDS = 10.0


async def _ready(server: Running, path: str, key: str) -> Any:
    socket = await websockets.connect(server.ws_url + path)
    await socket.send(json.dumps({"key": key}))
    first = json.loads(await asyncio.wait_for(socket.recv(), GENEROUS_SECONDS))
    assert first == {"type": "ready"}
    return socket


async def _closed_with(socket: Any, seconds: float = GENEROUS_SECONDS) -> tuple[int | None, str]:
    """Read until the server closes; its close code and reason (None if it never closed)."""
    try:
        async with asyncio.timeout(seconds):
            while True:
                await socket.recv()
    except websockets.ConnectionClosed as closed:
        frame = closed.rcvd
        return (frame.code, frame.reason) if frame else (None, "")
    except TimeoutError:
        await socket.close()
        return None, ""


def _rotate(server: Running, account: str, *, revoke: bool = False) -> Any:
    with server.client() as operator:
        path = f"/v1/accounts/{account}/keys"
        response = operator.delete(path) if revoke else operator.post(path)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("revoke", [False, True], ids=["new key", "revoked"])
def test_a_replaced_key_closes_its_sockets_and_others_stay_open(world: World, revoke: bool) -> None:
    server = world.server
    account = "rotor-revoked" if revoke else "rotor-new-key"
    old = server.open_account(account, "100")

    async def run() -> tuple[Any, ...]:
        own = await _ready(server, f"/v1/ws/accounts/{account}", old)
        prices = await _ready(server, "/v1/ws/prices", old)
        watcher = await _ready(server, f"/v1/ws/accounts/{account}", OPERATOR_KEY)
        await asyncio.to_thread(_rotate, server, account, revoke=revoke)
        own_closed, prices_closed = await asyncio.gather(_closed_with(own), _closed_with(prices))
        # the operator's socket on the same account still streams the account's events
        await asyncio.to_thread(_deposit, server, account)
        seen = []
        async with asyncio.timeout(GENEROUS_SECONDS):
            while not any(m.get("type") == "event" for m in seen):
                seen.append(json.loads(await watcher.recv()))
        await watcher.close()
        return own_closed, prices_closed

    own_closed, prices_closed = asyncio.run(run())
    assert own_closed[0] == CLOSE_REVOKED and prices_closed[0] == CLOSE_REVOKED
    with server.client(old) as stale:
        assert stale.get("/v1/me").status_code == 401


def _deposit(server: Running, account: str) -> None:
    with server.client() as operator:
        response = operator.post(f"/v1/accounts/{account}/deposits", json={"amount": "1"})
    assert response.status_code == 200, response.text


def test_a_silent_socket_is_closed_within_the_deadline(world: World) -> None:
    async def run() -> tuple[int | None, str]:
        socket = await websockets.connect(world.server.ws_url + "/v1/ws/prices")
        # the deadline is 2 s; the former one was 10 s: this waits 6
        return await _closed_with(socket, 6.0)

    code, _ = asyncio.run(run())
    assert code == CLOSE_UNAUTHENTICATED


@pytest.mark.parametrize(
    "first",
    [b'{"key": "x"}', b"\x00\xff", "not json", '{"key": 7}', "[]", '{"key": "' + "k" * 5000 + '"}'],
    ids=["binary json", "binary", "text", "number key", "list", "oversized"],
)
def test_a_wrong_first_frame_closes_at_once(world: World, first: str | bytes) -> None:
    async def run() -> tuple[int | None, str]:
        socket = await websockets.connect(world.server.ws_url + "/v1/ws/accounts/alice")
        await socket.send(first)
        return await _closed_with(socket, 1.5)  # well inside the deadline: refused on the frame

    code, _ = asyncio.run(run())
    assert code == CLOSE_UNAUTHENTICATED


@pytest.mark.parametrize(
    "path",
    ["a" * 65, "a" * 200, "é" * 100, "bad$name", "-leading-dash", "nobody"],
    ids=["65 chars", "200 chars", "long unicode", "symbol", "dash first", "unknown"],
)
def test_a_path_that_is_no_account_closes_with_a_short_reason(
    world: World, path: str, errors_logged: list[Any]
) -> None:
    async def run() -> tuple[int | None, str]:
        url = world.server.ws_url + "/v1/ws/accounts/" + quote(path)
        socket = await websockets.connect(url)
        await socket.send(json.dumps({"key": OPERATOR_KEY}))
        return await _closed_with(socket)

    code, reason = asyncio.run(run())
    assert code == CLOSE_NOT_FOUND
    assert len(reason.encode("utf-8")) <= MAX_CLOSE_REASON_BYTES
    assert errors_logged == []
