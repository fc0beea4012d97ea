"""Builders for candle CSV text used by the sim tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

HEADER = "Date,Open,High,Low,Close,Volume"
START = datetime(2021, 5, 19, tzinfo=UTC)


def row(hour: int, open_: str, high: str, low: str, close: str, volume: str = "10") -> str:
    stamp = (START + timedelta(hours=hour)).isoformat(sep=" ")
    return f"{stamp},{open_},{high},{low},{close},{volume}"


def rows(count: int, start_hour: int = 0) -> list[str]:
    """``count`` well-formed consecutive hourly candles drifting up one unit an hour."""
    result = []
    for hour in range(start_hour, start_hour + count):
        base = 100 + hour
        result.append(row(hour, f"{base}", f"{base + 2}", f"{base - 1}", f"{base + 1}"))
    return result


def csv_text(lines: list[str], header: str = HEADER) -> str:
    return "\n".join([header, *lines]) + "\n"
