"""Derive the bundled hourly returns (``returns.csv`` + ``returns.json``) from hourly candles.

Source: Binance hourly candles (Date, Open, High, Low, Close, Volume) for six USDT pairs, as
published in the public repository PixelAlpha-ai/MarketTrend (folder data/crypto), 2020-01-01 to
2024-04-18 UTC. Run ``python -m crossmargin.data.market.derive CANDLE_DIR`` to rebuild.

Validation (the candles are treated as real input): every row parses, timestamps strictly
increase (no duplicates, no reordering), prices are positive and ``low <= open, close <= high``.
A return is kept only across exactly one hour, and only at hours where all six pairs have one,
so the rows are joint observations (their cross-correlation is real). Returns are natural-log
close-to-close returns stored as integers in millionths (1e-6), which keeps the file small; the
quantisation (at most 5e-7 per hour) is far below hourly volatility.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from datetime import datetime
from pathlib import Path

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "DOGEUSDT", "LINKUSDT", "AVAXUSDT")
SCALE = 1_000_000
SOURCE = (
    "Binance hourly candles (close-to-close), as published in the public repository "
    "PixelAlpha-ai/MarketTrend, folder data/crypto; 2020-01-01 to 2024-04-18 UTC"
)


def read_closes(path: Path) -> dict[int, float]:
    """Hour (since the epoch) -> close, after validating every row."""
    closes: dict[int, float] = {}
    previous: int | None = None
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        for line, row in enumerate(reader, start=2):
            stamp = datetime.fromisoformat(row["Date"])
            seconds = int(stamp.timestamp())
            if seconds % 3600:
                raise ValueError(f"{path.name}:{line}: not on the hour: {row['Date']}")
            hour = seconds // 3600
            if previous is not None and hour <= previous:
                raise ValueError(f"{path.name}:{line}: timestamps must strictly increase")
            low, high = float(row["Low"]), float(row["High"])
            open_, close = float(row["Open"]), float(row["Close"])
            if (
                min(low, open_, close) <= 0
                or not low <= min(open_, close) <= max(open_, close) <= high
            ):
                raise ValueError(f"{path.name}:{line}: inconsistent prices {row}")
            closes[hour] = close
            previous = hour
    return closes


def main(argv: list[str]) -> int:
    source = Path(argv[0])
    target = Path(__file__).parent
    series = {symbol: read_closes(source / f"{symbol}_1h.csv") for symbol in SYMBOLS}
    hours = sorted(set.intersection(*(set(closes) for closes in series.values())))
    rows: list[list[int]] = []
    for hour in hours:
        if all(hour - 1 in closes for closes in series.values()):
            rows.append(
                [hour]
                + [round(math.log(series[s][hour] / series[s][hour - 1]) * SCALE) for s in SYMBOLS]
            )
    with (target / "returns.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["hour", *SYMBOLS])
        writer.writerows(rows)
    last_hour = rows[-1][0]
    meta = {
        "source": SOURCE,
        "file": "returns.csv",
        "hour": "open time (hours since 1970-01-01T00:00Z) of the candle whose close ends the return",
        "units": "natural-log close-to-close return over one hour, in millionths",
        "scale": SCALE,
        "symbols": list(SYMBOLS),
        "rows": len(rows),
        "first_hour": rows[0][0],
        "last_hour": last_hour,
        "last_close": {s: format(series[s][last_hour], "g") for s in SYMBOLS},
    }
    (target / "returns.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"{len(rows)} joint hourly returns written")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
