"""The bundled real hourly returns (``crossmargin/data/market/returns.csv``) and their metadata.

Source: Binance hourly candles for BTC, ETH, BNB, DOGE, LINK and AVAX (USDT pairs), as published
in the public repository PixelAlpha-ai/MarketTrend; derived by ``crossmargin.data.market.derive``
(validated, joint hours only, natural-log close-to-close returns in millionths).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from io import StringIO

import numpy as np

from crossmargin.batch.convert import Floats


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketHistory:
    symbols: tuple[str, ...]
    log_returns: Floats  # (hours, symbols) natural-log hourly returns
    last_close: Floats  # (symbols,) the last close of the data, a realistic price level
    source: str


def base_asset(symbol: str) -> str:
    """``BTCUSDT``, ``BTC-USDT-SWAP``, ``BTC-USD``, ``BTC`` -> ``BTC`` (venue naming differs)."""
    name = symbol.upper().split("-")[0]
    for quote in ("USDT", "USDC", "USD"):
        if name.endswith(quote) and len(name) > len(quote):
            return name[: -len(quote)]
    return name


@cache
def market_history() -> MarketHistory:
    """Load the bundled returns (cached)."""
    folder = resources.files("crossmargin.data").joinpath("market")
    meta = json.loads(folder.joinpath("returns.json").read_text(encoding="utf-8"))
    text = folder.joinpath(meta["file"]).read_text(encoding="utf-8")
    table = np.loadtxt(StringIO(text), delimiter=",", skiprows=1, dtype=np.int64)
    symbols = tuple(meta["symbols"])
    returns = table[:, 1:].astype(np.float64) / float(meta["scale"])
    closes = np.array([float(meta["last_close"][s]) for s in symbols])
    return MarketHistory(
        symbols=symbols, log_returns=returns, last_close=closes, source=meta["source"]
    )
