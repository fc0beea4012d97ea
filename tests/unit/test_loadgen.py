"""The service benchmark's load generator (bench/loadgen.py) against a small HTTP/1.1 server:
every request is sent once, with its index filled in, over keep-alive connections that survive a
server closing them, and the non-2xx answers are counted."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from bench.loadgen import run


class Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    seen: ClassVar[list[tuple[str, str, str, str]]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length).decode() if length else ""
        with self.lock:
            self.seen.append((self.command, self.path, body, self.headers["Authorization"]))
            count = len(self.seen)
        index = int(self.path.rsplit("/", 1)[1])
        status = 404 if index % 5 == 0 else 200
        payload = b'{"ok": true}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        if count % 7 == 0:
            self.send_header("Connection", "close")  # the generator must reconnect
            self.close_connection = True
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def recording_server() -> Iterator[int]:
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def test_every_request_is_sent_once_and_every_non_2xx_is_counted() -> None:
    with recording_server() as port:
        result = asyncio.run(
            run(
                {
                    "host": "127.0.0.1",
                    "port": port,
                    "requests": 60,
                    "warmup": 5,
                    "concurrency": 4,
                    "headers": {"Authorization": "Bearer k"},
                    "requests_template": [
                        ["POST", "/orders/{i}", '{"command_id": "c{i}"}'],
                        ["GET", "/risk/{i}", ""],
                    ],
                }
            )
        )
    measured = [entry for entry in Recorder.seen if int(entry[1].rsplit("/", 1)[1]) < 60]
    assert sorted(int(path.rsplit("/", 1)[1]) for _, path, _, _ in measured) == list(range(60))
    assert len(Recorder.seen) == 65  # and the 5 warmup requests, indexes 60 to 64
    for method, path, body, key in Recorder.seen:
        index = path.rsplit("/", 1)[1]
        expected = ("POST", f"/orders/{index}", f'{{"command_id": "c{index}"}}')
        assert (method, path, body) == (
            expected if int(index) % 2 == 0 else ("GET", f"/risk/{index}", "")
        )
        assert key == "Bearer k"
    assert result["requests"] == 60
    assert result["non_2xx"] == 12  # indexes 0, 5, ..., 55
    assert result["p50_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["client_cpu_s"] >= 0
