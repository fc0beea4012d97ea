"""What the signed endpoints (``account``, ``orders``) share: the caller and its facade, the
optional symbol, the caller's account, and running a command as the caller.

A command's refusal is the engine's, translated to Binance's code (``wire.REASON_CODES``, plus
the endpoint's own ``reasons``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from crossmargin.app.model import Account
from crossmargin.app.queries import ReadModel
from crossmargin.service.binance.auth import Caller
from crossmargin.service.binance.facade import BinanceFacade, facade_of
from crossmargin.service.binance.market import symbol_of
from crossmargin.service.binance.wire import INVALID_KEY, REASON_CODES, BinanceError, rejection


async def authenticated(request: Request) -> tuple[BinanceFacade, Caller]:
    facade = facade_of(request)
    return facade, await facade.signed(request)


async def symbol_only(request: Request) -> tuple[BinanceFacade, Caller, str | None]:
    """A signed request whose one parameter is the optional ``symbol``."""
    facade, caller = await authenticated(request)
    symbol = symbol_of(caller.params, facade.context.symbols)
    caller.params.finish()
    return facade, caller, symbol


def held_account(model: ReadModel, account_id: str) -> Account:
    account = model.accounts.get(account_id)
    if account is None:  # credentials outlived their account: refused like a stale key
        raise BinanceError(INVALID_KEY)
    return account


async def run(
    facade: BinanceFacade,
    caller: Caller,
    command: dict[str, Any],
    reasons: dict[str, int] | None = None,
) -> dict[str, Any]:
    caller.params.finish()
    _, result = await facade.submit(caller.account, command)
    if result.get("status") == "rejected":
        raise rejection(result, {**REASON_CODES, **(reasons or {})})
    return result
