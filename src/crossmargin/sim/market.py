"""Market data files: read and validate OHLCV candle CSV files into a :class:`CandleSeries`.

What it owns: the file shape, the row rules and the refusals. The shape is the one Binance
publishes (and the bundled episodes use)::

    Date,Open,High,Low,Close,Volume
    2020-01-01 00:00:00+00:00,7189.43,7190.52,7170.15,7171.55,2449.049

``Date`` is the candle's *open* time in UTC; prices are quote currency per base unit; ``Volume`` is
base units. Prices are read straight from their text into ``Decimal`` (never via float), so the
authoritative path sees exactly the digits in the file; :meth:`CandleSeries.arrays` gives float64
copies for the vectorised analytics path.

Validation never repairs. A problem that makes a row meaningless raises :class:`InvalidInput`
whose field is ``<source>:<line>`` (plus the column where one is to blame):

* a header with missing or extra columns; a row with the wrong number of fields;
* an unparsable timestamp or number, NaN or infinity;
* a non-positive price or a negative volume;
* ``High < max(Open, Close)`` or ``Low > min(Open, Close)``;
* a timestamp off the interval grid, a duplicate timestamp, or rows out of order;
* a file (or a ``--from/--to`` window) with no candles.

Problems that real markets do produce (gaps, absurd wicks and jumps) are
:class:`~crossmargin.sim.market_warnings.DataWarning` values, returned with the series and never
printed (:mod:`crossmargin.sim.market_warnings`). The series and the window are
:mod:`crossmargin.sim.candles`'.
"""

from __future__ import annotations

import csv
import decimal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import format_decimal
from crossmargin.sim.candles import EPOCH, HOUR, Candle, CandleSeries, TimeWindow, iso_utc
from crossmargin.sim.market_warnings import (
    DEFAULT_THRESHOLDS,
    DataWarning,
    ValidationThresholds,
    data_warnings,
)

# TimeWindow (load_candles' window) stays importable from here: docs/market-data.md does so.
__all__ = [
    "COLUMNS",
    "PRICE_COLUMNS",
    "LoadedCandles",
    "TimeWindow",
    "load_candles",
    "parse_candles",
    "symbol_from_filename",
]

COLUMNS = ("Date", "Open", "High", "Low", "Close", "Volume")
PRICE_COLUMNS = ("Open", "High", "Low", "Close")


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedCandles:
    """A validated series and the warnings its file produced (already limited to the window)."""

    series: CandleSeries
    warnings: tuple[DataWarning, ...]


def symbol_from_filename(path: Path) -> str:
    """``BTCUSDT_1h.csv`` -> ``BTCUSDT`` (the part before the first underscore)."""
    return path.stem.split("_", 1)[0].upper()


def load_candles(
    path: str | Path,
    *,
    symbol: str | None = None,
    interval: timedelta = HOUR,
    window: TimeWindow | None = None,
    thresholds: ValidationThresholds = DEFAULT_THRESHOLDS,
) -> LoadedCandles:
    """Read and validate a candle CSV file; see the module docstring for the rules."""
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8-sig")  # tolerate a byte-order mark
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(str(file_path), f"cannot read candle file: {error}") from None
    return parse_candles(
        text.splitlines(),
        source=str(file_path),
        symbol=symbol or symbol_from_filename(file_path),
        interval=interval,
        window=window,
        thresholds=thresholds,
    )


def parse_candles(
    lines: Iterable[str],
    *,
    source: str,
    symbol: str,
    interval: timedelta = HOUR,
    window: TimeWindow | None = None,
    thresholds: ValidationThresholds = DEFAULT_THRESHOLDS,
) -> LoadedCandles:
    """Validate candle CSV lines (header first). ``source`` names the input in errors."""
    if interval <= timedelta(0):
        raise InvalidInput("interval", "must be positive")
    reader = csv.reader(lines)
    _check_header(next(reader, None), source)
    candles: list[Candle] = []
    line_numbers: list[int] = []
    seen: dict[datetime, int] = {}
    for row in reader:
        line = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        candle = _parse_row(row, source, line, interval)
        first = seen.get(candle.timestamp)
        if first is not None:
            raise InvalidInput(
                f"{source}:{line}",
                f"duplicate timestamp {iso_utc(candle.timestamp)} (first on line {first})",
            )
        if candles and candle.timestamp < candles[-1].timestamp:
            raise InvalidInput(
                f"{source}:{line}",
                f"rows out of order: {iso_utc(candle.timestamp)} comes after "
                f"{iso_utc(candles[-1].timestamp)} (line {line_numbers[-1]})",
            )
        seen[candle.timestamp] = line
        candles.append(candle)
        line_numbers.append(line)
    if not candles:
        raise InvalidInput(source, "no candles (only a header)")
    warnings = data_warnings(candles, line_numbers, source, interval, thresholds)
    series = CandleSeries(symbol=symbol, source=source, interval=interval, candles=tuple(candles))
    if window is None:
        return LoadedCandles(series=series, warnings=warnings)
    sliced = series.between(window.start, window.end)
    kept = tuple(warning for warning in warnings if window.contains(warning.timestamp))
    return LoadedCandles(series=sliced, warnings=kept)


def _check_header(header: Sequence[str] | None, source: str) -> None:
    if header is None:
        raise InvalidInput(f"{source}:1", "empty file: expected a header " + ",".join(COLUMNS))
    names = [name.strip() for name in header]
    missing = [name for name in COLUMNS if name not in names]
    extra = [name for name in names if name not in COLUMNS]
    if missing or extra:
        problems = []
        if missing:
            problems.append("missing column(s) " + ", ".join(missing))
        if extra:
            problems.append("unexpected column(s) " + ", ".join(repr(name) for name in extra))
        raise InvalidInput(
            f"{source}:1", "; ".join(problems) + "; expected header " + ",".join(COLUMNS)
        )
    if names != list(COLUMNS):
        raise InvalidInput(
            f"{source}:1", "columns in the wrong order; expected header " + ",".join(COLUMNS)
        )


def _parse_row(row: Sequence[str], source: str, line: int, interval: timedelta) -> Candle:
    where = f"{source}:{line}"
    if len(row) != len(COLUMNS):
        raise InvalidInput(where, f"expected {len(COLUMNS)} fields, got {len(row)}")
    timestamp = _parse_timestamp(row[0], f"{where}:Date")
    if (timestamp - EPOCH) % interval:
        raise InvalidInput(
            f"{where}:Date", f"{iso_utc(timestamp)} is not on the {_interval_text(interval)} grid"
        )
    open_, high, low, close = (
        _parse_number(text, f"{where}:{name}")
        for name, text in zip(PRICE_COLUMNS, row[1:5], strict=True)
    )
    volume = _parse_number(row[5], f"{where}:Volume")
    for name, value in zip(PRICE_COLUMNS, (open_, high, low, close), strict=True):
        if value <= 0:
            raise InvalidInput(
                f"{where}:{name}", f"price must be positive, got {row[COLUMNS.index(name)]}"
            )
    if volume < 0:
        raise InvalidInput(f"{where}:Volume", f"must not be negative, got {row[5]}")
    if high < max(open_, close):
        raise InvalidInput(
            f"{where}:High",
            f"High {format_decimal(high)} is below max(Open, Close) {format_decimal(max(open_, close))}",
        )
    if low > min(open_, close):
        raise InvalidInput(
            f"{where}:Low",
            f"Low {format_decimal(low)} is above min(Open, Close) {format_decimal(min(open_, close))}",
        )
    return Candle(timestamp=timestamp, open=open_, high=high, low=low, close=close, volume=volume)


def _parse_timestamp(text: str, where: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(where, f"not a timestamp: {text!r}") from None
    if parsed.utcoffset() is None:
        raise InvalidInput(where, f"timestamp without a UTC offset: {text!r}")
    return parsed.astimezone(UTC)


def _parse_number(text: str, where: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except decimal.InvalidOperation:
        raise InvalidInput(where, f"not a number: {text!r}") from None
    if not value.is_finite():
        raise InvalidInput(where, f"must be a finite number, got {text!r}")
    return value


def _interval_text(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
