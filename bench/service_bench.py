"""The service under load on loopback: order placement and risk queries over HTTP (requests per
second, latency percentiles, the server's CPU time per request) with the SQLite log and with
PostgreSQL, and WebSocket fan-out of one price tick to many subscribers (time until the last one
has it).

Three processes: the server (``crossmargin serve``, one uvicorn worker), the load generator
(``python -m bench.loadgen``: raw keep-alive HTTP/1.1 connections, pre-built requests, tens of
microseconds of CPU per request) and this one, which starts both, sets the accounts up (httpx,
not measured), and reads the server's CPU time from ``/proc`` (Linux) over exactly the measured
requests. An earlier version drove the load with httpx from this process: at about 6.5 ms of
client CPU per request the client, not the server, set the rate it reported.

Every phase prints requests/s, p50/p90/p99/max latency, the server's CPU per request (the figure
that does not depend on what else runs), the load generator's CPU per request (to show it was not
the bottleneck) and the 1-minute load average before and at most during the phase. All three
processes share this machine's cores: on a small or busy machine the rates are a floor.

Knobs: ``SERVICE_BENCH_REQUESTS`` requests per phase (default 2000) after
``SERVICE_BENCH_WARMUP`` unmeasured ones (default 200), over ``SERVICE_BENCH_CONCURRENCY``
connections (default 32); ``SERVICE_BENCH_SUBSCRIBERS`` WebSockets (default 1000) for
``SERVICE_BENCH_TICKS`` ticks (default 5). When ``wrk`` is installed (Debian package ``wrk``) the
risk queries are also run through it for ``SERVICE_BENCH_WRK_SECONDS`` (default 5) as a check on
this generator. PostgreSQL runs when ``CROSSMARGIN_BENCH_POSTGRES_URL`` (or
``CROSSMARGIN_TEST_POSTGRES_URL``) names a server, in a temporary schema dropped afterwards.

Run: ``python -m bench service`` or ``make bench BENCH=service`` (``make bench`` runs every
benchmark).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import websockets

POSTGRES_URL_ENVS = ("CROSSMARGIN_BENCH_POSTGRES_URL", "CROSSMARGIN_TEST_POSTGRES_URL")
OPERATOR_KEY = "bench-operator-key-0123456789"
ACCOUNTS = 64
SYMBOLS = "BTCUSDT,ETHUSDT"
BENCH_ROOT = Path(__file__).resolve().parents[1]  # where ``python -m bench.loadgen`` resolves


def _setting(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


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
    command = [
        sys.executable,
        "-m",
        "crossmargin.cli.main",
        "serve",
        "--port",
        "0",  # a free port, chosen and printed by the server: no race with another program
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
    try:
        deadline = time.monotonic() + 60
        url = ""
        while True:
            if process.poll() is not None:
                raise RuntimeError((folder / "server.log").read_text())
            if not url:
                printed = re.search(
                    r" on (http://\S+?)/?$", (folder / "server.log").read_text(), re.M
                )
                url = printed.group(1) if printed else ""
            try:
                if not url:
                    raise httpx.ConnectError("the server has not printed its address yet")
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


def _setup(client: httpx.Client) -> list[str]:
    client.post("/v1/marks", json={"prices": {"BTCUSDT": "40000", "ETHUSDT": "2000"}})
    accounts = [f"trader{i}" for i in range(ACCOUNTS)]
    for account in accounts:
        client.post("/v1/accounts", json={"account": account}).raise_for_status()
        client.post(f"/v1/accounts/{account}/deposits", json={"amount": "1000000"})
    return accounts


class LoadAverage:
    """The 1-minute load average before a phase and the highest seen during it (sampled twice a
    second in a thread)."""

    def __init__(self) -> None:
        self.before = os.getloadavg()[0]
        self.highest = self.before
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.highest = max(self.highest, os.getloadavg()[0])

    def __enter__(self) -> LoadAverage:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.highest = max(self.highest, os.getloadavg()[0])


def generate_load(url: str, templates: list[list[str]], folder: Path) -> dict[str, float]:
    """One phase from the load generator process; the server's CPU time over its measured part."""
    parsed = urlsplit(url)
    spec = {
        "host": parsed.hostname,
        "port": parsed.port,
        "requests": _setting("SERVICE_BENCH_REQUESTS", 2000),
        "warmup": _setting("SERVICE_BENCH_WARMUP", 200),
        "concurrency": _setting("SERVICE_BENCH_CONCURRENCY", 32),
        "headers": _headers(),
        "requests_template": templates,
        "handshake": True,
    }
    spec_path = folder / "loadgen.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.loadgen", str(spec_path)],
        cwd=BENCH_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    ready = process.stdout.readline()
    if not ready.strip():
        process.wait(timeout=60)
        raise RuntimeError(f"the load generator exited with {process.returncode}")
    with LoadAverage() as load:
        cpu_before = server_cpu_seconds()
        process.stdin.write("go\n")
        process.stdin.flush()
        result: dict[str, float] = json.loads(process.stdout.readline())
        cpu_after = server_cpu_seconds()
    process.wait(timeout=60)
    requests = result["requests"]
    result["server_cpu_ms"] = (
        float("nan")
        if cpu_before is None or cpu_after is None
        else 1000 * (cpu_after - cpu_before) / requests
    )
    result["client_cpu_ms"] = 1000 * result["client_cpu_s"] / requests
    result["load_before"], result["load_highest"] = load.before, load.highest
    return result


def wrk_risk_queries(url: str, account: str) -> dict[str, float] | None:
    """The risk query through ``wrk`` (when installed): a check on our own generator."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    seconds = _setting("SERVICE_BENCH_WRK_SECONDS", 5)
    connections = _setting("SERVICE_BENCH_CONCURRENCY", 32)
    with LoadAverage() as load:
        cpu_before = server_cpu_seconds()
        done = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-H",
                f"Authorization: Bearer {OPERATOR_KEY}",
                f"{url}/v1/accounts/{account}/risk",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
        cpu_after = server_cpu_seconds()
    total = re.search(r"(\d+) requests in", done.stdout)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", done.stdout)
    if total is None or rate is None:
        raise RuntimeError(f"cannot read wrk's output:\n{done.stdout}")
    requests = int(total.group(1))
    percentiles = {
        f"p{name}_ms": _wrk_ms(value, unit)
        for name, value, unit in re.findall(
            r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)$", done.stdout, re.M
        )
    }
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", done.stdout)
    return {
        "requests": requests,
        "rps": float(rate.group(1)),
        **percentiles,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "server_cpu_ms": float("nan")
        if cpu_before is None or cpu_after is None
        else 1000 * (cpu_after - cpu_before) / requests,
        "load_before": load.before,
        "load_highest": load.highest,
    }


def _wrk_ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def http_phases(url: str, folder: Path) -> dict[str, dict[str, float]]:
    with httpx.Client(base_url=url, headers=_headers(), timeout=60) as client:
        accounts = _setup(client)
    order = (
        '{{"command_id": "bench-order-{{i}}", "order_id": "o{{i}}", "symbol": "BTCUSDT", '
        '"side": "{side}", "order_type": "market", "quantity": "0.01"}}'
    )
    # request i goes to account i % 64 and alternates buy and sell: 128 templates
    place = [
        ["POST", f"/v1/accounts/{accounts[i % len(accounts)]}/orders", order.format(side=side)]
        for i, side in enumerate(["buy", "sell"] * len(accounts))
    ]
    query = [["GET", f"/v1/accounts/{account}/risk", ""] for account in accounts]
    phases = {
        "place order": generate_load(url, place, folder),
        "risk query": generate_load(url, query, folder),
    }
    checked = wrk_risk_queries(url, accounts[0])
    if checked is not None:
        phases["risk (wrk)"] = checked
    return phases


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
        client = row.get("client_cpu_ms")
        print(
            f"  {store:<10} {name:<12} {row['requests']:>6.0f} req  {row['rps']:>8.1f} req/s  "
            f"p50 {row.get('p50_ms', float('nan')):>7.2f}  p90 {row.get('p90_ms', float('nan')):>7.2f}  "
            f"p99 {row.get('p99_ms', float('nan')):>7.2f} ms  "
            f"server CPU {row['server_cpu_ms']:>5.2f} ms/req  "
            + (f"client CPU {client:>5.3f} ms/req  " if client is not None else "")
            + f"non-2xx {row['non_2xx']:.0f}  "
            f"load {row['load_before']:.2f} (max {row['load_highest']:.2f})",
            flush=True,
        )


def _uptime() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


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
    print(
        "HTTP on loopback (server: 1 uvicorn process; load: python -m bench.loadgen, another "
        f"process; {os.cpu_count()} cores, load average {_uptime()})",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        with server(str(path / "bench.db"), None, path) as url:
            _print_http("sqlite", http_phases(url, path))
            fan = asyncio.run(fan_out(url))
        postgres = _postgres()
        if postgres is None:
            print("  postgresql skipped: set CROSSMARGIN_BENCH_POSTGRES_URL", flush=True)
        else:
            schema = f"cm_bench_{uuid.uuid4().hex[:12]}"
            try:
                with server(postgres, schema, path) as url:
                    _print_http("postgresql", http_phases(url, path))
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
