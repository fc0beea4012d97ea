"""Venue presets: each venue's margin rules as data plus a few flags read by the formulas.

Every CEX-style venue defines maintenance as ``MM = N * MMR - deduction`` and liquidates when
equity falls to it; presets differ only in a handful of published choices, captured here:

* ``maintenance_deduction``: Binance/Bybit/Hyperliquid/dYdX subtract the bracket's maintenance
  amount (continuous MM); OKX charges the whole notional at the tier's rate (no deduction).
* ``fee_buffer_in_maintenance``: OKX adds the taker fee rate to the maintenance rate
  (``MR = equity / (N * (MMR + taker))``).
* ``isolated_maintenance_at_entry``: Bybit's published isolated formula values MM at the entry
  price (``LP = EP - (IM - MM)/qty``); everyone else values it at mark.
* ``close_fee_in_initial_margin``: Bybit adds the estimated fee to close (at the bankruptcy
  price, taker rate) to initial margin.
* ``derive_rate_from_max_leverage``: Hyperliquid's tier maintenance rate is ``1 / (2 x max
  leverage)`` when the tier gives none.
* ``margin_mode_scope`` and the switch rules: where cross/isolated is chosen and when a switch is
  refused (Binance: per symbol, refused with an open position or open orders; Hyperliquid: per
  asset, refused with an open position).

Bracket tables are bundled JSON under ``crossmargin/data`` with their sources; a table is parsed
into :class:`Instrument` objects lazily, per symbol, and cached.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from functools import cache
from importlib import resources
from typing import Any

from crossmargin.core.errors import InvalidInput
from crossmargin.core.instrument import BracketRow, Instrument, make_brackets
from crossmargin.core.numbers import ONE, parse_decimal, parse_non_negative, round_rate


class MarginModeScope(Enum):
    SYMBOL = "symbol"  # one margin mode per symbol (both hedge legs share it)
    ACCOUNT = "account"  # one margin mode for the whole account
    POSITION = "position"  # chosen per position / order; modes coexist on one symbol


@dataclass(frozen=True, slots=True, kw_only=True)
class SwitchRules:
    """When a margin-mode or position-mode switch is refused, with the venue's error codes."""

    margin_mode_refused_with_position: bool
    margin_mode_refused_with_orders: bool
    position_mode_refused_with_position: bool = True
    position_mode_refused_with_orders: bool = True
    venue_codes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class VenueRules:
    name: str
    title: str
    data_file: str
    margin_mode_scope: MarginModeScope
    switch: SwitchRules
    taker_fee_rate: Decimal
    maker_fee_rate: Decimal
    liquidation_fee_rate: Decimal = Decimal(0)  # the clearance fee (Binance, dYdX)
    # The bracket and margin rules where venues differ; the defaults are the common case, and a
    # preset names only where its venue departs from them.
    maintenance_deduction: bool = True  # MM = notional x rate - the bracket's amount (not OKX)
    fee_buffer_in_maintenance: bool = False  # MM adds the closing fee (OKX)
    isolated_maintenance_at_entry: bool = False  # isolated MM on the entry notional (Bybit)
    close_fee_in_initial_margin: bool = False  # IM adds the fee to close at bankruptcy (Bybit)
    derive_rate_from_max_leverage: bool = False  # rate = 1 / (2 x max leverage) (Hyperliquid)
    hedge_mode: bool = True  # False where the venue has no long/short position mode

    def instrument(self, symbol: str) -> Instrument | None:
        """The bundled instrument for ``symbol``, or None if this venue's table lacks it."""
        return _bundled_instrument(self.name, symbol)

    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted(_bundled_table(self.data_file)["symbols"]))

    def build_instrument(
        self,
        symbol: str,
        rows: list[dict[str, Any]],
        field_path: str,
        settle_asset: str = "USDT",
        taker_fee_rate: Decimal | None = None,
        maker_fee_rate: Decimal | None = None,
        liquidation_fee_rate: Decimal | None = None,
    ) -> Instrument:
        """Build an instrument from bracket rows in the contract's shape, applying venue rules."""
        parsed = [self._bracket_row(row, f"{field_path}[{i}]") for i, row in enumerate(rows)]
        return Instrument(
            symbol=symbol,
            settle_asset=settle_asset,
            brackets=make_brackets(parsed, field_path),
            taker_fee_rate=self.taker_fee_rate if taker_fee_rate is None else taker_fee_rate,
            maker_fee_rate=self.maker_fee_rate if maker_fee_rate is None else maker_fee_rate,
            liquidation_fee_rate=self.liquidation_fee_rate
            if liquidation_fee_rate is None
            else liquidation_fee_rate,
        )

    def _bracket_row(self, row: object, where: str) -> BracketRow:
        if not isinstance(row, dict):
            raise InvalidInput(where, "expected an object")
        allowed = {
            "bracket",
            "notional_floor",
            "notional_cap",
            "maintenance_margin_rate",
            "maintenance_amount",
            "max_leverage",
        }
        unknown = sorted(set(row) - allowed)
        if unknown:
            raise InvalidInput(f"{where}.{unknown[0]}", "unknown field")
        if "notional_floor" not in row:
            raise InvalidInput(f"{where}.notional_floor", "is required")
        if "notional_cap" not in row:
            raise InvalidInput(f"{where}.notional_cap", "is required (null for unbounded)")
        floor = parse_non_negative(row["notional_floor"], f"{where}.notional_floor")
        cap_raw = row["notional_cap"]
        cap = None if cap_raw is None else parse_decimal(cap_raw, f"{where}.notional_cap")
        lev_raw = row.get("max_leverage")
        max_leverage = None if lev_raw is None else parse_decimal(lev_raw, f"{where}.max_leverage")
        if max_leverage is not None and max_leverage <= 0:
            raise InvalidInput(f"{where}.max_leverage", "must be positive")
        rate_raw = row.get("maintenance_margin_rate")
        rate = (
            None
            if rate_raw is None
            else parse_decimal(rate_raw, f"{where}.maintenance_margin_rate")
        )
        if rate is None and self.derive_rate_from_max_leverage and max_leverage is not None:
            rate = round_rate(ONE / (2 * max_leverage))
        amount_raw = row.get("maintenance_amount")
        amount = (
            None if amount_raw is None else parse_decimal(amount_raw, f"{where}.maintenance_amount")
        )
        if not self.maintenance_deduction:
            amount = Decimal(0)
        return BracketRow(
            floor=floor,
            cap=cap,
            maintenance_margin_rate=rate,
            maintenance_amount=amount,
            max_leverage=max_leverage,
        )


def margin_mode_group(rules: VenueRules, symbol: str) -> str | None:
    """Which positions share one margin mode: ``""`` the whole account (Bybit), ``symbol`` its
    symbol (Binance, Hyperliquid), None each position chooses its own (OKX, dYdX)."""
    if rules.margin_mode_scope is MarginModeScope.ACCOUNT:
        return ""
    if rules.margin_mode_scope is MarginModeScope.SYMBOL:
        return symbol
    return None


def in_margin_mode_group(rules: VenueRules, group_symbol: str, symbol: str) -> bool:
    """Does a position or order on ``symbol`` share ``group_symbol``'s margin mode (for the
    switch rules: a position-scoped venue still refuses per symbol)?"""
    return rules.margin_mode_scope is MarginModeScope.ACCOUNT or symbol == group_symbol


def margin_mode_switch_refusal(
    rules: VenueRules, *, with_position: bool, with_orders: bool
) -> str | None:
    """The reason code (``MARGIN_MODE_SWITCH_WITH_OPEN_POSITION`` / ``..._ORDERS``) the venue
    refuses a margin-mode switch with, given what the group holds; None when it allows it."""
    if rules.switch.margin_mode_refused_with_position and with_position:
        return "MARGIN_MODE_SWITCH_WITH_OPEN_POSITION"
    if rules.switch.margin_mode_refused_with_orders and with_orders:
        return "MARGIN_MODE_SWITCH_WITH_OPEN_ORDERS"
    return None


def position_mode_switch_refusal(
    rules: VenueRules, *, with_position: bool, with_orders: bool
) -> str | None:
    """The reason code a position-mode (one-way / hedge) switch is refused with, or None."""
    if rules.switch.position_mode_refused_with_position and with_position:
        return "POSITION_MODE_SWITCH_WITH_OPEN_POSITION"
    if rules.switch.position_mode_refused_with_orders and with_orders:
        return "POSITION_MODE_SWITCH_WITH_OPEN_ORDERS"
    return None


BINANCE_USDM = VenueRules(
    name="binance-usdm",
    title="Binance USD-M futures",
    data_file="binance-usdm-2024-10.json",
    margin_mode_scope=MarginModeScope.SYMBOL,
    switch=SwitchRules(
        margin_mode_refused_with_position=True,
        margin_mode_refused_with_orders=True,
        venue_codes={
            "MARGIN_MODE_SWITCH_WITH_OPEN_ORDERS": "-4047",
            "MARGIN_MODE_SWITCH_WITH_OPEN_POSITION": "-4048",
            "MARGIN_MODE_UNCHANGED": "-4046",
            "POSITION_MODE_SWITCH_WITH_OPEN_ORDERS": "-4067",
            "POSITION_MODE_SWITCH_WITH_OPEN_POSITION": "-4068",
            "POSITION_MODE_UNCHANGED": "-4059",
            "NOT_ISOLATED": "-4049",
            "INSUFFICIENT_MARGIN": "-2019",
        },
    ),
    taker_fee_rate=Decimal("0.0005"),
    maker_fee_rate=Decimal("0.0002"),
    liquidation_fee_rate=Decimal("0.0125"),
)

BYBIT_LINEAR = VenueRules(
    name="bybit-linear",
    title="Bybit USDT perpetual (linear)",
    data_file="bybit-linear.json",
    isolated_maintenance_at_entry=True,
    close_fee_in_initial_margin=True,
    margin_mode_scope=MarginModeScope.ACCOUNT,
    switch=SwitchRules(
        margin_mode_refused_with_position=True,
        margin_mode_refused_with_orders=True,
        venue_codes={"NOT_ISOLATED": "110015", "INSUFFICIENT_MARGIN": "110014"},
    ),
    taker_fee_rate=Decimal("0.00055"),
    maker_fee_rate=Decimal("0.0002"),
)

OKX_SWAP = VenueRules(
    name="okx-swap",
    title="OKX USDT-margined swap",
    data_file="okx-swap.json",
    maintenance_deduction=False,
    fee_buffer_in_maintenance=True,
    margin_mode_scope=MarginModeScope.POSITION,
    switch=SwitchRules(
        margin_mode_refused_with_position=False,
        margin_mode_refused_with_orders=False,
    ),
    taker_fee_rate=Decimal("0.0005"),
    maker_fee_rate=Decimal("0.0002"),
)

HYPERLIQUID = VenueRules(
    name="hyperliquid",
    title="Hyperliquid perpetuals",
    data_file="hyperliquid.json",
    derive_rate_from_max_leverage=True,
    margin_mode_scope=MarginModeScope.SYMBOL,
    hedge_mode=False,
    switch=SwitchRules(
        margin_mode_refused_with_position=True,
        margin_mode_refused_with_orders=False,
        venue_codes={
            "MARGIN_MODE_SWITCH_WITH_OPEN_POSITION": "Cannot switch leverage type with open position.",
        },
    ),
    taker_fee_rate=Decimal("0.00045"),
    maker_fee_rate=Decimal("0.00015"),
)

DYDX = VenueRules(
    name="dydx",
    title="dYdX v4 perpetuals",
    data_file="dydx.json",
    margin_mode_scope=MarginModeScope.POSITION,
    hedge_mode=False,
    switch=SwitchRules(
        margin_mode_refused_with_position=True,
        margin_mode_refused_with_orders=True,
    ),
    taker_fee_rate=Decimal("0.0005"),
    maker_fee_rate=Decimal("0.0001"),
    liquidation_fee_rate=Decimal("0.015"),
)

VENUES: Mapping[str, VenueRules] = {
    venue.name: venue for venue in (BINANCE_USDM, BYBIT_LINEAR, OKX_SWAP, HYPERLIQUID, DYDX)
}
DEFAULT_VENUE = BINANCE_USDM.name


def venue(name: str, field_path: str = "venue") -> VenueRules:
    """The preset called ``name``; an InvalidInput naming ``field_path`` otherwise."""
    try:
        return VENUES[name]
    except KeyError:
        known = ", ".join(sorted(VENUES))
        raise InvalidInput(field_path, f"unknown venue {name!r} (known: {known})") from None


@cache
def _bundled_table(data_file: str) -> dict[str, Any]:
    text = resources.files("crossmargin.data").joinpath(data_file).read_text(encoding="utf-8")
    table: dict[str, Any] = json.loads(text, parse_float=Decimal)
    return table


@cache
def _bundled_instrument(venue_name: str, symbol: str) -> Instrument | None:
    rules = VENUES[venue_name]
    entry = _bundled_table(rules.data_file)["symbols"].get(symbol)
    if entry is None:
        return None

    def rate(key: str) -> Decimal | None:
        value = entry.get(key)
        return None if value is None else parse_decimal(value, f"{symbol}.{key}")

    return rules.build_instrument(
        symbol,
        entry["brackets"],
        f"{rules.data_file}:{symbol}.brackets",
        settle_asset=entry.get("settle", "USDT"),
        taker_fee_rate=rate("taker_fee_rate"),
        maker_fee_rate=rate("maker_fee_rate"),
        liquidation_fee_rate=rate("liquidation_fee_rate"),
    )
