"""WebSocket streams: ``/v1/ws/prices`` (every mark) and ``/v1/ws/accounts/{account}``.

Browsers cannot set headers on a WebSocket, and a key in the URL ends up in access logs, so the
client's first message authenticates: ``{"key": "..."}``. The server answers ``{"type": "ready"}``
and a snapshot (the latest marks; or the account's view and recent events), then streams:

  prices:   {"type": "price", "symbol", "price", "time"}
  account:  {"type": "event", "seq", "event"}   one per event (redacted to this account)
            {"type": "account", "view"}          the account's fresh view after a change

Close codes: 4401 no or unknown key, 4403 a key of another account, 4404 no such account,
1013 the client fell too far behind (its outbox filled up).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from crossmargin.core.errors import Forbidden, Unauthorized
from crossmargin.service.context import ServiceContext
from crossmargin.service.host import Subscriber
from crossmargin.service.keys import Principal
from crossmargin.service.views import account_view
from crossmargin.service.wire import dumps

AUTH_TIMEOUT_SECONDS = 10.0
router = APIRouter(prefix="/v1/ws")


def _context(socket: WebSocket) -> ServiceContext:
    context = getattr(socket.app.state, "service", None)
    if not isinstance(context, ServiceContext):
        raise RuntimeError("the service is not started")
    return context


async def _authenticate(socket: WebSocket, context: ServiceContext) -> Principal | None:
    await socket.accept()
    try:
        text = await asyncio.wait_for(socket.receive_text(), AUTH_TIMEOUT_SECONDS)
        message = json.loads(text)
        key = message.get("key") if isinstance(message, dict) else None
        return context.keys.resolve(key if isinstance(key, str) else None)
    except (Unauthorized, ValueError, TimeoutError):
        await socket.close(code=4401, reason='send {"key": KEY} first')
    except (WebSocketDisconnect, RuntimeError):
        pass
    return None


async def _pump(socket: WebSocket, subscriber: Subscriber) -> None:
    """Send the subscriber's outbox until the client leaves or falls behind."""

    async def send() -> None:
        while True:
            text = await subscriber.queue.get()
            await socket.send_text(text)
            if subscriber.overflowed and subscriber.queue.empty():
                await socket.close(code=1013, reason="too slow: reconnect")
                return

    async def receive() -> None:
        while True:
            message = await socket.receive()
            if message["type"] == "websocket.disconnect":
                return

    tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


@router.websocket("/prices")
async def prices(socket: WebSocket) -> None:
    context = _context(socket)
    who = await _authenticate(socket, context)
    if who is None:
        return
    subscriber = context.host.hub.subscribe(None)
    try:
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
    try:
        who.require_account(account)
    except Forbidden:
        await socket.close(code=4403, reason="this key is scoped to another account")
        return
    subscriber = context.host.hub.subscribe(account)
    try:
        view = await context.host.read(lambda engine: account_view(engine, account))
        if view is None:
            await socket.close(code=4404, reason=f"no account {account!r}")
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
