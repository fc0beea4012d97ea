"""Hypothesis strategies, all in one place: quantized numbers, bracket tables and portfolios.

Every strategy draws Decimals on a grid (no float ever enters) and builds values in the shape of
the portfolio contract (``docs/concepts/contract.md``): decimals as strings, brackets as rows with
``notional_floor``/``notional_cap``. Sizes are moderate (notionals from 10 to 10^7) so that
bracket changes happen often while each example stays cheap.

Portfolios are valid by construction: leverage never exceeds the bracket maximum at the entry
notional, the margin mode respects the venue's scope (Bybit one mode per account, Binance and
Hyperliquid one per symbol), and hedge legs share a symbol's mode. They are *not* necessarily
healthy: a property that needs a healthy scope says so with ``assume``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from crossmargin.core.instrument import Instrument
from crossmargin.core.numbers import format_decimal
from crossmargin.core.venues import VENUES, MarginModeScope

D = Decimal

# Few examples per property but many properties: the whole suite stays fast (set
# CROSSMARGIN_PROPERTY_EXAMPLES for a deeper search). No deadline: timings on a shared machine are
# noise, and a test must never assert wall-clock time.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("CROSSMARGIN_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Three bundled symbols per preset, all in the venue's one settle asset (so they share cross margin).
VENUE_SYMBOLS: Mapping[str, tuple[str, ...]] = {
    "binance-usdm": ("BTCUSDT", "ETHUSDT", "SOLUSDT"),
    "bybit-linear": ("BTCUSDT", "ETHUSDT", "SOLUSDT"),
    "okx-swap": ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP"),
    "hyperliquid": ("BTC", "ETH", "SOL"),
    "dydx": ("BTC-USD", "ETH-USD", "SOL-USD"),
}
VENUE_NAMES = tuple(sorted(VENUE_SYMBOLS))
# Venues whose maintenance margin is continuous in the notional (a deduction per bracket). OKX
# charges the whole notional at the tier rate, so its MM jumps at each tier cap.
CONTINUOUS_MM_VENUES = tuple(name for name in VENUE_NAMES if VENUES[name].maintenance_deduction)
# Venues with a hedge (long/short) position mode.
HEDGE_VENUES = ("binance-usdm", "bybit-linear", "okx-swap")

KINDS = ("cross", "isolated", "hedge", "mixed")


def scaled(
    mantissa_places: int, low_exponent: int, high_exponent: int
) -> st.SearchStrategy[Decimal]:
    """``m x 10^k`` with ``m`` in [1, 10) on a grid of ``mantissa_places``: log-spread, exact."""
    mantissas = st.decimals(
        min_value=1,
        max_value=D(10) - D(1).scaleb(-mantissa_places),
        places=mantissa_places,
        allow_nan=False,
        allow_infinity=False,
    )
    exponents = st.integers(min_value=low_exponent, max_value=high_exponent)
    return st.builds(lambda m, k: m.scaleb(k), mantissas, exponents)


def prices() -> st.SearchStrategy[Decimal]:
    """Prices from 0.1 to about 10^5, five significant digits."""
    return scaled(4, -1, 4)


def notionals() -> st.SearchStrategy[Decimal]:
    """Entry notionals from 10 to about 10^7."""
    return scaled(3, 1, 6)


def fractions(low: str, high: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=D(low), max_value=D(high), places=places, allow_nan=False, allow_infinity=False
    )


def quantity_for(notional: Decimal, price: Decimal) -> Decimal:
    """A size of about ``notional / price`` on a 10^-6 grid, never zero."""
    quantity = (notional / price).quantize(D("1e-6"), rounding=ROUND_FLOOR)
    return max(quantity, D("1e-6"))


@st.composite
def bracket_tables(draw: st.DrawFn, *, derive_rates: bool = False) -> list[dict[str, Any]]:
    """A valid multi-bracket table in the contract's row shape, maintenance amounts left derived.

    Caps grow by a factor of 2 to 10 from a first cap of 10^3..10^6; rates never decrease and stay
    below the initial rate at the bracket's maximum leverage; maximum leverage never increases.
    With ``derive_rates`` the rows carry no rate (Hyperliquid derives it from max leverage).
    """
    count = draw(st.integers(min_value=1, max_value=4))
    first_cap = draw(scaled(1, 3, 5))
    leverages = sorted(
        draw(st.lists(st.integers(min_value=2, max_value=100), min_size=count, max_size=count)),
        reverse=True,
    )
    rows: list[dict[str, Any]] = []
    floor = D(0)
    cap = first_cap
    rate = D(0)
    for index, max_leverage in enumerate(leverages):
        last = index == count - 1
        unbounded = last and draw(st.booleans())
        ceiling = (D(1) / (2 * max_leverage)).quantize(D("1e-4"), rounding=ROUND_FLOOR)
        rate = draw(fractions(str(rate), str(max(rate, ceiling)), 4))
        row: dict[str, Any] = {
            "notional_floor": format_decimal(floor),
            "notional_cap": None if unbounded else format_decimal(cap),
            "max_leverage": max_leverage,
        }
        if not derive_rates:
            row["maintenance_margin_rate"] = format_decimal(rate)
        rows.append(row)
        floor = cap
        cap = cap * draw(st.integers(min_value=2, max_value=10))
    return rows


def _margin_modes(
    draw: st.DrawFn, venue: str, kind: str, legs: Sequence[tuple[str, str]]
) -> list[str]:
    if kind in ("cross", "hedge"):
        return ["cross"] * len(legs)
    if kind == "isolated":
        return ["isolated"] * len(legs)
    scope = VENUES[venue].margin_mode_scope
    if scope is MarginModeScope.ACCOUNT:
        mode = draw(st.sampled_from(("cross", "isolated")))
        return [mode] * len(legs)
    if scope is MarginModeScope.SYMBOL:
        per_symbol = {symbol: draw(st.sampled_from(("cross", "isolated"))) for symbol, _ in legs}
        return [per_symbol[symbol] for symbol, _ in legs]
    return [draw(st.sampled_from(("cross", "isolated"))) for _ in legs]


def _legs(draw: st.DrawFn, venue: str, kind: str, max_symbols: int) -> list[tuple[str, str]]:
    symbols = draw(
        st.lists(
            st.sampled_from(VENUE_SYMBOLS[venue]), min_size=1, max_size=max_symbols, unique=True
        )
    )
    legs = [(symbol, draw(st.sampled_from(("long", "short")))) for symbol in symbols]
    if kind == "hedge":
        first = symbols[0]
        legs = [(first, "long"), (first, "short"), *legs[1:]]
    return legs


def _instrument(venue: str, symbol: str, rows: list[dict[str, Any]] | None) -> Instrument:
    if rows is None:
        found = VENUES[venue].instrument(symbol)
        assert found is not None, (venue, symbol)
        return found
    return VENUES[venue].build_instrument(symbol, rows, "instruments")


def _max_leverage(instrument: Instrument, notional: Decimal) -> int:
    limit = instrument.bracket_for(notional).max_leverage
    return 100 if limit is None else int(limit)


@st.composite
def portfolios(
    draw: st.DrawFn,
    *,
    venues: Sequence[str] = VENUE_NAMES,
    kinds: Sequence[str] = KINDS,
    max_symbols: int = 3,
    with_marks: bool | None = None,
    stressed: bool = False,
) -> dict[str, Any]:
    """A portfolio object of the contract: cross, isolated, hedge (both legs of one symbol, cross)
    or mixed (cross and isolated where the venue's margin-mode scope allows).

    Brackets are the bundled preset's or a drawn table (per symbol). Marks move from entry by at
    most half the initial margin rate so most drawn books are healthy; ``with_marks=False`` leaves
    the marks out (they default to the entry prices). ``stressed`` draws thin margins and marks
    moved by up to twice the initial margin rate, so many scopes are already past maintenance.
    """
    kind = draw(st.sampled_from(kinds))
    venue = draw(st.sampled_from([v for v in venues if kind != "hedge" or v in HEDGE_VENUES]))
    legs = _legs(draw, venue, kind, max_symbols)
    modes = _margin_modes(draw, venue, kind, legs)
    custom: dict[str, list[dict[str, Any]] | None] = {}
    entries: dict[str, Decimal] = {}
    for symbol, _ in legs:
        if symbol not in custom:
            use_table = draw(st.booleans())
            derive = venue == "hyperliquid" and draw(st.booleans())
            custom[symbol] = draw(bracket_tables(derive_rates=derive)) if use_table else None
            entries[symbol] = draw(prices())
    positions: list[dict[str, Any]] = []
    leverage_of: dict[str, int] = {}
    for (symbol, side), mode in zip(legs, modes, strict=True):
        instrument = _instrument(venue, symbol, custom[symbol])
        price = entries[symbol]
        notional = draw(notionals())
        if instrument.max_notional is not None:
            notional = min(notional, instrument.max_notional)
        quantity = quantity_for(notional, price)
        top = _max_leverage(instrument, quantity * price)
        leverage = draw(st.integers(min_value=1, max_value=min(top, 50)))
        leverage_of[symbol] = max(leverage_of.get(symbol, 1), leverage)
        position: dict[str, Any] = {
            "symbol": symbol,
            "side": side,
            "quantity": format_decimal(quantity),
            "entry_price": format_decimal(price),
            "leverage": str(leverage),
            "margin_mode": mode,
        }
        if mode == "isolated":
            initial = quantity * price / leverage
            factor = draw(fractions("0.3", "1", 2) if stressed else fractions("0.6", "3", 2))
            margin = (initial * factor).quantize(D("0.01"), rounding=ROUND_CEILING)
            position["isolated_margin"] = format_decimal(max(margin, D("0.01")))
        positions.append(position)
    total_initial = sum(
        (D(p["quantity"]) * D(p["entry_price"]) / D(p["leverage"]) for p in positions), D(0)
    )
    wallet_factor = fractions("0", "0.5", 2) if stressed else fractions("0", "4", 2)
    wallet = (total_initial * draw(wallet_factor)).quantize(D("0.01"))
    portfolio: dict[str, Any] = {
        "venue": venue,
        "wallet_balance": format_decimal(wallet),
        "position_mode": "hedge" if kind == "hedge" else "one-way",
        "positions": positions,
    }
    marks = stressed or (draw(st.booleans()) if with_marks is None else with_marks)
    if marks:
        moved = {}
        for symbol, price in entries.items():
            if stressed:  # against the symbol's first position, by up to twice its margin rate
                against = -1 if next(side for sym, side in legs if sym == symbol) == "long" else 1
                move = against * draw(fractions("0", "2", 3)) / leverage_of[symbol]
            else:
                move = draw(fractions("-0.5", "0.5", 3)) / leverage_of[symbol]
            move = max(move, D("-0.9"))
            moved[symbol] = format_decimal((price * (1 + move)).quantize(D("1e-4")))
        portfolio["mark_prices"] = moved
    tables = {symbol: {"brackets": rows} for symbol, rows in custom.items() if rows is not None}
    if tables:
        portfolio["instruments"] = tables
    return portfolio
