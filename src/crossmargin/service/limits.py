"""Limits on what one request may cost: body size (ASGI middleware) and expensive work in flight.

* :class:`BodyLimit` refuses a request body over its route's limit with 413 while it is read:
  at once when ``Content-Length`` declares too much, else as soon as the bytes received pass
  the limit, so an oversized body is never buffered whole. Limits are per path prefix
  (``BODY_LIMITS``); everything else gets ``DEFAULT_BODY_LIMIT``. Routes read their body
  through ``request.body()``, which this middleware feeds, so no route can bypass it.
* :class:`WorkGate` admits expensive work (the risk and scenario calculators) while the key has
  fewer than ``per_key`` requests of it in flight and the server fewer than ``total``; otherwise
  429 with ``Retry-After``. Admitted work runs in a separate process (``service.compute``), never
  on the engine thread or the event loop, so it cannot delay orders.
* Neither refusal is immediate: a request over the gate's limits waits up to ``Retry-After``
  for a slot, and a 413 is answered after ``REFUSAL_DELAY_SECONDS``. Refusing is cheap, but a
  client refused in a tight loop would still make the event loop answer it thousands of times a
  second, and orders share that loop; a waiting coroutine costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from crossmargin.service.compute import MAX_RISK_BODY_BYTES
from crossmargin.service.errors import PayloadTooLarge, TooManyRequests, error_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_BODY_LIMIT = 16 * 1024
RISK_BODY_LIMIT = MAX_RISK_BODY_BYTES
BODY_LIMITS: Mapping[str, int] = {"/v1/risk": RISK_BODY_LIMIT, "/v1/scenario": RISK_BODY_LIMIT}
REFUSAL_DELAY_SECONDS = 1.0


class _OverLimit(Exception):
    """Raised into the app by the body reader; caught by :class:`BodyLimit` alone (it is no
    ``CrossmarginError``, so no route-level handler answers it without the delay and the close)."""


def body_limit_for(path: str, limits: Mapping[str, int], default: int) -> int:
    for prefix, limit in limits.items():
        if path == prefix or path.startswith(prefix + "/"):
            return limit
    return default


class BodyLimit:
    """ASGI middleware: 413 for a body over the path's limit, decided while reading."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: Mapping[str, int] = BODY_LIMITS,
        default: int = DEFAULT_BODY_LIMIT,
        refusal_delay_seconds: float = REFUSAL_DELAY_SECONDS,
    ) -> None:
        self.app = app
        self.limits = dict(limits)
        self.default = default
        self.refusal_delay_seconds = refusal_delay_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(str(scope.get("path", "")), self.limits, self.default)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _OverLimit
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _OverLimit:
            if started:
                raise
            await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        # as for a 429: a client that sends oversized bodies in a loop gets one answer a second
        # per connection (the rest of its body is not read meanwhile, and the connection closes)
        await asyncio.sleep(self.refusal_delay_seconds)
        response = error_response(PayloadTooLarge(limit))
        response.headers["Connection"] = "close"
        await response(scope, _no_body, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _no_body() -> Message:
    return {"type": "http.disconnect"}


class WorkGate:
    """Counts expensive requests in flight, per key and in all.

    A request beyond the limits waits up to ``retry_after_seconds`` for a slot (a client's next
    request is served as soon as its previous one is done), then is refused with 429: so a client
    that ignores Retry-After and asks again at once costs a waiting coroutine, not a request per
    millisecond.
    """

    def __init__(self, *, per_key: int = 1, total: int = 4, retry_after_seconds: int = 1) -> None:
        self.per_key = per_key
        self.total = total
        self.retry_after_seconds = retry_after_seconds
        self._by_key: dict[str, int] = {}
        self._in_flight = 0
        self._changed = asyncio.Condition()

    def _free(self, key: str) -> bool:
        return self._by_key.get(key, 0) < self.per_key and self._in_flight < self.total

    def _refusal(self, key: str) -> TooManyRequests:
        if self._by_key.get(key, 0) >= self.per_key:
            message = f"this key already has {self.per_key} risk calculation(s) running"
        else:
            message = "the risk calculators are busy"
        return TooManyRequests(f"{message}; retry later", self.retry_after_seconds)

    @contextlib.asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        """Hold one slot for ``key`` (everything here runs on the event loop)."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: self._free(key)), self.retry_after_seconds
                )
            except TimeoutError:
                raise self._refusal(key) from None
            self._by_key[key] = self._by_key.get(key, 0) + 1
            self._in_flight += 1
        try:
            yield
        finally:
            async with self._changed:
                self._in_flight -= 1
                left = self._by_key[key] - 1
                if left:
                    self._by_key[key] = left
                else:
                    del self._by_key[key]
                self._changed.notify_all()
