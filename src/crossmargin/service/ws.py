"""WebSocket streams: ``/v1/ws/prices`` (every mark) and ``/v1/ws/accounts/{account}``.

Browsers cannot set headers on a WebSocket, and a key in the URL ends up in access logs, so the
client's first message authenticates: ``{"key": "..."}``, a text frame, within
``AUTH_DEADLINE_SECONDS``. The server answers ``{"type": "ready"}`` and a snapshot (the latest
marks; or the account's view and recent events), then streams:

  prices:   {"type": "price", "symbol", "price", "time"}
  account:  {"type": "event", "seq", "event"}   one per event (redacted to this account)
            {"type": "account", "view"}          the account's fresh view after a change

Close codes (``CLOSE_*``):

  4401  not authenticated: no first message within the deadline, a first message that is not a
        text frame holding ``{"key": KEY}``, or a key that matches nothing (closed at once)
  4403  the key belongs to another account
  4404  no such account (or a path that is not an account id)
  4410  the key was replaced or revoked while the socket was open
  1013  the client fell ``SUBSCRIBER_BACKLOG`` messages behind

Close reasons are fixed texts (a close frame carries at most 123 bytes; no input is echoed).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from crossmargin.core.errors import Forbidden, InvalidInput, Unauthorized
from crossmargin.core.ids import is_id
from crossmargin.core.json_input import load_json
from crossmargin.service.context import ServiceContext
from crossmargin.service.hub import Subscriber
from crossmargin.service.keys import Principal
from crossmargin.service.views import account_view
from crossmargin.service.wire import dumps

AUTH_DEADLINE_SECONDS = 2.0
MAX_AUTH_MESSAGE_BYTES = 1024
MAX_CLOSE_REASON_BYTES = 123
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_REVOKED = 4410
CLOSE_TOO_SLOW = 1013
router = APIRouter(prefix="/v1/ws")


def _context(socket: WebSocket) -> ServiceContext:
    context = getattr(socket.app.state, "service", None)
    if not isinstance(context, ServiceContext):
        raise RuntimeError("the service is not started")
    return context


async def _close(socket: WebSocket, code: int, reason: str) -> None:
    text = reason.encode("utf-8")[:MAX_CLOSE_REASON_BYTES].decode("utf-8", errors="ignore")
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await socket.close(code=code, reason=text)


def _key_of(message: Mapping[str, Any]) -> str | None:
    text = message.get("text")
    if not isinstance(text, str):
        return None  # a binary frame
    try:
        document = load_json(text, field="message", max_bytes=MAX_AUTH_MESSAGE_BYTES)
    except InvalidInput:
        return None
    key = document.get("key") if isinstance(document, dict) else None
    return key if isinstance(key, str) else None


async def _authenticate(socket: WebSocket, context: ServiceContext) -> Principal | None:
    await socket.accept()
    try:
        message = await asyncio.wait_for(socket.receive(), AUTH_DEADLINE_SECONDS)
    except TimeoutError:
        await _close(
            socket,
            CLOSE_UNAUTHENTICATED,
            f'send {{"key": KEY}} first, within {AUTH_DEADLINE_SECONDS:g} s',
        )
        return None
    except (WebSocketDisconnect, RuntimeError):
        return None
    if message.get("type") != "websocket.receive":
        return None  # the client left
    try:
        return context.keys.resolve(_key_of(message))
    except Unauthorized:
        await _close(socket, CLOSE_UNAUTHENTICATED, 'the first message must be {"key": KEY}')
        return None


async def _pump(socket: WebSocket, subscriber: Subscriber) -> None:
    """Send the subscriber's outbox until the client leaves, falls behind or loses its key."""

    async def send() -> None:
        while True:
            text = await subscriber.queue.get()
            await socket.send_text(text)
            if subscriber.overflowed and subscriber.queue.empty():
                await _close(socket, CLOSE_TOO_SLOW, "too slow: reconnect")
                return

    async def receive() -> None:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return

    async def revoked() -> None:
        await subscriber.revoked.wait()
        await _close(socket, CLOSE_REVOKED, "the key was revoked")

    tasks = [asyncio.create_task(job()) for job in (send, receive, revoked)]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _still_valid(socket: WebSocket, context: ServiceContext, who: Principal) -> bool:
    """A key revoked between authenticating and subscribing: closed like a revoked one."""
    if context.keys.current(who.credential):
        return True
    await _close(socket, CLOSE_REVOKED, "the key was revoked")
    return False


@router.websocket("/prices")
async def prices(socket: WebSocket) -> None:
    context = _context(socket)
    who = await _authenticate(socket, context)
    if who is None:
        return
    subscriber = context.host.hub.subscribe(None, who.credential)
    try:
        if not await _still_valid(socket, context, who):
            return
        snapshot = {"type": "prices", "marks": context.host.prices.latest()}
        await socket.send_text(dumps({"type": "ready"}))
        await socket.send_text(dumps(snapshot))
        await _pump(socket, subscriber)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        context.host.hub.unsubscribe(subscriber)


@router.websocket("/accounts/{account}")
async def account_stream(socket: WebSocket, account: str) -> None:
    context = _context(socket)
    who = await _authenticate(socket, context)
    if who is None:
        return
    if not is_id(account):
        await _close(socket, CLOSE_NOT_FOUND, "no such account")
        return
    try:
        who.require_account(account)
    except Forbidden:
        await _close(socket, CLOSE_FORBIDDEN, "this key is scoped to another account")
        return
    subscriber = context.host.hub.subscribe(account, who.credential)
    try:
        if not await _still_valid(socket, context, who):
            return
        view = await context.host.read(lambda model: account_view(model, account))
        if view is None:
            await _close(socket, CLOSE_NOT_FOUND, f"no account {account}")
            return
        recent: list[dict[str, Any]] = list(context.host.recent.get(account, ()))
        await socket.send_text(dumps({"type": "ready"}))
        await socket.send_text(dumps({"type": "account", "view": view}))
        await socket.send_text(dumps({"type": "events", "events": recent}))
        await _pump(socket, subscriber)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        context.host.hub.unsubscribe(subscriber)
