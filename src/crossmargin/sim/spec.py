"""The backtest SPEC as a value: the frozen :class:`BacktestSpec` the backtest trusts.

What it owns: the spec's shape once validated (a venue, a USD wallet, margin modes, positions
sized by quantity, USD notional or USD margin, funding, the top-up and rebalance rules, a sweep,
the market data and window) and the symbol naming between candle files and venues
(:func:`market_symbol`, :func:`venue_instrument`). Reading and validating a SPEC document is
:mod:`crossmargin.sim.spec_load` (fields in :mod:`crossmargin.sim.spec_fields`, rules, funding and
sweeps in :mod:`crossmargin.sim.spec_rules`); docs/backtest.md is the full reference.

Invariants of a :class:`BacktestSpec`: at least one position, one per symbol; leverages within
the venue's first-bracket maximum is NOT checked here (the engine checks it against the notional);
ratios lie in (0, 1]; rule symbols are positions of the spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from crossmargin.core.errors import InvalidInput
from crossmargin.core.position import MarginMode, Side
from crossmargin.core.venues import VenueRules

MODES = ("cross", "isolated", "mixed")
DEFAULT_MODES = ("cross", "isolated")
DEFAULT_FUNDING_RATE = Decimal("0.0001")  # 0.01% per 8 h: the interest baseline most venues use
DEFAULT_QUANTITY_STEP = Decimal("0.000001")


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionSpec:
    """A position to open: size by ``quantity``, ``notional_usd`` or ``margin_usd`` (one of)."""

    label: str
    symbol: str  # the market-data symbol (candle files): BTCUSDT
    side: Side
    leverage: Decimal
    instrument: str = ""  # the venue's name for it (BTC-USDT-SWAP on okx-swap); default symbol
    quantity: Decimal | None = None
    notional_usd: Decimal | None = None
    margin_usd: Decimal | None = None
    margin_mode: MarginMode = MarginMode.CROSS
    open_at: datetime | None = None
    stop_price: Decimal | None = None

    def notional_usd_asked(self) -> Decimal | None:
        """The USD notional asked for (None when sized by quantity)."""
        if self.notional_usd is not None:
            return self.notional_usd
        if self.margin_usd is not None:
            return self.margin_usd * self.leverage
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class TopUpRule:
    """Add isolated margin when a scope's margin ratio reaches ``trigger_ratio``, enough to bring
    it back to ``target_ratio``; at most ``budget_usd`` in all (None: whatever the wallet has)."""

    trigger_ratio: Decimal
    target_ratio: Decimal
    budget_usd: Decimal | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RebalanceRule:
    """Every ``every_hours`` (at candle closes), trade the ``hedge`` position back to ``ratio`` x
    the ``base`` position's notional when it has drifted more than ``band`` (a fraction) away."""

    base: str
    hedge: str
    ratio: Decimal
    band: Decimal
    every_hours: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FundingSpec:
    """A constant rate per funding interval, or a series ``(symbol, time) -> rate``."""

    constant: Decimal | None = DEFAULT_FUNDING_RATE
    series: Mapping[tuple[str, datetime], Decimal] | None = None
    source: str = "constant"

    def rate(self, symbol: str, when: datetime) -> Decimal:
        if self.series is None:
            return self.constant if self.constant is not None else Decimal(0)
        rate = self.series.get((symbol, when))
        if rate is None:
            raise InvalidInput(
                "funding.file", f"{self.source} has no {symbol} rate for {when.isoformat()}"
            )
        return rate


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepSpec:
    """Values to sweep: leverages (margin fixed) or isolated allocations (notional fixed)."""

    parameter: str  # "leverage" | "allocation"
    values: tuple[Decimal, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestSpec:
    name: str
    venue: str
    wallet: Decimal
    modes: tuple[str, ...]
    positions: tuple[PositionSpec, ...]
    funding: FundingSpec = FundingSpec()
    top_up: TopUpRule | None = None
    rebalance: RebalanceRule | None = None
    sweep: SweepSpec | None = None
    episode: str | None = None
    data: Path | None = None
    start: datetime | None = None
    end: datetime | None = None
    quantity_step: Decimal = DEFAULT_QUANTITY_STEP

    @property
    def symbols(self) -> tuple[str, ...]:
        """Market-data symbols, in the spec's order."""
        return tuple(position.symbol for position in self.positions)

    @property
    def instruments(self) -> tuple[str, ...]:
        """The venue's instrument names, in the spec's order."""
        return tuple(position.instrument for position in self.positions)

    def position(self, symbol: str) -> PositionSpec:
        """The position on ``symbol`` (a market-data symbol or the venue's instrument name)."""
        for position in self.positions:
            if symbol in (position.symbol, position.instrument):
                return position
        raise InvalidInput("symbol", f"{symbol} is not a position of this spec")


QUOTE_SUFFIXES = ("-USDT-SWAP", "-USDT", "-USD", "USDT", "USDC", "USD")


def base_asset(symbol: str) -> str:
    """``BTCUSDT``, ``BTC-USDT-SWAP``, ``BTC-USD`` and ``BTC`` all trade the base asset BTC."""
    for suffix in QUOTE_SUFFIXES:
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return symbol[: -len(suffix)]
    return symbol


def venue_instrument(rules: VenueRules, symbol: str) -> str | None:
    """The venue's name for ``symbol``: itself when the venue lists it, else the same base asset
    under the venue's naming (``BTCUSDT`` is ``BTC-USDT-SWAP`` on OKX, ``BTC`` on Hyperliquid,
    ``BTC-USD`` on dYdX)."""
    if rules.instrument(symbol) is not None:
        return symbol
    base = base_asset(symbol)
    for candidate in (f"{base}USDT", f"{base}-USDT-SWAP", base, f"{base}-USD"):
        if rules.instrument(candidate) is not None:
            return candidate
    return None


def market_symbol(symbol: str) -> str:
    """The candle files' symbol for a position written as ``symbol``: Binance-style BASEUSDT."""
    return symbol if symbol.endswith(("USDT", "USDC")) else f"{base_asset(symbol)}USDT"
