"""Hand-checkable synthetic markets and specs for the backtest tests.

ETHUSDT on binance-usdm, first bracket: maintenance rate 0.4%, no deduction; taker fee 0.05%;
liquidation clearance fee 1.25%. One long of 1 ETH opened at 2,490 with 10x leverage:

  isolated: margin 249 (exactly the initial margin: the opening fee 1.245 is paid from the wallet);
            liquidation where 249 + (P - 2490) = 0.004 P      ->  P = 2241 / 0.996 = 2250
  cross:    wallet 997.245 - 1.245 = 996;
            liquidation where 996 + (P - 2490) = 0.004 P      ->  P = 1494 / 0.996 = 1500
At either price the margin balance equals the maintenance margin (9 and 6), and the 1.25%
clearance fee is capped at that balance, so the scope is left with nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2021, 5, 19, tzinfo=UTC)
HEADER = "Date,Open,High,Low,Close,Volume"

# hour: (open, high, low, close). Hour 1 visits its High first (1 away vs 295), then the Low
# 2200 < 2250; hour 2 visits its High first (10 vs 900), then the Low 1400 < 1500.
ETH_CRASH = (
    ("2490", "2500", "2480", "2495"),
    ("2495", "2496", "2200", "2300"),
    ("2300", "2310", "1400", "1450"),
    ("1450", "1460", "1440", "1455"),
)


def candle_lines(rows: tuple[tuple[str, str, str, str], ...], start: datetime = START) -> str:
    lines = [HEADER]
    for hour, (open_, high, low, close) in enumerate(rows):
        stamp = (start + timedelta(hours=hour)).isoformat(sep=" ")
        lines.append(f"{stamp},{open_},{high},{low},{close},1")
    return "\n".join(lines) + "\n"


def write_candles(
    folder: Path, symbol: str, rows: tuple[tuple[str, str, str, str], ...], start: datetime = START
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{symbol}_1h.csv"
    path.write_text(candle_lines(rows, start), encoding="utf-8")
    return path


def eth_long_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "eth-crash",
        "venue": "binance-usdm",
        "wallet": "997.245",
        "funding": {"rate": "0"},
        "positions": [
            {"symbol": "ETHUSDT", "side": "long", "leverage": "10", "quantity": "1"},
        ],
    }
    spec.update(overrides)
    return spec
