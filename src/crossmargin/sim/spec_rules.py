"""SPEC rules: the ``rules`` (top-up, rebalance), ``funding`` and ``sweep`` sections.

What it owns: validating each section into its frozen value (:class:`TopUpRule`,
:class:`RebalanceRule`, :class:`FundingSpec`, :class:`SweepSpec`), the funding-rate CSV
(``Date,Symbol,Rate``, one row per funding time and symbol) and the CLI's ``--sweep`` option.
Margin ratios lie in (0, 1] (1 = liquidation) and a top-up's target lies below its trigger;
funding rates lie strictly between -1 and 1; sweep values are positive, distinct and sorted.
"""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import parse_decimal, parse_non_negative, parse_positive
from crossmargin.sim.candles import parse_utc_datetime
from crossmargin.sim.spec import FundingSpec, RebalanceRule, SweepSpec, TopUpRule, market_symbol
from crossmargin.sim.spec_fields import object_field, required_field, text_field


def _ratio(value: object, field: str) -> Decimal:
    ratio = parse_positive(value, field)
    if ratio > 1:
        raise InvalidInput(field, "a margin ratio lies in (0, 1] (1 = liquidation)")
    return ratio


def parse_top_up(value: object) -> TopUpRule | None:
    """``rules.top_up``: trigger and target margin ratios, an optional USD budget."""
    if value is None:
        return None
    data = object_field(value, "rules.top_up")
    unknown = sorted(set(data) - {"trigger_ratio", "target_ratio", "budget"})
    if unknown:
        raise InvalidInput(f"rules.top_up.{unknown[0]}", "unknown field")
    trigger = _ratio(
        required_field(data, "trigger_ratio", "rules.top_up."), "rules.top_up.trigger_ratio"
    )
    target = _ratio(
        required_field(data, "target_ratio", "rules.top_up."), "rules.top_up.target_ratio"
    )
    if target >= trigger:
        raise InvalidInput("rules.top_up.target_ratio", "must be below trigger_ratio")
    budget = data.get("budget")
    return TopUpRule(
        trigger_ratio=trigger,
        target_ratio=target,
        budget_usd=None if budget is None else parse_positive(budget, "rules.top_up.budget"),
    )


def parse_rebalance(value: object, symbols: set[str]) -> RebalanceRule | None:
    """``rules.rebalance``: ``base`` and ``hedge`` among ``symbols`` (the positions' candle-file
    symbols), a ratio, a band and a whole number of hours."""
    if value is None:
        return None
    where = "rules.rebalance"
    data = object_field(value, where)
    unknown = sorted(set(data) - {"base", "hedge", "ratio", "band", "every_hours"})
    if unknown:
        raise InvalidInput(f"{where}.{unknown[0]}", "unknown field")
    base = market_symbol(
        text_field(required_field(data, "base", f"{where}."), f"{where}.base").upper()
    )
    hedge = market_symbol(
        text_field(required_field(data, "hedge", f"{where}."), f"{where}.hedge").upper()
    )
    for name, symbol in (("base", base), ("hedge", hedge)):
        if symbol not in symbols:
            raise InvalidInput(f"{where}.{name}", f"{symbol} is not one of the positions")
    if base == hedge:
        raise InvalidInput(f"{where}.hedge", "must differ from base")
    every = parse_positive(data.get("every_hours", "8"), f"{where}.every_hours")
    if every != every.to_integral_value():
        raise InvalidInput(f"{where}.every_hours", "must be a whole number of hours")
    return RebalanceRule(
        base=base,
        hedge=hedge,
        ratio=parse_positive(required_field(data, "ratio", f"{where}."), f"{where}.ratio"),
        band=parse_non_negative(data.get("band", "0.1"), f"{where}.band"),
        every_hours=int(every),
    )


def parse_funding(value: object, base_dir: Path) -> FundingSpec:
    """``funding``: a constant ``rate`` or a rate series ``file`` (relative to ``base_dir``)."""
    if value is None:
        return FundingSpec()
    data = object_field(value, "funding")
    unknown = sorted(set(data) - {"rate", "file"})
    if unknown:
        raise InvalidInput(f"funding.{unknown[0]}", "unknown field (rate or file)")
    if ("rate" in data) == ("file" in data):
        raise InvalidInput("funding", "give either rate (constant) or file (a rate series)")
    if "rate" in data:
        rate = parse_decimal(data["rate"], "funding.rate")
        if abs(rate) >= 1:
            raise InvalidInput("funding.rate", "a funding rate lies strictly between -1 and 1")
        return FundingSpec(constant=rate, source=f"constant {rate}")
    path = base_dir / text_field(data["file"], "funding.file")
    return FundingSpec(constant=None, series=load_funding_series(path), source=str(path.name))


def load_funding_series(path: Path) -> dict[tuple[str, datetime], Decimal]:
    """A CSV with header ``Date,Symbol,Rate``: one row per funding time and symbol."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput("funding.file", f"cannot read {path}: {error}") from None
    reader = csv.reader(text.splitlines())
    header = next(reader, None)
    if header is None or [name.strip() for name in header] != ["Date", "Symbol", "Rate"]:
        raise InvalidInput(f"{path.name}:1", "expected the header Date,Symbol,Rate")
    series: dict[tuple[str, datetime], Decimal] = {}
    for row in reader:
        if not row or not "".join(row).strip():
            continue
        where = f"{path.name}:{reader.line_num}"
        if len(row) != 3:
            raise InvalidInput(where, f"expected 3 fields, got {len(row)}")
        when = parse_utc_datetime(row[0], f"{where}:Date")
        symbol = text_field(row[1], f"{where}:Symbol").upper()
        rate = parse_decimal(row[2], f"{where}:Rate")
        if abs(rate) >= 1:
            raise InvalidInput(f"{where}:Rate", "a funding rate lies strictly between -1 and 1")
        if (symbol, when) in series:
            raise InvalidInput(where, f"a second {symbol} rate for {when.isoformat()}")
        series[(symbol, when)] = rate
    if not series:
        raise InvalidInput("funding.file", f"{path.name} holds no rates")
    return series


def parse_sweep_option(text: str) -> SweepSpec:
    """``leverage=2,3,5`` or ``allocation=0.5,1,2`` (the ``--sweep`` option)."""
    name, separator, values = text.partition("=")
    if not separator:
        raise InvalidInput("--sweep", "expected leverage=2,3,5 or allocation=0.5,1,2")
    parsed = parse_sweep(
        {name.strip(): [part for part in values.split(",") if part.strip()]}, "--sweep"
    )
    if parsed is None:
        raise InvalidInput("--sweep", "expected leverage=2,3,5 or allocation=0.5,1,2")
    return parsed


def parse_sweep(value: object, field: str = "sweep") -> SweepSpec | None:
    """``sweep``: exactly one of ``leverage`` or ``allocation``, a list of values."""
    if value is None:
        return None
    data = object_field(value, field)
    if len(data) != 1 or next(iter(data)) not in ("leverage", "allocation"):
        raise InvalidInput(field, "expected exactly one of leverage or allocation")
    parameter, raw = next(iter(data.items()))
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(f"{field}.{parameter}", "expected a non-empty list of values")
    values = tuple(parse_positive(item, f"{field}.{parameter}[{i}]") for i, item in enumerate(raw))
    if len(set(values)) != len(values):
        raise InvalidInput(f"{field}.{parameter}", "a value appears twice")
    return SweepSpec(parameter=parameter, values=tuple(sorted(values)))
