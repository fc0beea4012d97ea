"""A Binance USDⓈ-M futures facade over the engine, so that ccxt and freqtrade trade unchanged.

``install(app, credentials)`` mounts ``/fapi/...`` (and ``/api/v3`` ping, time, exchangeInfo)
plus the operator route ``POST /v1/accounts/{account}/exchange-keys``, and returns the
:class:`BinanceFacade`, which the app's lifespan starts (rebuilding its index from the log) and
stops. See docs/binance-api.md for what is supported and what differs.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI

from crossmargin.service.binance import account, market, operator, orders
from crossmargin.service.binance.auth import RedactSignatures
from crossmargin.service.binance.credentials import ExchangeCredentials
from crossmargin.service.binance.facade import BinanceFacade

__all__ = ["BinanceFacade", "ExchangeCredentials", "install"]


def install(app: FastAPI, credentials: ExchangeCredentials | None = None) -> BinanceFacade:
    facade = BinanceFacade(credentials)
    app.state.binance = facade
    for module in (market, account, orders, operator):
        app.include_router(module.router)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSignatures) for f in access.filters):
        access.addFilter(RedactSignatures())
    return facade
