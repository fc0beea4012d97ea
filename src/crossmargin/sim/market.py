"""Market data: load, validate and slice OHLCV candle files into an immutable series.

The file shape is the one Binance publishes (and the bundled episodes use)::

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

Problems that real markets do produce are reported as :class:`DataWarning` values, returned with
the series and never printed: a gap in the interval grid, a wick more than
``ValidationThresholds.wick_fraction`` (50%) away from the open, and an open more than
``ValidationThresholds.jump_fraction`` (20%) away from the previous close.

Invariants of a :class:`CandleSeries`: at least one candle, timestamps strictly increasing, on the
interval grid, timezone-aware UTC; every candle satisfies ``0 < Low <= min(O, C)`` and
``max(O, C) <= High``.
"""

from __future__ import annotations

import csv
import decimal
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import Path

import numpy as np
import numpy.typing as npt

from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import format_decimal
from crossmargin.core.position import Side

COLUMNS = ("Date", "Open", "High", "Low", "Close", "Volume")
PRICE_COLUMNS = ("Open", "High", "Low", "Close")
HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, kw_only=True)
class Candle:
    """One OHLCV bar; ``timestamp`` is its open time (UTC)."""

    timestamp: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    def worst_for(self, side: Side) -> Decimal:
        """The most adverse price the bar reached for ``side``: a long's low, a short's high."""
        return self.low if side is Side.LONG else self.high

    def best_for(self, side: Side) -> Decimal:
        """The most favourable price the bar reached for ``side``."""
        return self.high if side is Side.LONG else self.low


class WarningKind(Enum):
    GAP = "gap"
    ABSURD_WICK = "absurd-wick"
    ABSURD_JUMP = "absurd-jump"


@dataclass(frozen=True, slots=True, kw_only=True)
class DataWarning:
    """Something odd but possible in the data; the row is kept as it is."""

    kind: WarningKind
    source: str
    line: int
    timestamp: datetime
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.kind.value}: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationThresholds:
    """When a possible-but-suspicious move becomes a warning (fractions of the reference price).

    ``wick_fraction``: High above ``Open x (1 + f)`` or Low below ``Open x (1 - f)``.
    ``jump_fraction``: an Open further than ``f`` from the previous candle's Close (consecutive
    candles only; across a gap the jump is expected and the gap warning is enough).
    """

    wick_fraction: Decimal = Decimal("0.5")
    jump_fraction: Decimal = Decimal("0.2")


DEFAULT_THRESHOLDS = ValidationThresholds()


@dataclass(frozen=True, slots=True)
class CandleArrays:
    """Read-only float64 copies of a series for vectorised analytics (``time_s``: epoch seconds)."""

    time_s: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray


@dataclass(frozen=True, slots=True, kw_only=True)
class CandleSeries:
    """Validated candles of one symbol, strictly increasing in time."""

    symbol: str
    source: str
    interval: timedelta
    candles: tuple[Candle, ...]
    _index: dict[datetime, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.candles:
            raise InvalidInput("candles", f"a {self.symbol} series needs at least one candle")
        for earlier, later in itertools.pairwise(self.candles):
            if later.timestamp <= earlier.timestamp:
                raise InvalidInput(
                    "candles", f"{self.symbol} candles must be strictly increasing in time"
                )
        object.__setattr__(
            self, "_index", {candle.timestamp: i for i, candle in enumerate(self.candles)}
        )

    def __len__(self) -> int:
        return len(self.candles)

    @property
    def start(self) -> datetime:
        return self.candles[0].timestamp

    @property
    def end(self) -> datetime:
        """The close time of the last candle (exclusive end of the covered span)."""
        return self.candles[-1].timestamp + self.interval

    @property
    def timestamps(self) -> tuple[datetime, ...]:
        return tuple(candle.timestamp for candle in self.candles)

    def at(self, timestamp: datetime) -> Candle | None:
        """The candle opening at ``timestamp``, or None when the series has none there."""
        position = self._index.get(timestamp)
        return None if position is None else self.candles[position]

    def between(self, start: datetime | None = None, end: datetime | None = None) -> CandleSeries:
        """Candles opening in ``[start, end)``; an empty result is an error, not an empty series."""
        window = TimeWindow.checked(start, end)
        kept = tuple(candle for candle in self.candles if window.contains(candle.timestamp))
        if not kept:
            raise InvalidInput(
                "from/to", f"no {self.symbol} candles in {window} (data covers {self.span()})"
            )
        return CandleSeries(
            symbol=self.symbol, source=self.source, interval=self.interval, candles=kept
        )

    def span(self) -> str:
        return f"{_iso(self.start)} to {_iso(self.end)}"

    def arrays(self) -> CandleArrays:
        """Float64 views for analytics; the only place a candle price becomes a float."""
        columns = {
            name: np.array([float(getattr(candle, name)) for candle in self.candles])
            for name in ("open", "high", "low", "close", "volume")
        }
        time_s = np.array(
            [(candle.timestamp - EPOCH) // timedelta(seconds=1) for candle in self.candles],
            dtype=np.int64,
        )
        for array in (time_s, *columns.values()):
            array.flags.writeable = False
        return CandleArrays(time_s=time_s, **columns)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedCandles:
    """A validated series and the warnings its file produced (already limited to the window)."""

    series: CandleSeries
    warnings: tuple[DataWarning, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeWindow:
    """A half-open UTC window ``[start, end)``; either bound may be open (None)."""

    start: datetime | None = None
    end: datetime | None = None

    @classmethod
    def checked(cls, start: datetime | None, end: datetime | None) -> TimeWindow:
        for name, bound in (("from", start), ("to", end)):
            if bound is not None and bound.utcoffset() is None:
                raise InvalidInput(name, "must be timezone-aware (UTC)")
        if start is not None and end is not None and start >= end:
            raise InvalidInput("to", f"must be after from ({_iso(start)}), got {_iso(end)}")
        return cls(start=start, end=end)

    @classmethod
    def parse(cls, start_text: str | None, end_text: str | None) -> TimeWindow:
        """The ``--from/--to`` options: ISO dates or datetimes; no offset means UTC."""
        start = None if start_text is None else parse_utc_datetime(start_text, "from")
        end = None if end_text is None else parse_utc_datetime(end_text, "to")
        return cls.checked(start, end)

    def contains(self, timestamp: datetime) -> bool:
        if self.start is not None and timestamp < self.start:
            return False
        return self.end is None or timestamp < self.end

    def __str__(self) -> str:
        start = "the beginning" if self.start is None else _iso(self.start)
        end = "the end" if self.end is None else _iso(self.end)
        return f"[{start}, {end})"


def parse_utc_datetime(text: str, field_name: str) -> datetime:
    """``2020-03-12``, ``2020-03-12T10:00``, ``2020-03-12 10:00:00+00:00`` or ``...Z`` -> UTC.

    A value without an offset is taken as UTC; a value with another offset is converted to UTC.
    """
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(
            field_name,
            f"not an ISO date or datetime: {text!r} (e.g. 2020-03-12 or 2020-03-12T10:00Z)",
        ) from None
    if parsed.utcoffset() is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


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
                f"duplicate timestamp {_iso(candle.timestamp)} (first on line {first})",
            )
        if candles and candle.timestamp < candles[-1].timestamp:
            raise InvalidInput(
                f"{source}:{line}",
                f"rows out of order: {_iso(candle.timestamp)} comes after "
                f"{_iso(candles[-1].timestamp)} (line {line_numbers[-1]})",
            )
        seen[candle.timestamp] = line
        candles.append(candle)
        line_numbers.append(line)
    if not candles:
        raise InvalidInput(source, "no candles (only a header)")
    warnings = _warnings(candles, line_numbers, source, interval, thresholds)
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
            f"{where}:Date", f"{_iso(timestamp)} is not on the {_interval_text(interval)} grid"
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


def _warnings(
    candles: Sequence[Candle],
    lines: Sequence[int],
    source: str,
    interval: timedelta,
    thresholds: ValidationThresholds,
) -> tuple[DataWarning, ...]:
    found: list[DataWarning] = []
    up = 1 + thresholds.wick_fraction
    down = 1 - thresholds.wick_fraction
    previous: Candle | None = None
    for candle, line in zip(candles, lines, strict=True):
        if previous is not None:
            step = candle.timestamp - previous.timestamp
            if step > interval:
                missing = step // interval - 1
                found.append(
                    DataWarning(
                        kind=WarningKind.GAP,
                        source=source,
                        line=line,
                        timestamp=candle.timestamp,
                        message=f"{missing} candle(s) missing between {_iso(previous.timestamp)} "
                        f"and {_iso(candle.timestamp)}",
                    )
                )
            else:
                jump = abs(candle.open / previous.close - 1)
                if jump > thresholds.jump_fraction:
                    found.append(
                        DataWarning(
                            kind=WarningKind.ABSURD_JUMP,
                            source=source,
                            line=line,
                            timestamp=candle.timestamp,
                            message=f"Open {format_decimal(candle.open)} is {_percent(jump)} away "
                            f"from the previous Close {format_decimal(previous.close)}",
                        )
                    )
        if candle.high > candle.open * up or candle.low < candle.open * down:
            wick = max(candle.high / candle.open - 1, 1 - candle.low / candle.open)
            found.append(
                DataWarning(
                    kind=WarningKind.ABSURD_WICK,
                    source=source,
                    line=line,
                    timestamp=candle.timestamp,
                    message=f"wick {_percent(wick)} from the open (Open {format_decimal(candle.open)}, "
                    f"High {format_decimal(candle.high)}, Low {format_decimal(candle.low)})",
                )
            )
        previous = candle
    return tuple(found)


def _percent(fraction: Decimal) -> str:
    return f"{fraction * 100:.1f}%"


def _interval_text(interval: timedelta) -> str:
    seconds = int(interval.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _iso(timestamp: datetime) -> str:
    return timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
