"""The service under load on loopback: order placement and risk queries over HTTP (requests per
second, p50/p99 latency) with the SQLite log and with PostgreSQL, and WebSocket fan-out of one
price tick to many subscribers (time until the last one has it).

The server runs as a separate process (``crossmargin serve``, one uvicorn worker); the clients
run here on asyncio (httpx, websockets). Both share this machine's cores, so the numbers are a
floor for the server, not its capacity; the server's own CPU time per request (from
``/proc``, Linux) is the figure that does not depend on what else runs. The load is bounded: ``SERVICE_BENCH_REQUESTS`` requests
per phase (default 2000) from ``SERVICE_BENCH_CONCURRENCY`` clients (default 32);
``SERVICE_BENCH_SUBSCRIBERS`` WebSockets (default 1000) for ``SERVICE_BENCH_TICKS`` ticks
(default 5). PostgreSQL runs when ``CROSSMARGIN_BENCH_POSTGRES_URL`` (or
``CROSSMARGIN_TEST_POSTGRES_URL``) names a server, in a temporary schema dropped afterwards.

Run: ``python -m bench service`` (``make bench`` runs every benchmark).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import websockets

POSTGRES_URL_ENVS = ("CROSSMARGIN_BENCH_POSTGRES_URL", "CROSSMARGIN_TEST_POSTGRES_URL")
OPERATOR_KEY = "bench-operator-key-0123456789"
ACCOUNTS = 64
SYMBOLS = "BTCUSDT,ETHUSDT"


def _setting(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


SERVER_PID: list[int] = []  # the running server's process id, for its CPU time


def server_cpu_seconds() -> float | None:
    """CPU time (user + system) the server process has used; None off Linux."""
    if not SERVER_PID:
        return None
    try:
        fields = Path(f"/proc/{SERVER_PID[-1]}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(database: str, schema: str | None, folder: Path) -> Iterator[str]:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "crossmargin.cli.main",
        "serve",
        "--port",
        str(port),
        "--database",
        database,
        "--var",
        str(folder),
        "--symbols",
        SYMBOLS,
    ]
    if schema:
        command += ["--schema", schema]
    env = {**os.environ, "CROSSMARGIN_OPERATOR_KEY": OPERATOR_KEY}
    log = (folder / "server.log").open("wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError((folder / "server.log").read_text())
            try:
                httpx.get(url + "/openapi.json", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        SERVER_PID.append(process.pid)
        yield url
    finally:
        SERVER_PID.clear()
        process.terminate()
        process.wait(timeout=30)
        log.close()
        if process.returncode not in (0, -15):
            print((folder / "server.log").read_text()[-3000:], file=sys.stderr)


def _headers(key: str = OPERATOR_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _setup(client: httpx.AsyncClient) -> list[str]:
    await client.post("/v1/marks", json={"prices": {"BTCUSDT": "40000", "ETHUSDT": "2000"}})
    accounts = [f"trader{i}" for i in range(ACCOUNTS)]
    for account in accounts:
        (await client.post("/v1/accounts", json={"account": account})).raise_for_status()
        await client.post(f"/v1/accounts/{account}/deposits", json={"amount": "1000000"})
    return accounts


async def _load(
    total: int, concurrency: int, request: Callable[[int], Awaitable[httpx.Response]]
) -> dict[str, float]:
    latencies: list[float] = []
    failures = retries = 0
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal failures, retries
        for index in counter:
            started = time.perf_counter()
            try:
                response = await request(index)
            except (httpx.ReadError, httpx.RemoteProtocolError):
                # a keep-alive connection the server closed as it was reused; every request
                # here is safe to repeat (orders carry a command id)
                retries += 1
                response = await request(index)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                failures += 1

    cpu_before = server_cpu_seconds()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    cpu_after = server_cpu_seconds()
    latencies.sort()
    cpu_ms = (
        float("nan")
        if cpu_before is None or cpu_after is None
        else 1000 * (cpu_after - cpu_before) / total
    )
    return {
        "server_cpu_ms": cpu_ms,
        "requests": total,
        "failed": failures,
        "retried": retries,
        "rps": total / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


async def http_phases(url: str) -> dict[str, dict[str, float]]:
    total = _setting("SERVICE_BENCH_REQUESTS", 2000)
    concurrency = _setting("SERVICE_BENCH_CONCURRENCY", 32)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=url, headers=_headers(), limits=limits, timeout=60
    ) as client:
        accounts = await _setup(client)

        def place(index: int) -> Awaitable[httpx.Response]:
            account = accounts[index % len(accounts)]
            return client.post(
                f"/v1/accounts/{account}/orders",
                json={
                    "command_id": f"bench-order-{index}",
                    "order_id": f"o{index}",
                    "symbol": "BTCUSDT",
                    "side": "buy" if index % 2 == 0 else "sell",
                    "order_type": "market",
                    "quantity": "0.01",
                },
            )

        def query(index: int) -> Awaitable[httpx.Response]:
            return client.get(f"/v1/accounts/{accounts[index % len(accounts)]}/risk")

        return {
            "place order": await _load(total, concurrency, place),
            "risk query": await _load(total, concurrency, query),
        }


async def fan_out(url: str) -> dict[str, float]:
    subscribers = _setting("SERVICE_BENCH_SUBSCRIBERS", 1000)
    ticks = _setting("SERVICE_BENCH_TICKS", 5)
    ws_url = url.replace("http://", "ws://") + "/v1/ws/prices"
    sockets: list[Any] = []
    gate = asyncio.Semaphore(50)

    async def connect() -> None:
        async with gate:
            sock = await websockets.connect(ws_url, max_queue=None, open_timeout=60)
            await sock.send(json.dumps({"key": OPERATOR_KEY}))
            await sock.recv()  # ready
            await sock.recv()  # the snapshot of marks
            sockets.append(sock)

    started = time.perf_counter()
    await asyncio.gather(*(connect() for _ in range(subscribers)))
    connect_seconds = time.perf_counter() - started
    results: list[float] = []
    async with httpx.AsyncClient(base_url=url, headers=_headers(), timeout=60) as client:
        for tick in range(ticks):
            price = str(40000 + tick + 1)

            async def receive(sock: Any, price: str = price) -> float:
                while True:
                    message = json.loads(await sock.recv())
                    if message.get("type") == "price" and message["price"] == price:
                        return time.perf_counter()

            waiting = [asyncio.create_task(receive(sock)) for sock in sockets]
            await asyncio.sleep(0)
            posted = time.perf_counter()
            response = await client.post("/v1/marks", json={"prices": {"BTCUSDT": price}})
            response.raise_for_status()
            arrivals = await asyncio.gather(*waiting)
            results.append(max(arrivals) - posted)
    await asyncio.gather(*(sock.close() for sock in sockets))
    return {
        "subscribers": subscribers,
        "connect_s": connect_seconds,
        "last_received_median_ms": 1000 * statistics.median(results),
        "last_received_max_ms": 1000 * max(results),
    }


def _print_http(store: str, phases: dict[str, dict[str, float]]) -> None:
    for name, row in phases.items():
        print(
            f"  {store:<10} {name:<12} {row['requests']:>6.0f} req  {row['rps']:>8.1f} req/s  "
            f"p50 {row['p50_ms']:>7.2f} ms  p99 {row['p99_ms']:>7.2f} ms  "
            f"server CPU {row['server_cpu_ms']:>5.2f} ms/req  non-200 {row['failed']:.0f}  retried {row['retried']:.0f}",
            flush=True,
        )


def _postgres() -> str | None:
    for name in POSTGRES_URL_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _drop_schema(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


def main() -> None:
    print("HTTP on loopback (server: 1 uvicorn process; clients: this process)", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        with server(str(path / "bench.db"), None, path) as url:
            _print_http("sqlite", asyncio.run(http_phases(url)))
            fan = asyncio.run(fan_out(url))
        postgres = _postgres()
        if postgres is None:
            print("  postgresql skipped: set CROSSMARGIN_BENCH_POSTGRES_URL", flush=True)
        else:
            schema = f"cm_bench_{uuid.uuid4().hex[:12]}"
            try:
                with server(postgres, schema, path) as url:
                    _print_http("postgresql", asyncio.run(http_phases(url)))
            finally:
                _drop_schema(postgres, schema)
    print(
        f"WebSocket fan-out: {fan['subscribers']:.0f} price subscribers (connected in "
        f"{fan['connect_s']:.1f} s); one tick, post to the last receipt: median "
        f"{fan['last_received_median_ms']:.1f} ms, max {fan['last_received_max_ms']:.1f} ms",
        flush=True,
    )


if __name__ == "__main__":
    main()
