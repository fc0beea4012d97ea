"""SPEC parsing: YAML and JSON, numbers from their text, every error naming its field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from crossmargin.core.errors import InvalidInput
from crossmargin.core.position import MarginMode, Side
from crossmargin.sim.spec_load import load_spec, parse_spec
from crossmargin.sim.spec_rules import parse_sweep_option
from tests.backtest.scenarios import eth_long_spec

YAML = """
name: hedge
wallet: 1010.10
positions:
  - symbol: ethusdt
    side: long
    leverage: 10
    margin: 400.1
    margin_mode: isolated
    open_at: 2021-05-19T08:00
    stop: 2500.5
  - {symbol: BTCUSDT, side: short, leverage: 5, notional: 3000}
rules:
  top_up: {trigger_ratio: 0.7, target_ratio: 0.4}
sweep:
  leverage: [10, 2, 5]
"""


def test_a_yaml_spec_keeps_every_number_exact_and_fills_defaults(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(YAML, encoding="utf-8")
    spec = load_spec(path)
    assert spec.wallet == Decimal("1010.10")
    assert spec.venue == "binance-usdm"
    assert spec.modes == ("cross", "isolated", "mixed")  # ETH declares its margin_mode
    eth, btc = spec.positions
    assert (eth.symbol, eth.side, eth.margin_usd, eth.stop_price) == (
        "ETHUSDT",
        Side.LONG,
        Decimal("400.1"),
        Decimal("2500.5"),
    )
    assert eth.margin_mode is MarginMode.ISOLATED
    assert eth.open_at is not None and eth.open_at.hour == 8 and eth.open_at.utcoffset() is not None
    assert btc.notional_usd == Decimal(3000)
    assert spec.top_up is not None and spec.top_up.budget_usd is None
    assert spec.sweep is not None and spec.sweep.values == (Decimal(2), Decimal(5), Decimal(10))
    assert spec.funding.rate("ETHUSDT", eth.open_at) == Decimal("0.0001")


def test_a_json_spec_is_read_with_decimal_numbers(tmp_path: Path) -> None:
    path = tmp_path / "spec.json"
    path.write_text(
        '{"wallet": 100.5, "positions": [{"symbol": "BTCUSDT", "side": "short", '
        '"leverage": 3, "quantity": 0.01}]}',
        encoding="utf-8",
    )
    spec = load_spec(path)
    assert spec.wallet == Decimal("100.5") and spec.positions[0].quantity == Decimal("0.01")
    assert spec.name == "spec"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"wallet": "-1"}, "wallet"),
        ({"venue": "nowhere"}, "venue"),
        ({"modes": ["cross", "portfolio"]}, "modes[1]"),
        ({"positions": []}, "positions"),
        ({"surprise": 1}, "surprise"),
        ({"funding": {"rate": "1.5"}}, "funding.rate"),
        ({"funding": {"rate": "0", "file": "x.csv"}}, "funding"),
        (
            {"rules": {"top_up": {"trigger_ratio": "0.3", "target_ratio": "0.5"}}},
            "rules.top_up.target_ratio",
        ),
        (
            {"rules": {"rebalance": {"base": "ETHUSDT", "hedge": "SOLUSDT", "ratio": "1"}}},
            "rules.rebalance.hedge",
        ),
        ({"sweep": {"leverage": ["2", "2"]}}, "sweep.leverage"),
        ({"from": "2021-05-20", "to": "2021-05-19"}, "to"),
    ],
)
def test_a_bad_spec_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_spec(eth_long_spec(**change))
    assert raised.value.field == field


@pytest.mark.parametrize(
    ("position", "field"),
    [
        ({"side": "up"}, "positions[0].side"),
        ({"leverage": "0"}, "positions[0].leverage"),
        ({"margin": "100"}, "positions[0].margin"),  # quantity and margin both given
        ({"symbol": "NOPEUSDT"}, "positions[0].symbol"),
        ({"stop": "abc"}, "positions[0].stop"),
        ({"open_at": "yesterday"}, "positions[0].open_at"),
    ],
)
def test_a_bad_position_names_its_field(position: dict[str, Any], field: str) -> None:
    spec = eth_long_spec()
    spec["positions"][0].update(position)
    with pytest.raises(InvalidInput) as raised:
        parse_spec(spec)
    assert raised.value.field == field


def test_one_position_per_symbol() -> None:
    spec = eth_long_spec()
    spec["positions"] = spec["positions"] * 2
    with pytest.raises(InvalidInput) as raised:
        parse_spec(spec)
    assert raised.value.field == "positions[1].symbol"


def test_a_mixed_run_is_refused_where_the_venue_has_one_mode_per_account() -> None:
    spec = eth_long_spec(venue="bybit-linear", modes=["mixed"])
    spec["positions"].append(
        {
            "symbol": "BTCUSDT",
            "side": "short",
            "leverage": "5",
            "quantity": "0.01",
            "margin_mode": "isolated",
        }
    )
    with pytest.raises(InvalidInput) as raised:
        parse_spec(spec)
    assert raised.value.field == "modes"


def test_a_funding_series_is_read_and_a_missing_rate_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "rates.csv").write_text(
        "Date,Symbol,Rate\n2021-05-19 08:00:00+00:00,ETHUSDT,-0.0003\n", encoding="utf-8"
    )
    spec = parse_spec(eth_long_spec(funding={"file": "rates.csv"}), base_dir=tmp_path)
    moment = spec.positions[0].open_at
    assert moment is None
    from datetime import UTC, datetime

    assert spec.funding.rate("ETHUSDT", datetime(2021, 5, 19, 8, tzinfo=UTC)) == Decimal("-0.0003")
    with pytest.raises(InvalidInput) as raised:
        spec.funding.rate("ETHUSDT", datetime(2021, 5, 19, 16, tzinfo=UTC))
    assert raised.value.field == "funding.file"


def test_the_sweep_option_parses_a_list() -> None:
    sweep = parse_sweep_option("leverage=5,2,10")
    assert (sweep.parameter, sweep.values) == ("leverage", (Decimal(2), Decimal(5), Decimal(10)))
    with pytest.raises(InvalidInput):
        parse_sweep_option("gearing=2")


@pytest.mark.parametrize(
    ("venue", "written", "instrument", "market"),
    [
        ("okx-swap", "BTCUSDT", "BTC-USDT-SWAP", "BTCUSDT"),
        ("hyperliquid", "ETHUSDT", "ETH", "ETHUSDT"),
        ("dydx", "BTC-USD", "BTC-USD", "BTCUSDT"),
        ("okx-swap", "ETH-USDT-SWAP", "ETH-USDT-SWAP", "ETHUSDT"),
        ("binance-usdm", "ETHUSDT", "ETHUSDT", "ETHUSDT"),
    ],
)
def test_a_symbol_maps_to_the_venues_instrument_and_to_the_candle_files(
    venue: str, written: str, instrument: str, market: str
) -> None:
    spec = eth_long_spec(venue=venue)
    spec["positions"][0]["symbol"] = written
    position = parse_spec(spec).positions[0]
    assert (position.instrument, position.symbol) == (instrument, market)


def test_a_declared_margin_mode_adds_the_mixed_run_unless_modes_are_given() -> None:
    spec = eth_long_spec()
    assert parse_spec(spec).modes == ("cross", "isolated")
    spec["positions"][0]["margin_mode"] = "isolated"
    assert parse_spec(spec).modes == ("cross", "isolated", "mixed")
    spec["modes"] = ["cross"]
    assert parse_spec(spec).modes == ("cross",)
