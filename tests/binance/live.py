"""A real ``crossmargin serve`` process on loopback, its operator API and its Binance facade.

Used by the ccxt and freqtrade tests: the server is the CLI itself (a subprocess), so what is
tested is what a user runs. ``binance_urls`` points every ``urls.api`` entry a Binance ccxt
class has at the server (``/fapi/v1``, ``/fapi/v2``, ``/fapi/v3``, ``/api/v3``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

OPERATOR_KEY = "operator-key-for-binance-tests-0123"
CLI = Path(sys.executable).with_name("crossmargin")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def binance_urls(base: str) -> dict[str, str]:
    """Every API root of ccxt's Binance classes, on the local server."""
    roots = {
        "fapiPublic": "/fapi/v1",
        "fapiPublicV2": "/fapi/v2",
        "fapiPublicV3": "/fapi/v3",
        "fapiPrivate": "/fapi/v1",
        "fapiPrivateV2": "/fapi/v2",
        "fapiPrivateV3": "/fapi/v3",
        "fapiData": "/futures/data",
        "public": "/api/v3",
        "private": "/api/v3",
        "v1": "/api/v1",
        "sapi": "/sapi/v1",
        "sapiV2": "/sapi/v2",
        "sapiV3": "/sapi/v3",
        "sapiV4": "/sapi/v4",
        "dapiPublic": "/dapi/v1",
        "dapiPrivate": "/dapi/v1",
        "dapiPrivateV2": "/dapi/v2",
        "dapiData": "/futures/data",
        "eapiPublic": "/eapi/v1",
        "eapiPrivate": "/eapi/v1",
        "papi": "/papi/v1",
        "papiV2": "/papi/v2",
    }
    return {name: base + path for name, path in roots.items()}


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Server:
    url: str
    folder: Path
    process: subprocess.Popen[bytes]

    def operator(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {OPERATOR_KEY}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def open_account(self, account: str, deposit: str) -> dict[str, str]:
        """Open ``account`` with ``deposit``; its exchange credentials."""
        with self.operator() as op:
            op.post("/v1/accounts", json={"account": account}).raise_for_status()
            op.post(f"/v1/accounts/{account}/deposits", json={"amount": deposit}).raise_for_status()
            issued = op.post(f"/v1/accounts/{account}/exchange-keys")
            issued.raise_for_status()
            return dict(issued.json())

    def marks(self, **prices: str | Decimal) -> dict[str, Any]:
        with self.operator() as op:
            response = op.post("/v1/marks", json={"prices": {k: str(v) for k, v in prices.items()}})
            response.raise_for_status()
            return dict(response.json())

    def account(self, account: str) -> dict[str, Any]:
        with self.operator() as op:
            response = op.get(f"/v1/accounts/{account}")
            response.raise_for_status()
            return dict(response.json())

    def risk(self, account: str) -> dict[str, Any]:
        with self.operator() as op:
            response = op.get(f"/v1/accounts/{account}/risk")
            response.raise_for_status()
            return dict(response.json())

    def events(self, account: str) -> list[dict[str, Any]]:
        with self.operator() as op:
            response = op.get(f"/v1/accounts/{account}/events", params={"limit": 200})
            response.raise_for_status()
            return [item["event"] for item in response.json()["events"]]

    def signed(
        self,
        method: str,
        path: str,
        credentials: dict[str, str],
        params: dict[str, Any] | None = None,
        *,
        timestamp: int | None = None,
        in_body: bool | None = None,
        secret: str | None = None,
    ) -> httpx.Response:
        """A request signed as Binance wants it (parameters in the query, or in a form body)."""
        values = {**(params or {}), "timestamp": now_ms() if timestamp is None else timestamp}
        payload = urlencode(values)
        signature = sign(secret or credentials["secret"], payload)
        body = in_body if in_body is not None else method in ("POST", "PUT")
        headers = {"X-MBX-APIKEY": credentials["api_key"]}
        with httpx.Client(base_url=self.url, timeout=30) as client:
            if body:
                headers["Content-Type"] = "application/x-www-form-urlencoded"
                content = f"{payload}&signature={signature}"
                return client.request(method, path, content=content, headers=headers)
            return client.request(
                method, f"{path}?{payload}&signature={signature}", headers=headers
            )

    def state_hash(self) -> str:
        with self.operator() as op:
            return str(op.get("/v1/engine").json()["state_hash"])


@contextmanager
def serve(
    folder: Path, symbols: str = "BTCUSDT,ETHUSDT", log_level: str = "warning"
) -> Iterator[Server]:
    """``crossmargin serve`` on a free port with a fresh var folder; stopped on exit."""
    port = free_port()
    env = {**os.environ, "CROSSMARGIN_OPERATOR_KEY": OPERATOR_KEY}
    env.pop("CROSSMARGIN_DATABASE_URL", None)
    log = (folder / "server.log").open("ab")
    process = subprocess.Popen(
        [
            str(CLI),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--var",
            str(folder),
            "--symbols",
            symbols,
            "--log-level",
            log_level,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    server = Server(url=f"http://127.0.0.1:{port}", folder=folder, process=process)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError((folder / "server.log").read_text())
            try:
                with server.operator() as op:
                    if op.get("/v1/me").status_code == 200:
                        break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("crossmargin serve did not start within 60 s")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
