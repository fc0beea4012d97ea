"""Data warnings: what real markets do produce but looks suspicious, reported and never repaired.

What it owns: :class:`DataWarning` (kind, ``<source>:<line>``, the candle's time, a message), the
:class:`ValidationThresholds` that decide when a move is suspicious, and :func:`data_warnings`,
which scans a file's validated candles for:

* a gap in the interval grid (``n candle(s) missing between ...``);
* an absurd jump: an Open more than ``jump_fraction`` (20%) away from the previous Close
  (consecutive candles only; across a gap the jump is expected and the gap warning is enough);
* an absurd wick: a High or Low more than ``wick_fraction`` (50%) away from the Open.

Warnings are values returned with the series (:class:`crossmargin.sim.market.LoadedCandles`) and
never printed here; the row stays as it is. Fractions print in percent to one decimal.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum

from crossmargin.core.numbers import format_decimal
from crossmargin.sim.candles import Candle, iso_utc


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

_Finding = tuple[WarningKind, str]


def data_warnings(
    candles: Sequence[Candle],
    lines: Sequence[int],
    source: str,
    interval: timedelta,
    thresholds: ValidationThresholds,
) -> tuple[DataWarning, ...]:
    """The warnings of a file's candles (``lines``: their file lines), in file order; per candle
    a gap or a jump first, then a wick."""
    found: list[DataWarning] = []
    previous: Candle | None = None
    for candle, line in zip(candles, lines, strict=True):
        step = None if previous is None else _gap_or_jump(previous, candle, interval, thresholds)
        for finding in (step, _wick(candle, thresholds)):
            if finding is not None:
                kind, message = finding
                found.append(
                    DataWarning(
                        kind=kind,
                        source=source,
                        line=line,
                        timestamp=candle.timestamp,
                        message=message,
                    )
                )
        previous = candle
    return tuple(found)


def _gap_or_jump(
    previous: Candle, candle: Candle, interval: timedelta, thresholds: ValidationThresholds
) -> _Finding | None:
    step = candle.timestamp - previous.timestamp
    if step > interval:
        missing = step // interval - 1
        return (
            WarningKind.GAP,
            f"{missing} candle(s) missing between {iso_utc(previous.timestamp)} "
            f"and {iso_utc(candle.timestamp)}",
        )
    jump = abs(candle.open / previous.close - 1)
    if jump <= thresholds.jump_fraction:
        return None
    return (
        WarningKind.ABSURD_JUMP,
        f"Open {format_decimal(candle.open)} is {_percent(jump)} away "
        f"from the previous Close {format_decimal(previous.close)}",
    )


def _wick(candle: Candle, thresholds: ValidationThresholds) -> _Finding | None:
    up = 1 + thresholds.wick_fraction
    down = 1 - thresholds.wick_fraction
    if not (candle.high > candle.open * up or candle.low < candle.open * down):
        return None
    wick = max(candle.high / candle.open - 1, 1 - candle.low / candle.open)
    return (
        WarningKind.ABSURD_WICK,
        f"wick {_percent(wick)} from the open (Open {format_decimal(candle.open)}, "
        f"High {format_decimal(candle.high)}, Low {format_decimal(candle.low)})",
    )


def _percent(fraction: Decimal) -> str:
    return f"{fraction * 100:.1f}%"
