"""A lean HTTP/1.1 load generator, run as its own process: ``python -m bench.loadgen SPEC.json``.

Why not httpx in the bench process: a Python HTTP client spends milliseconds of CPU per request
(httpx about 6.5 ms here), so on a small machine the client, not the server, set the rate the
service benchmark reported. This generator writes pre-built request bytes on raw keep-alive
connections and reads the responses with the least parsing HTTP/1.1 allows (status line,
``Content-Length``, body), so it costs tens of microseconds of CPU per request; it reports its own
CPU per request, so a reader can check it was not the bottleneck.

The SPEC (JSON) names ``host``, ``port``, ``requests``, ``concurrency`` (connections),
``warmup`` (requests sent first and not measured), and ``requests_template``: a list of
``[method, path, body]`` with ``{i}`` in path or body replaced by the request's index; request
``i`` uses template ``i % len(templates)``. ``headers`` are added to every request. With
``handshake`` it prints ``{"ready": true}`` after the warmup and waits for a line on stdin before
the measured requests. Output: one JSON object on stdout: counts, elapsed seconds, requests/s,
latency percentiles (ms), non-2xx count, reconnects, and this process's CPU seconds.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Template:
    method: str
    path: str
    body: str


def build_request(template: Template, index: int, host: str, headers: dict[str, str]) -> bytes:
    path = template.path.replace("{i}", str(index))
    body = template.body.replace("{i}", str(index)).encode()
    lines = [f"{template.method} {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class ServerClosed(Exception):
    """The server closed the keep-alive connection (between requests: safe to reconnect)."""


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status code and whether the server will close the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            raise ServerClosed from None
        raise
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = 0
    closing = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"connection" and value.strip().lower() == b"close":
            closing = True
        elif key == b"transfer-encoding":
            raise RuntimeError("chunked responses are not supported by this generator")
    if length:
        await reader.readexactly(length)
    return status, closing


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], int(spec["port"])
    total, concurrency = int(spec["requests"]), int(spec["concurrency"])
    warmup = int(spec.get("warmup", 0))
    headers = dict(spec.get("headers", {}))
    templates = [Template(*item) for item in spec["requests_template"]]
    authority = f"{host}:{port}"
    latencies: list[int] = []
    counts = {"non_2xx": 0, "reconnects": 0}

    async def connection(indexes: list[int], measure: bool) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for index in indexes:
                request = build_request(
                    templates[index % len(templates)], index, authority, headers
                )
                started = time.perf_counter_ns()
                while True:
                    writer.write(request)
                    try:
                        status, closing = await read_response(reader)
                        break
                    except (ServerClosed, ConnectionResetError):
                        # a keep-alive connection the server closed before this request: every
                        # request here is safe to repeat (orders carry a command id)
                        counts["reconnects"] += 1
                        writer.close()
                        reader, writer = await asyncio.open_connection(host, port)
                if measure:
                    latencies.append(time.perf_counter_ns() - started)
                    if not 200 <= status < 300:
                        counts["non_2xx"] += 1
                if closing:
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
        finally:
            writer.close()

    async def phase(first: int, count: int, measure: bool) -> float:
        shares: list[list[int]] = [[] for _ in range(min(concurrency, max(count, 1)))]
        for offset in range(count):
            shares[offset % len(shares)].append(first + offset)
        started = time.perf_counter()
        await asyncio.gather(*(connection(share, measure) for share in shares if share))
        return time.perf_counter() - started

    if warmup:
        await phase(total, warmup, measure=False)  # indexes after the measured ones: unique ids
    if spec.get("handshake"):
        # let the caller read the server's CPU time right before the measured requests
        print(json.dumps({"ready": True}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    cpu_before = _cpu_seconds()
    elapsed = await phase(0, total, measure=True)
    cpu = _cpu_seconds() - cpu_before
    latencies.sort()
    return {
        "requests": total,
        "concurrency": concurrency,
        "elapsed_s": elapsed,
        "rps": total / elapsed,
        "p50_ms": _percentile(latencies, 0.50),
        "p90_ms": _percentile(latencies, 0.90),
        "p99_ms": _percentile(latencies, 0.99),
        "max_ms": latencies[-1] / 1e6 if latencies else float("nan"),
        "non_2xx": counts["non_2xx"],
        "reconnects": counts["reconnects"],
        "client_cpu_s": cpu,
    }


def _percentile(sorted_ns: list[int], fraction: float) -> float:
    if not sorted_ns:
        return float("nan")
    return sorted_ns[min(len(sorted_ns) - 1, int(len(sorted_ns) * fraction))] / 1e6


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit("usage: python -m bench.loadgen SPEC.json")
    with open(argv[0], encoding="utf-8") as handle:
        spec = json.load(handle)
    print(json.dumps(asyncio.run(run(spec))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
