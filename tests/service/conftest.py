"""A live service shared by a test module: fresh SQLite log, alice and bob with positions."""

from __future__ import annotations

import logging
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


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def errors_logged() -> Iterator[list[logging.LogRecord]]:
    """The ERROR records (tracebacks included) any thread logs during the test: the server runs
    in this process, so handlers on the loggers see uvicorn's and the service's."""
    handler = _Collect()
    # uvicorn's own loggers do not propagate to the root: listen to them as well
    loggers = [logging.getLogger(name) for name in ("", "uvicorn", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
