"""Candles: the immutable OHLCV series of one symbol, and the UTC window that slices it.

What it owns: :class:`Candle` (one bar; ``timestamp`` is its *open* time in UTC, prices quote
currency per base unit, volume base units), :class:`CandleSeries` (a symbol's validated bars),
their float64 view :class:`CandleArrays` for the vectorised analytics path, the half-open
:class:`TimeWindow` ``[start, end)`` and :func:`parse_utc_datetime`, which reads the dates people
type (``--from``, a SPEC's ``open_at``) as UTC. Reading and validating candle files is
:mod:`crossmargin.sim.market`'s job; this module only holds what a file became.

Invariants of a :class:`CandleSeries`: at least one candle, timestamps strictly increasing, on the
interval grid, timezone-aware UTC; every candle satisfies ``0 < Low <= min(O, C)`` and
``max(O, C) <= High`` (the loader checks the last three; construction checks the first two).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from crossmargin.core.errors import InvalidInput
from crossmargin.core.position import Side

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
        return f"{iso_utc(self.start)} to {iso_utc(self.end)}"

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
            raise InvalidInput("to", f"must be after from ({iso_utc(start)}), got {iso_utc(end)}")
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
        start = "the beginning" if self.start is None else iso_utc(self.start)
        end = "the end" if self.end is None else iso_utc(self.end)
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


def iso_utc(timestamp: datetime) -> str:
    """``2020-03-12T10:00:00Z``: the form every candle message prints a time in."""
    return timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
