"""Books for the distributed tests: a seeded synthetic spec and a file of varied portfolios."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np

from crossmargin.batch.convert import BookArrays

SYNTHETIC_POSITIONS = 10_000
MARKS = {"BTCUSDT": "29000", "ETHUSDT": "1800", "SOLUSDT": "20"}
ENTRIES = {"BTCUSDT": 30000, "ETHUSDT": 1850, "SOLUSDT": 21}


def _position(rng: random.Random, symbol: str, side: str, mode: str) -> dict[str, Any]:
    entry = ENTRIES[symbol] * rng.uniform(0.9, 1.1)
    quantity = rng.uniform(1000, 200_000) / entry
    position: dict[str, Any] = {
        "symbol": symbol,
        "side": side,
        "quantity": f"{quantity:.3f}",
        "entry_price": f"{entry:.2f}",
        "leverage": str(rng.choice([2, 5, 10, 20])),
        "margin_mode": mode,
    }
    if mode == "isolated":
        position["isolated_margin"] = f"{entry * quantity / 20 * rng.uniform(1.0, 1.5):.2f}"
    return position


def portfolios(count: int, seed: int) -> list[dict[str, Any]]:
    """Cross and isolated positions on three symbols; every fifth account hedges BTCUSDT
    with two cross legs (partners in the converter)."""
    rng = random.Random(seed)
    result = []
    for index in range(count):
        hedge = index % 5 == 0
        positions = []
        if hedge:
            positions.append(_position(rng, "BTCUSDT", "long", "cross"))
            positions.append(_position(rng, "BTCUSDT", "short", "cross"))
        for symbol in rng.sample(["ETHUSDT", "SOLUSDT", "BTCUSDT"][: 2 if hedge else 3], 2):
            side = rng.choice(["long", "short"])
            positions.append(_position(rng, symbol, side, rng.choice(["cross", "isolated"])))
        document: dict[str, Any] = {
            "wallet_balance": f"{rng.uniform(2000, 60000):.2f}",
            "positions": positions,
            "mark_prices": {p["symbol"]: MARKS[p["symbol"]] for p in positions},
        }
        if hedge:
            document["position_mode"] = "hedge"
        result.append(document)
    return result


def write_portfolios(path: Path, count: int = 60, seed: int = 8) -> Path:
    path.write_text(json.dumps(portfolios(count, seed)))
    return path


def assert_same_arrays(left: BookArrays, right: BookArrays) -> None:
    assert left.symbols == right.symbols
    for name in BookArrays.__dataclass_fields__:
        if name in {"symbols", "tables"}:
            continue
        assert np.array_equal(getattr(left, name), getattr(right, name)), name
    for name in type(left.tables).__dataclass_fields__:
        assert np.array_equal(getattr(left.tables, name), getattr(right.tables, name)), name
