"""A live service shared by a test module: fresh SQLite log, alice and bob with positions."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.service.server import Running, serve


@dataclass
class World:
    server: Running
    alice: str  # alice's key
    bob: str


def populate(server: Running) -> World:
    """alice long 2 ETH cross, bob short 1 ETH isolated at 10x; marks posted."""
    alice, bob = server.open_account("alice"), server.open_account("bob")
    server.post_marks(ETHUSDT="2000", BTCUSDT="40000")
    with server.client(alice) as client:
        client.post(
            "/v1/accounts/alice/orders",
            json={
                "order_id": "a1",
                "symbol": "ETHUSDT",
                "side": "buy",
                "order_type": "market",
                "quantity": "2",
            },
        ).raise_for_status()
    with server.client(bob) as client:
        client.put(
            "/v1/accounts/bob/margin-mode", json={"symbol": "ETHUSDT", "margin_mode": "isolated"}
        ).raise_for_status()
        client.put(
            "/v1/accounts/bob/leverage", json={"symbol": "ETHUSDT", "leverage": "10"}
        ).raise_for_status()
        client.post(
            "/v1/accounts/bob/orders",
            json={
                "order_id": "b1",
                "symbol": "ETHUSDT",
                "side": "sell",
                "order_type": "market",
                "quantity": "1",
            },
        ).raise_for_status()
    return World(server=server, alice=alice, bob=bob)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder: Path = tmp_path_factory.mktemp("service")
    with serve(str(folder / "log.db")) as server:
        yield populate(server)
