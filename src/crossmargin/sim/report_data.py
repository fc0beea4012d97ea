"""Report data: what one report shows, checked once when it is built.

What it owns: :class:`ReportData` (timestamps; per symbol the price, and optionally the candle's
low and high; per margin mode a :class:`ModeTrack` of equity, margin ratio and each position's
:class:`PositionTrack`; the :class:`LiquidationEvent` list) and its invariants: at least one
timestamp, strictly increasing; every series has one value per timestamp (``None`` marks a gap:
a position not open yet or closed, no liquidation price, no margin ratio because nothing is
open); every track and event names a known symbol and mode; mode names are unique. A mismatch is
an :class:`InvalidInput` naming the field (``modes[0].equity``).

Units: prices in quote currency (USDT) per base unit; equity and losses in USD; the margin ratio
is ``maintenance margin / margin balance`` as a fraction (1 = liquidatable).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from crossmargin.core.errors import InvalidInput
from crossmargin.core.position import Side


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionTrack:
    """One position's reference lines, one value (or None) per report timestamp."""

    label: str
    symbol: str
    side: Side
    entry_price: tuple[Decimal | None, ...]
    liquidation_price: tuple[Decimal | None, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeTrack:
    """An account run in one margin mode: equity (USD) and margin ratio per timestamp."""

    name: str
    equity: tuple[Decimal, ...]
    margin_ratio: tuple[Decimal | None, ...]
    positions: tuple[PositionTrack, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationEvent:
    """A liquidation (or partial liquidation, bankruptcy, ADL) and what it cost the trader."""

    timestamp: datetime
    mode: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    loss_usd: Decimal
    kind: str = "liquidation"
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportData:
    """Everything a report shows; validated on construction (lengths, names, time order)."""

    title: str
    timestamps: tuple[datetime, ...]
    prices: Mapping[str, tuple[Decimal, ...]]
    modes: tuple[ModeTrack, ...]
    events: tuple[LiquidationEvent, ...] = ()
    notes: tuple[str, ...] = ()
    lows: Mapping[str, tuple[Decimal, ...]] = field(default_factory=dict)
    highs: Mapping[str, tuple[Decimal, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        count = len(self.timestamps)
        if count == 0:
            raise InvalidInput("timestamps", "a report needs at least one timestamp")
        if any(later <= earlier for earlier, later in itertools.pairwise(self.timestamps)):
            raise InvalidInput("timestamps", "must be strictly increasing")
        if not self.prices:
            raise InvalidInput("prices", "at least one symbol is needed")
        for symbol, values in self.prices.items():
            _check_length(values, count, f"prices.{symbol}")
        for name, extremes in (("lows", self.lows), ("highs", self.highs)):
            for symbol, values in extremes.items():
                if symbol not in self.prices:
                    raise InvalidInput(f"{name}.{symbol}", f"no price series for {symbol}")
                _check_length(values, count, f"{name}.{symbol}")
        self._check_modes(count)

    def _check_modes(self, count: int) -> None:
        names = [mode.name for mode in self.modes]
        if len(set(names)) != len(names):
            raise InvalidInput("modes", f"mode names must be unique, got {', '.join(names)}")
        for index, mode in enumerate(self.modes):
            _check_length(mode.equity, count, f"modes[{index}].equity")
            _check_length(mode.margin_ratio, count, f"modes[{index}].margin_ratio")
            for number, track in enumerate(mode.positions):
                where = f"modes[{index}].positions[{number}]"
                if track.symbol not in self.prices:
                    raise InvalidInput(f"{where}.symbol", f"no price series for {track.symbol}")
                _check_length(track.entry_price, count, f"{where}.entry_price")
                _check_length(track.liquidation_price, count, f"{where}.liquidation_price")
        for index, event in enumerate(self.events):
            if event.mode not in names:
                raise InvalidInput(f"events[{index}].mode", f"unknown mode {event.mode!r}")


def _check_length(values: Sequence[object], count: int, field: str) -> None:
    if len(values) != count:
        raise InvalidInput(field, f"has {len(values)} values for {count} timestamps")
