"""A real service on loopback for tests: uvicorn in a thread, a fresh SQLite log (or a URL)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import uvicorn

from crossmargin.service.app import SERVER_OPTIONS, Setup, create_app
from crossmargin.service.context import Feed, ServiceContext
from crossmargin.service.host import EngineSettings
from crossmargin.service.keys import KeyRing

OPERATOR_KEY = "operator-key-for-tests-0123456789"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
T = TypeVar("T")


@dataclass
class Running:
    url: str
    keys: KeyRing
    app: Any
    inside: dict[str, Any] = field(default_factory=dict)  # the server's loop and context

    @property
    def context(self) -> ServiceContext:
        context: ServiceContext = self.inside["context"]
        return context

    def on_server(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the server's event loop (as a feed or the demo would)."""
        loop: asyncio.AbstractEventLoop = self.inside["loop"]
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=60)

    def open_account(self, account: str, deposit: str = "10000") -> str:
        """Open ``account`` with a deposit; returns its key."""
        with self.client() as operator:
            opened = operator.post("/v1/accounts", json={"account": account})
            opened.raise_for_status()
            key: str = opened.json()["key"]
            operator.post(f"/v1/accounts/{account}/deposits", json={"amount": deposit})
        return key

    def post_marks(self, **prices: str) -> dict[str, Any]:
        with self.client() as operator:
            response = operator.post("/v1/marks", json={"prices": prices})
            response.raise_for_status()
            result: dict[str, Any] = response.json()
            return result

    def state_hash(self) -> str:
        with self.client() as operator:
            return str(operator.get("/v1/engine").json()["state_hash"])

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def client(self, key: str | None = OPERATOR_KEY) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@contextmanager
def serve(
    database: str,
    *,
    feed: Feed | None = None,
    setup: Setup | None = None,
    symbols: tuple[str, ...] = SYMBOLS,
    matching: str = "simulated",
    keys: KeyRing | None = None,
    schema: str | None = None,
) -> Iterator[Running]:
    ring = keys or KeyRing(None)
    ring.ensure_operator(OPERATOR_KEY)
    settings = EngineSettings(database=database, schema=schema, symbols=symbols, matching=matching)
    inside: dict[str, Any] = {}

    async def capture(context: ServiceContext) -> None:
        inside.update(loop=asyncio.get_running_loop(), context=context)
        if setup is not None:
            await setup(context)

    app = create_app(settings, ring, feed=feed, setup=capture)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **SERVER_OPTIONS)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Running(url=f"http://127.0.0.1:{port}", keys=ring, app=app, inside=inside)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
