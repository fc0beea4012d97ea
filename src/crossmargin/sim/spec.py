"""The backtest SPEC: a YAML or JSON document naming a venue, a wallet, positions and rules.

What it owns: reading the file (numbers stay text until they become ``Decimal``: YAML is read with
every scalar as a string, JSON with ``parse_float=Decimal``), validating every field once, and the
frozen :class:`BacktestSpec` the backtest trusts afterwards. Every problem is an
:class:`InvalidInput` naming the field (``positions[1].leverage``).

Shape (see docs/backtest.md for the full reference)::

    venue: binance-usdm          # a preset (default binance-usdm)
    wallet: 1005                 # USD deposited at the start
    modes: [cross, isolated]     # runs, side by side; "mixed" keeps each position's margin_mode
                                 # (default: cross and isolated, plus mixed when a position
                                 # declares its margin_mode)
    episode: may-2021            # or data: DIR (CSV files SYMBOL_1h.csv); the CLI can override
    from: 2021-05-17             # optional window [from, to)
    to: 2021-05-24
    funding: {rate: 0.0001}      # per 8 h, every symbol; or {file: rates.csv} (Date,Symbol,Rate)
    positions:
      - symbol: ETHUSDT
        side: long
        leverage: 10
        margin: 400              # USD of initial margin; or notional: USD; or quantity: base units
        margin_mode: cross       # used by the "mixed" run only
        open_at: 2021-05-18T08:00  # optional; default the first candle's open
        stop: 2500               # optional: close the position (market) when the mark reaches it
    rules:
      top_up: {trigger_ratio: 0.7, target_ratio: 0.4, budget: 300}
      rebalance: {base: ETHUSDT, hedge: BTCUSDT, ratio: 0.75, band: 0.1, every_hours: 8}
    sweep: {leverage: [2, 3, 5, 10, 20]}     # or {allocation: [0.5, 1, 2]}

Invariants of a :class:`BacktestSpec`: at least one position, one per symbol; leverages within
the venue's first-bracket maximum is NOT checked here (the engine checks it against the notional);
ratios lie in (0, 1]; rule symbols are positions of the spec.
"""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from crossmargin.core.errors import InvalidInput
from crossmargin.core.json_input import load_json
from crossmargin.core.numbers import parse_decimal, parse_non_negative, parse_positive
from crossmargin.core.position import MarginMode, Side
from crossmargin.core.venues import (
    DEFAULT_VENUE,
    MarginModeScope,
    VenueRules,
    venue,
)
from crossmargin.sim.market import parse_utc_datetime

MODES = ("cross", "isolated", "mixed")
DEFAULT_MODES = ("cross", "isolated")
DEFAULT_FUNDING_RATE = Decimal("0.0001")  # 0.01% per 8 h: the interest baseline most venues use
DEFAULT_QUANTITY_STEP = Decimal("0.000001")

_TOP = frozenset(
    {
        "name",
        "venue",
        "wallet",
        "modes",
        "episode",
        "data",
        "from",
        "to",
        "funding",
        "positions",
        "rules",
        "sweep",
        "quantity_step",
    }
)
_POSITION = frozenset(
    {
        "symbol",
        "side",
        "leverage",
        "margin",
        "notional",
        "quantity",
        "margin_mode",
        "open_at",
        "stop",
        "label",
    }
)


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


def load_spec(path: str | Path) -> BacktestSpec:
    """Read and validate a SPEC file (``.yaml``/``.yml`` as YAML, anything else as JSON)."""
    file_path = Path(path)
    try:
        text = file_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput("SPEC", f"cannot read {file_path}: {error}") from None
    if file_path.suffix.lower() in (".yaml", ".yml"):
        document = _yaml(text, str(file_path))
    else:
        document = load_json(text, field=str(file_path))
    return parse_spec(document, base_dir=file_path.parent, default_name=file_path.stem)


def _yaml(text: str, source: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise InvalidInput(
            "SPEC", "YAML specs need PyYAML: pip install 'crossmargin[report]' (or use JSON)"
        ) from None
    try:
        # BaseLoader keeps every scalar a string: numbers become Decimal from their text, never
        # through a float, and dates are parsed by us (always UTC).
        return yaml.load(text, Loader=yaml.BaseLoader)
    except yaml.YAMLError as error:
        raise InvalidInput(source, f"invalid YAML: {error}") from None


def parse_spec(
    document: object, *, base_dir: Path | None = None, default_name: str = "backtest"
) -> BacktestSpec:
    """Validate a decoded SPEC document (see the module docstring)."""
    data = _object(document, "SPEC")
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise InvalidInput(unknown[0], f"unknown field (known: {', '.join(sorted(_TOP))})")
    venue_name = _text(data.get("venue", DEFAULT_VENUE), "venue")
    rules = venue(venue_name)
    wallet = parse_positive(_required(data, "wallet"), "wallet")
    raw_positions = _required(data, "positions")
    if not isinstance(raw_positions, list) or not raw_positions:
        raise InvalidInput("positions", "expected a non-empty list")
    modes = _modes(data.get("modes"))
    if data.get("modes") is None and any(
        isinstance(item, dict) and "margin_mode" in item for item in raw_positions
    ):
        modes = (*modes, "mixed")  # the declared per-position modes run too, next to the two
    positions = tuple(_position(item, f"positions[{i}]") for i, item in enumerate(raw_positions))
    seen: set[str] = set()
    mapped = []
    for index, position in enumerate(positions):
        instrument = venue_instrument(rules, position.symbol)
        if instrument is None:
            raise InvalidInput(
                f"positions[{index}].symbol", f"{position.symbol} is not in the {rules.name} table"
            )
        symbol = market_symbol(position.symbol)
        if symbol in seen:
            raise InvalidInput(
                f"positions[{index}].symbol", f"{symbol} appears twice (one position per symbol)"
            )
        seen.add(symbol)
        mapped.append(dataclasses.replace(position, symbol=symbol, instrument=instrument))
    positions = tuple(mapped)
    if "mixed" in modes and rules.margin_mode_scope is MarginModeScope.ACCOUNT:
        chosen = {position.margin_mode for position in positions}
        if len(chosen) > 1:
            raise InvalidInput(
                "modes", f"{rules.name} sets one margin mode per account: a mixed run is impossible"
            )
    rule_data = _object(data.get("rules", {}), "rules")
    unknown_rules = sorted(set(rule_data) - {"top_up", "rebalance"})
    if unknown_rules:
        raise InvalidInput(f"rules.{unknown_rules[0]}", "unknown rule (top_up, rebalance)")
    base_dir = base_dir or Path()
    start = _time(data.get("from"), "from")
    end = _time(data.get("to"), "to")
    if start is not None and end is not None and start >= end:
        raise InvalidInput("to", "must be after from")
    data_dir = data.get("data")
    return BacktestSpec(
        name=_text(data.get("name", default_name), "name"),
        venue=venue_name,
        wallet=wallet,
        modes=modes,
        positions=positions,
        funding=_funding(data.get("funding"), base_dir),
        top_up=_top_up(rule_data.get("top_up")),
        rebalance=_rebalance(rule_data.get("rebalance"), seen),
        sweep=_sweep(data.get("sweep")),
        episode=None if data.get("episode") is None else _text(data["episode"], "episode"),
        data=None if data_dir is None else base_dir / _text(data_dir, "data"),
        start=start,
        end=end,
        quantity_step=parse_positive(
            data.get("quantity_step", str(DEFAULT_QUANTITY_STEP)), "quantity_step"
        ),
    )


def _object(value: object, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(field, "expected an object (a mapping)")
    return value


def _required(data: Mapping[str, Any], key: str, prefix: str = "") -> Any:
    if data.get(key) is None:
        raise InvalidInput(f"{prefix}{key}", "is required")
    return data[key]


def _text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "expected a non-empty string")
    return value.strip()


def _time(value: object, field: str) -> datetime | None:
    if value is None:
        return None
    return parse_utc_datetime(_text(value, field), field)


def _choice(value: object, field: str, options: Sequence[str]) -> str:
    text = _text(value, field).lower()
    if text not in options:
        raise InvalidInput(field, f"expected one of {', '.join(options)}, got {value!r}")
    return text


def parse_modes(value: object, field: str = "modes") -> tuple[str, ...]:
    """``[cross, isolated]`` or ``"cross,isolated"`` -> a tuple of distinct mode names."""
    if isinstance(value, str):
        items: list[object] = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, list):
        items = list(value)
    else:
        raise InvalidInput(field, "expected a list of modes (cross, isolated, mixed)")
    if not items:
        raise InvalidInput(field, "name at least one mode")
    modes = tuple(_choice(item, f"{field}[{i}]", MODES) for i, item in enumerate(items))
    if len(set(modes)) != len(modes):
        raise InvalidInput(field, "a mode appears twice")
    return modes


def _modes(value: object) -> tuple[str, ...]:
    return DEFAULT_MODES if value is None else parse_modes(value)


def _position(item: object, where: str) -> PositionSpec:
    data = _object(item, where)
    unknown = sorted(set(data) - _POSITION)
    if unknown:
        raise InvalidInput(f"{where}.{unknown[0]}", "unknown field")
    symbol = _text(_required(data, "symbol", f"{where}."), f"{where}.symbol").upper()
    side = Side(_choice(_required(data, "side", f"{where}."), f"{where}.side", ("long", "short")))
    leverage = parse_positive(_required(data, "leverage", f"{where}."), f"{where}.leverage")
    sizes = [key for key in ("quantity", "notional", "margin") if data.get(key) is not None]
    if len(sizes) != 1:
        raise InvalidInput(
            f"{where}.margin", "give exactly one size: quantity, notional (USD) or margin (USD)"
        )
    size = parse_positive(data[sizes[0]], f"{where}.{sizes[0]}")
    mode = MarginMode(
        _choice(data.get("margin_mode", "cross"), f"{where}.margin_mode", ("cross", "isolated"))
    )
    stop = data.get("stop")
    return PositionSpec(
        label=_text(data.get("label", f"{symbol} {side.value}"), f"{where}.label"),
        symbol=symbol,
        instrument=symbol,
        side=side,
        leverage=leverage,
        quantity=size if sizes[0] == "quantity" else None,
        notional_usd=size if sizes[0] == "notional" else None,
        margin_usd=size if sizes[0] == "margin" else None,
        margin_mode=mode,
        open_at=_time(data.get("open_at"), f"{where}.open_at"),
        stop_price=None if stop is None else parse_positive(stop, f"{where}.stop"),
    )


def _ratio(value: object, field: str) -> Decimal:
    ratio = parse_positive(value, field)
    if ratio > 1:
        raise InvalidInput(field, "a margin ratio lies in (0, 1] (1 = liquidation)")
    return ratio


def _top_up(value: object) -> TopUpRule | None:
    if value is None:
        return None
    data = _object(value, "rules.top_up")
    unknown = sorted(set(data) - {"trigger_ratio", "target_ratio", "budget"})
    if unknown:
        raise InvalidInput(f"rules.top_up.{unknown[0]}", "unknown field")
    trigger = _ratio(
        _required(data, "trigger_ratio", "rules.top_up."), "rules.top_up.trigger_ratio"
    )
    target = _ratio(_required(data, "target_ratio", "rules.top_up."), "rules.top_up.target_ratio")
    if target >= trigger:
        raise InvalidInput("rules.top_up.target_ratio", "must be below trigger_ratio")
    budget = data.get("budget")
    return TopUpRule(
        trigger_ratio=trigger,
        target_ratio=target,
        budget_usd=None if budget is None else parse_positive(budget, "rules.top_up.budget"),
    )


def _rebalance(value: object, symbols: set[str]) -> RebalanceRule | None:
    if value is None:
        return None
    where = "rules.rebalance"
    data = _object(value, where)
    unknown = sorted(set(data) - {"base", "hedge", "ratio", "band", "every_hours"})
    if unknown:
        raise InvalidInput(f"{where}.{unknown[0]}", "unknown field")
    base = market_symbol(_text(_required(data, "base", f"{where}."), f"{where}.base").upper())
    hedge = market_symbol(_text(_required(data, "hedge", f"{where}."), f"{where}.hedge").upper())
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
        ratio=parse_positive(_required(data, "ratio", f"{where}."), f"{where}.ratio"),
        band=parse_non_negative(data.get("band", "0.1"), f"{where}.band"),
        every_hours=int(every),
    )


def _funding(value: object, base_dir: Path) -> FundingSpec:
    if value is None:
        return FundingSpec()
    data = _object(value, "funding")
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
    path = base_dir / _text(data["file"], "funding.file")
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
        symbol = _text(row[1], f"{where}:Symbol").upper()
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
    parsed = _sweep({name.strip(): [part for part in values.split(",") if part.strip()]}, "--sweep")
    if parsed is None:
        raise InvalidInput("--sweep", "expected leverage=2,3,5 or allocation=0.5,1,2")
    return parsed


def _sweep(value: object, field: str = "sweep") -> SweepSpec | None:
    if value is None:
        return None
    data = _object(value, field)
    if len(data) != 1 or next(iter(data)) not in ("leverage", "allocation"):
        raise InvalidInput(field, "expected exactly one of leverage or allocation")
    parameter, raw = next(iter(data.items()))
    if not isinstance(raw, list) or not raw:
        raise InvalidInput(f"{field}.{parameter}", "expected a non-empty list of values")
    values = tuple(parse_positive(item, f"{field}.{parameter}[{i}]") for i, item in enumerate(raw))
    if len(set(values)) != len(values):
        raise InvalidInput(f"{field}.{parameter}", "a value appears twice")
    return SweepSpec(parameter=parameter, values=tuple(sorted(values)))
