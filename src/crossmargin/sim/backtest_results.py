"""Backtest results, and the rules of its inputs that every run shares.

What it owns: what a run produces (per-mark :class:`Sample` values, one :class:`ModeResult` per
margin mode with its summary numbers in USD, the whole :class:`BacktestResult`), the maximum
drawdown over a run's equity (USD, and as a fraction of the peak rounded up so it is never
understated), the funding schedule (00:00, 08:00, 16:00 UTC), how many base units a position
opens (:func:`quantity_for`: the spec's quantity, or its USD notional / price floored to the
quantity step, never more than asked) and :func:`check_market`, which refuses candles that cannot
serve the spec before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from crossmargin.core.errors import InvalidInput, InvariantViolation
from crossmargin.core.numbers import ZERO
from crossmargin.core.position import Position
from crossmargin.sim.backtest_events import LIQUIDATION_KINDS, Activity
from crossmargin.sim.feed import AlignedCandles
from crossmargin.sim.spec import BacktestSpec, PositionSpec

FUNDING_HOURS = frozenset({0, 8, 16})


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionSample:
    entry_price: Decimal | None
    liquidation_price: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    timestamp: datetime
    candle_start: datetime
    prices: Mapping[str, Decimal]
    equity: Decimal
    margin_ratio: Decimal | None
    capital: Decimal
    positions: Mapping[str, PositionSample]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeResult:
    """One margin mode's run: samples, activities and the summary numbers (USD)."""

    mode: str
    start_equity: Decimal
    final_equity: Decimal
    final_wallet: Decimal
    max_drawdown_usd: Decimal
    max_drawdown_fraction: Decimal
    fees_paid: Decimal
    liquidation_fees: Decimal
    funding_paid: Decimal
    top_ups: Decimal
    capital_peak: Decimal
    capital_average: Decimal
    samples: tuple[Sample, ...]
    activities: tuple[Activity, ...]
    open_positions: tuple[Position, ...]
    commands: int
    state_hash: str

    @property
    def liquidations(self) -> tuple[Activity, ...]:
        return tuple(a for a in self.activities if a.kind in LIQUIDATION_KINDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestResult:
    spec: BacktestSpec
    market: AlignedCandles
    source: str
    modes: tuple[ModeResult, ...]
    seconds: float
    marks_posted: int = 0
    notes: tuple[str, ...] = field(default=())


def max_drawdown(equities: Iterable[Decimal], start: Decimal) -> tuple[Decimal, Decimal]:
    """The largest fall from a running peak (USD) and that fall over its peak, rounded up to
    0.01%; the peak starts at the first equity (``start`` when there is none)."""
    values = list(equities)
    peak = values[0] if values else start
    drawdown = ZERO
    fraction = ZERO
    for value in values:
        peak = max(peak, value)
        if peak - value > drawdown:
            drawdown = peak - value
            fraction = drawdown / peak if peak > 0 else ZERO
    return drawdown, fraction.quantize(Decimal("0.0001"), rounding=ROUND_CEILING)


def is_funding_time(moment: datetime) -> bool:
    return moment.minute == 0 and moment.second == 0 and moment.hour in FUNDING_HOURS


def quantity_for(spec: PositionSpec, price: Decimal, step: Decimal) -> Decimal:
    """Base units to open: the spec's quantity, or its USD notional / price floored to ``step``."""
    if spec.quantity is not None:
        return spec.quantity
    notional = spec.notional_usd_asked()
    if notional is None:
        raise InvariantViolation(f"{spec.label} has no size")
    quantity = (notional / price / step).to_integral_value(rounding=ROUND_FLOOR) * step
    if quantity <= 0:
        raise InvalidInput(
            f"positions.{spec.symbol}", f"a notional of {notional} buys nothing at {price}"
        )
    return quantity


def check_market(spec: BacktestSpec, market: AlignedCandles) -> None:
    """Every position's symbol has candles; every ``open_at`` is a candle open of the window."""
    missing = [symbol for symbol in spec.symbols if symbol not in market.symbols]
    if missing:
        raise InvalidInput("positions", f"no candles for {', '.join(missing)}")
    starts = set(market.timestamps)
    for index, position in enumerate(spec.positions):
        if position.open_at is not None and position.open_at not in starts:
            raise InvalidInput(
                f"positions[{index}].open_at",
                f"{position.open_at.isoformat()} is not the open time of a candle in the run "
                f"({market.timestamps[0].isoformat()} to {market.timestamps[-1].isoformat()})",
            )
    if spec.funding.series is not None:
        for stamp in market.timestamps:
            end = stamp + market.interval
            if is_funding_time(end):
                for symbol in spec.symbols:
                    spec.funding.rate(symbol, end)
