"""Loading the backtest SPEC: a YAML or JSON document naming a venue, a wallet, positions and rules.

What it owns: reading the file (numbers stay text until they become ``Decimal``: YAML is read with
every scalar as a string, JSON with ``parse_float=Decimal``) and turning the document into the
frozen :class:`~crossmargin.sim.spec.BacktestSpec` the backtest trusts afterwards: the top-level
fields, each position mapped to the venue's instrument (one per symbol), the order in which fields
are checked. Field readers and positions are :mod:`crossmargin.sim.spec_fields`; rules, funding
and sweeps :mod:`crossmargin.sim.spec_rules`. Every problem is an :class:`InvalidInput` naming the
field (``positions[1].leverage``).

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
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from crossmargin.core.errors import InvalidInput
from crossmargin.core.json_input import load_json
from crossmargin.core.numbers import parse_positive
from crossmargin.core.venues import DEFAULT_VENUE, MarginModeScope, VenueRules, venue
from crossmargin.sim.spec import (
    DEFAULT_MODES,
    DEFAULT_QUANTITY_STEP,
    BacktestSpec,
    PositionSpec,
    market_symbol,
    venue_instrument,
)
from crossmargin.sim.spec_fields import (
    object_field,
    parse_modes,
    parse_position,
    required_field,
    text_field,
    time_field,
)
from crossmargin.sim.spec_rules import parse_funding, parse_rebalance, parse_sweep, parse_top_up

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
    """Validate a decoded SPEC document (see the module docstring).

    Fields are checked in a fixed order (top-level names, venue, wallet, positions, modes, the
    positions against the venue, rules, window, then the remaining sections), so the same
    document always reports the same first problem."""
    data = object_field(document, "SPEC")
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise InvalidInput(unknown[0], f"unknown field (known: {', '.join(sorted(_TOP))})")
    venue_name = text_field(data.get("venue", DEFAULT_VENUE), "venue")
    rules = venue(venue_name)
    wallet = parse_positive(required_field(data, "wallet"), "wallet")
    raw_positions = required_field(data, "positions")
    if not isinstance(raw_positions, list) or not raw_positions:
        raise InvalidInput("positions", "expected a non-empty list")
    modes = _modes(data.get("modes"), raw_positions)
    positions = _venue_positions(
        [parse_position(item, f"positions[{i}]") for i, item in enumerate(raw_positions)], rules
    )
    _check_mixed(modes, positions, rules)
    rule_data = object_field(data.get("rules", {}), "rules")
    unknown_rules = sorted(set(rule_data) - {"top_up", "rebalance"})
    if unknown_rules:
        raise InvalidInput(f"rules.{unknown_rules[0]}", "unknown rule (top_up, rebalance)")
    base_dir = base_dir or Path()
    start = time_field(data.get("from"), "from")
    end = time_field(data.get("to"), "to")
    if start is not None and end is not None and start >= end:
        raise InvalidInput("to", "must be after from")
    data_dir = data.get("data")
    return BacktestSpec(
        name=text_field(data.get("name", default_name), "name"),
        venue=venue_name,
        wallet=wallet,
        modes=modes,
        positions=positions,
        funding=parse_funding(data.get("funding"), base_dir),
        top_up=parse_top_up(rule_data.get("top_up")),
        rebalance=parse_rebalance(
            rule_data.get("rebalance"), {position.symbol for position in positions}
        ),
        sweep=parse_sweep(data.get("sweep")),
        episode=None if data.get("episode") is None else text_field(data["episode"], "episode"),
        data=None if data_dir is None else base_dir / text_field(data_dir, "data"),
        start=start,
        end=end,
        quantity_step=parse_positive(
            data.get("quantity_step", str(DEFAULT_QUANTITY_STEP)), "quantity_step"
        ),
    )


def _modes(value: object, raw_positions: list[Any]) -> tuple[str, ...]:
    modes = DEFAULT_MODES if value is None else parse_modes(value)
    if value is None and any(
        isinstance(item, dict) and "margin_mode" in item for item in raw_positions
    ):
        modes = (*modes, "mixed")  # the declared per-position modes run too, next to the two
    return modes


def _venue_positions(positions: list[PositionSpec], rules: VenueRules) -> tuple[PositionSpec, ...]:
    """Each position under its candle-file symbol and the venue's instrument name; one per
    symbol."""
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
    return tuple(mapped)


def _check_mixed(
    modes: tuple[str, ...], positions: tuple[PositionSpec, ...], rules: VenueRules
) -> None:
    """A venue with one margin mode per account cannot run positions in different modes."""
    if "mixed" in modes and rules.margin_mode_scope is MarginModeScope.ACCOUNT:
        chosen = {position.margin_mode for position in positions}
        if len(chosen) > 1:
            raise InvalidInput(
                "modes", f"{rules.name} sets one margin mode per account: a mixed run is impossible"
            )
