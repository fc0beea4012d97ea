"""The portfolio contract: JSON-shaped input -> :class:`Book`, and a report -> JSON-shaped output.

This is the one edge where a portfolio is validated; every error names the field by its path
(``positions[1].quantity``) and the problem. Decimals arrive as JSON strings or numbers (the
caller decodes JSON with ``parse_float=Decimal``) and leave as strings at full precision.

Input:  venue?, wallet_balance, position_mode?, positions[{symbol, side, quantity, entry_price,
        leverage, margin_mode, isolated_margin?}], mark_prices?, instruments?
Output: venue, wallet_balance, unrealized_pnl, margin_balance, initial_margin, maintenance_margin,
        available_balance, margin_ratio, liquidatable, positions[...] (see docs/concepts/contract.md)
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from crossmargin.core.errors import InvalidInput
from crossmargin.core.instrument import Instrument
from crossmargin.core.numbers import (
    format_decimal,
    parse_non_negative,
    parse_positive,
)
from crossmargin.core.position import MarginMode, Position, PositionMode, Side
from crossmargin.core.risk import AccountReport, Book, PositionReport
from crossmargin.core.venues import (
    DEFAULT_VENUE,
    VenueRules,
    margin_mode_group,
    venue,
)

PORTFOLIO_FIELDS = frozenset(
    {"venue", "wallet_balance", "position_mode", "positions", "mark_prices", "instruments"}
)
POSITION_FIELDS = frozenset(
    {"symbol", "side", "quantity", "entry_price", "leverage", "margin_mode", "isolated_margin"}
)
INSTRUMENT_FIELDS = frozenset(
    {"brackets", "taker_fee_rate", "maker_fee_rate", "liquidation_fee_rate", "settle_asset"}
)


def _object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(field or "portfolio", f"expected an object, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)


def _no_unknown(data: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidInput(f"{prefix}{unknown[0]}", "unknown field")


def _choice(value: object, field: str, options: Mapping[str, Any]) -> Any:
    if not isinstance(value, str) or value not in options:
        known = ", ".join(sorted(options))
        raise InvalidInput(field, f"expected one of {known}, got {value!r}")
    return options[value]


def _string(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "expected a non-empty string")
    return value


def _required(data: Mapping[str, Any], key: str, prefix: str) -> Any:
    if key not in data or data[key] is None:
        raise InvalidInput(f"{prefix}{key}", "is required")
    return data[key]


def parse_instruments(rules: VenueRules, raw: object) -> dict[str, Instrument]:
    """The portfolio's ``instruments`` overrides, built with the venue's rules."""
    table = _object(raw, "instruments")
    result: dict[str, Instrument] = {}
    for symbol, spec_raw in table.items():
        where = f"instruments.{symbol}"
        spec = _object(spec_raw, where)
        _no_unknown(spec, INSTRUMENT_FIELDS, f"{where}.")
        rows = _required(spec, "brackets", f"{where}.")
        if not isinstance(rows, list):
            raise InvalidInput(f"{where}.brackets", f"expected a list, got {_kind(rows)}")
        base = rules.instrument(symbol)

        def rate(key: str, spec: dict[str, Any] = spec, where: str = where) -> Decimal | None:
            if spec.get(key) is None:
                return None
            value = parse_non_negative(spec[key], f"{where}.{key}")
            if value >= 1:
                raise InvalidInput(f"{where}.{key}", "must be below 1")
            return value

        settle = spec.get("settle_asset", base.settle_asset if base else "USDT")
        result[symbol] = rules.build_instrument(
            symbol,
            rows,
            f"{where}.brackets",
            settle_asset=_string(settle, f"{where}.settle_asset"),
            taker_fee_rate=rate("taker_fee_rate"),
            maker_fee_rate=rate("maker_fee_rate"),
            liquidation_fee_rate=rate("liquidation_fee_rate"),
        )
    return result


def _parse_position(
    raw: object, index: int, rules: VenueRules, instruments: dict[str, Instrument]
) -> Position:
    where = f"positions[{index}]"
    data = _object(raw, where)
    prefix = f"{where}."
    _no_unknown(data, POSITION_FIELDS, prefix)
    symbol = _string(_required(data, "symbol", prefix), f"{prefix}symbol")
    if symbol not in instruments:
        found = rules.instrument(symbol)
        if found is None:
            raise InvalidInput(
                f"{prefix}symbol",
                f"{symbol!r} has no brackets on {rules.name}; give them under instruments.{symbol}",
            )
        instruments[symbol] = found
    side = _choice(_required(data, "side", prefix), f"{prefix}side", {s.value: s for s in Side})
    quantity = parse_positive(_required(data, "quantity", prefix), f"{prefix}quantity")
    entry_price = parse_positive(_required(data, "entry_price", prefix), f"{prefix}entry_price")
    leverage = parse_positive(_required(data, "leverage", prefix), f"{prefix}leverage")
    mode = _choice(
        _required(data, "margin_mode", prefix),
        f"{prefix}margin_mode",
        {m.value: m for m in MarginMode},
    )
    isolated_margin: Decimal | None = None
    if mode is MarginMode.ISOLATED:
        if data.get("isolated_margin") is None:
            raise InvalidInput(f"{prefix}isolated_margin", "is required for an isolated position")
        isolated_margin = parse_positive(data["isolated_margin"], f"{prefix}isolated_margin")
    elif data.get("isolated_margin") is not None:
        raise InvalidInput(f"{prefix}isolated_margin", "only isolated positions carry one")
    position = Position(
        symbol=symbol,
        side=side,
        quantity=quantity,
        entry_notional=quantity * entry_price,
        leverage=leverage,
        margin_mode=mode,
        isolated_margin=isolated_margin,
    )
    _check_leverage(position, instruments[symbol], f"{prefix}leverage")
    return position


def _check_leverage(position: Position, instrument: Instrument, field: str) -> None:
    """Leverage is checked against the bracket of the notional at entry (when it was chosen)."""
    notional = position.entry_notional
    cap = instrument.max_notional
    if cap is not None and notional > cap:
        raise InvalidInput(
            field.rsplit(".", 1)[0] + ".quantity",
            f"entry notional {format_decimal(notional)} exceeds the largest bracket "
            f"({format_decimal(cap)}) of {instrument.symbol}",
        )
    bracket = instrument.bracket_for(notional)
    if bracket.max_leverage is not None and position.leverage > bracket.max_leverage:
        raise InvalidInput(
            field,
            f"{format_decimal(position.leverage)}x is above the maximum "
            f"{format_decimal(bracket.max_leverage)}x for a notional of "
            f"{format_decimal(notional)} on {instrument.symbol}",
        )


def _check_slots(positions: list[Position], mode: PositionMode, rules: VenueRules) -> None:
    seen: dict[tuple[str, Side | None], int] = {}
    modes: dict[str, MarginMode] = {}
    for index, position in enumerate(positions):
        key = (position.symbol, position.side if mode is PositionMode.HEDGE else None)
        if key in seen:
            what = "side" if mode is PositionMode.HEDGE else "symbol"
            raise InvalidInput(
                f"positions[{index}]",
                f"a second {position.symbol} position on the same {what} "
                f"(positions[{seen[key]}]); {mode.value} mode holds one",
            )
        seen[key] = index
        group = margin_mode_group(rules, position.symbol)
        if group is not None:
            previous = modes.setdefault(group, position.margin_mode)
            if previous is not position.margin_mode:
                where = "per account" if group == "" else "per symbol"
                raise InvalidInput(
                    f"positions[{index}].margin_mode",
                    f"{rules.name} sets the margin mode {where}; this position's "
                    f"{position.margin_mode.value} conflicts with {previous.value}",
                )


def parse_portfolio(raw: object) -> Book:
    """Validate one portfolio object of the contract and build its :class:`Book`."""
    data = _object(raw, "")
    _no_unknown(data, PORTFOLIO_FIELDS, "")
    venue_name = data.get("venue", DEFAULT_VENUE)
    rules = venue(_string(venue_name, "venue"))
    wallet = parse_non_negative(_required(data, "wallet_balance", ""), "wallet_balance")
    mode = _choice(
        data.get("position_mode", PositionMode.ONE_WAY.value),
        "position_mode",
        {m.value: m for m in PositionMode},
    )
    if mode is PositionMode.HEDGE and not rules.hedge_mode:
        raise InvalidInput("position_mode", f"{rules.name} has no hedge mode (one-way only)")
    instruments = parse_instruments(rules, data.get("instruments", {}))
    positions_raw = _required(data, "positions", "")
    if not isinstance(positions_raw, list):
        raise InvalidInput("positions", f"expected a list, got {_kind(positions_raw)}")
    positions = [_parse_position(p, i, rules, instruments) for i, p in enumerate(positions_raw)]
    _check_slots(positions, mode, rules)
    settle_assets = {instruments[p.symbol].settle_asset for p in positions}
    if len(settle_assets) > 1:
        raise InvalidInput(
            "positions",
            "positions settle in "
            + " and ".join(sorted(settle_assets))
            + "; cross margin is shared only within one settle asset (one portfolio per asset)",
        )
    marks = _parse_marks(data.get("mark_prices", {}), rules, instruments)
    for position in positions:
        marks.setdefault(position.symbol, position.entry_price)
    return Book(
        rules=rules,
        instruments=instruments,
        marks=marks,
        positions=tuple(positions),
        wallet_balance=wallet,
        position_mode=mode,
    )


def _parse_marks(
    raw: object, rules: VenueRules, instruments: Mapping[str, Instrument]
) -> dict[str, Decimal]:
    table = _object(raw, "mark_prices")
    marks: dict[str, Decimal] = {}
    for symbol, value in table.items():
        field = f"mark_prices.{symbol}"
        if symbol not in instruments and rules.instrument(symbol) is None:
            raise InvalidInput(field, f"unknown symbol on {rules.name}")
        marks[symbol] = parse_positive(value, field)
    return marks


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def position_json(report: PositionReport) -> dict[str, Any]:
    position = report.position
    return {
        "symbol": position.symbol,
        "side": position.side.value,
        "margin_mode": position.margin_mode.value,
        "quantity": format_decimal(position.quantity),
        "entry_price": format_decimal(position.entry_price),
        "mark_price": format_decimal(report.mark_price),
        "notional": format_decimal(report.risk.notional),
        "unrealized_pnl": format_decimal(report.risk.unrealized_pnl),
        "initial_margin": format_decimal(report.risk.initial_margin),
        "maintenance_margin": format_decimal(report.risk.maintenance_margin),
        "liquidation_price": _text(report.liquidation_price),
        "leverage": format_decimal(position.leverage),
        "bracket": report.bracket_index + 1,
        "isolated_margin": _text(position.isolated_margin),
        "margin_balance": _text(report.margin_balance),
        "margin_ratio": _text(report.margin_ratio),
        "liquidatable": report.liquidatable,
    }


def report_json(report: AccountReport) -> dict[str, Any]:
    """The contract's output object (plus a few documented extras)."""
    book = report.book
    return {
        "venue": book.rules.name,
        "position_mode": book.position_mode.value,
        "wallet_balance": format_decimal(book.wallet_balance),
        "unrealized_pnl": format_decimal(report.cross.unrealized_pnl),
        "margin_balance": format_decimal(report.margin_balance),
        "initial_margin": format_decimal(report.cross.initial_margin),
        "maintenance_margin": format_decimal(report.cross.maintenance_margin),
        "available_balance": format_decimal(report.available_balance),
        "margin_ratio": _text(report.margin_ratio),
        "liquidatable": report.liquidatable,
        "cross_liquidatable": report.cross_liquidatable,
        "isolated_margin": format_decimal(report.isolated_margin),
        "isolated_unrealized_pnl": format_decimal(report.isolated_unrealized_pnl),
        "equity": format_decimal(report.equity),
        "positions": [position_json(p) for p in report.positions],
    }
