"""Synthetic, hand-checkable backtests run through the engine: exact liquidation times, prices,
fees, funding and final balances (the arithmetic is in tests/backtest/scenarios.py and in each
test's docstring)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from crossmargin.core.errors import InvalidInput
from crossmargin.sim.backtest import run_backtest
from crossmargin.sim.backtest_results import BacktestResult, ModeResult
from crossmargin.sim.feed import align
from crossmargin.sim.market import load_candles
from crossmargin.sim.spec_load import parse_spec
from tests.backtest.scenarios import ETH_CRASH, START, eth_long_spec, write_candles


def run(tmp_path: Path, spec_data: dict[str, object], candles: dict[str, tuple]) -> BacktestResult:
    for symbol, rows in candles.items():
        write_candles(tmp_path, symbol, rows)
    spec = parse_spec(spec_data)
    series = [load_candles(tmp_path / f"{s}_1h.csv").series for s in spec.symbols]
    return run_backtest(spec, align(series), source="synthetic")


def mode(result: BacktestResult, name: str) -> ModeResult:
    return next(m for m in result.modes if m.mode == name)


def test_isolated_and_cross_longs_liquidate_at_their_exact_prices_and_times(
    tmp_path: Path,
) -> None:
    result = run(tmp_path, eth_long_spec(), {"ETHUSDT": ETH_CRASH})
    isolated, cross = mode(result, "isolated"), mode(result, "cross")

    [liquidated] = isolated.liquidations
    assert liquidated.price == Decimal("2250")
    assert liquidated.quantity == Decimal(1)
    # hour 1 visits its High first, so the Low (and the crossing) is the second extreme: +40 min
    assert liquidated.timestamp == START + timedelta(hours=1, minutes=40)
    assert isolated.liquidation_fees == Decimal("9")
    assert isolated.fees_paid == Decimal("1.245")
    # the wallet kept what was not allocated (997.245 - 249 - the opening fee 1.245); the
    # isolated margin is gone
    assert isolated.final_wallet == Decimal("747")
    assert isolated.final_equity == Decimal("747")
    assert isolated.open_positions == ()

    [liquidated] = cross.liquidations
    assert liquidated.price == Decimal("1500")
    assert liquidated.timestamp == START + timedelta(hours=2, minutes=40)
    assert cross.liquidation_fees == Decimal("6")
    assert cross.final_equity == 0
    assert cross.funding_paid == 0


def test_a_liquidation_price_the_candle_never_reaches_liquidates_nothing(tmp_path: Path) -> None:
    """The same book without the last two candles: the Low of 2200 crosses the isolated level
    (2250) but not the cross one (1500); equity is marked at the close of 2300."""
    result = run(tmp_path, eth_long_spec(), {"ETHUSDT": ETH_CRASH[:2]})
    cross = mode(result, "cross")
    assert cross.liquidations == ()
    # 997.245 - 1.245 fee + (2300 - 2490)
    assert cross.final_equity == Decimal("806")
    assert len(mode(result, "isolated").liquidations) == 1


def test_the_low_is_tested_before_the_close_even_when_the_close_recovers(tmp_path: Path) -> None:
    """A candle whose Low pierces the isolated level but closes far above it still liquidates."""
    rows = (("2490", "2500", "2480", "2495"), ("2495", "2600", "2250", "2590"))
    result = run(tmp_path, eth_long_spec(modes=["isolated"]), {"ETHUSDT": rows})
    [liquidated] = mode(result, "isolated").liquidations
    assert liquidated.price == Decimal("2250")
    # the High (105 away) is nearer the open than the Low (245 away): the Low comes second

    assert liquidated.timestamp == START + timedelta(hours=1, minutes=40)


def test_a_short_pays_fees_receives_funding_and_is_stopped_at_its_stop_price(
    tmp_path: Path,
) -> None:
    """Short 0.1 BTC at 40,000 (5x), wallet 1,000, funding 0.01% per 8 h, stop at 42,000.

    open fee 0.1 x 40,000 x 0.05% = 2; funding at 08:00 (close 40,000): the short receives
    0.1 x 40,000 x 0.0001 = 0.4; the 08:00 candle visits its Low first (10 vs 3,000 away), then
    rises through 42,000: bought back there at +40 min, realized -200, fee 0.1 x 42,000 x 0.05%
    = 2.1. Final wallet 1000 - 2 + 0.4 - 200 - 2.1 = 796.3 in both modes.
    """
    start = START + timedelta(hours=6)
    rows = (
        ("40000", "40100", "39900", "40000"),
        ("40000", "40200", "39800", "40000"),
        ("40000", "43000", "39990", "42500"),
        ("42500", "42600", "42400", "42500"),
    )
    write_candles(tmp_path, "BTCUSDT", rows, start)
    spec = parse_spec(
        {
            "wallet": "1000",
            "funding": {"rate": "0.0001"},
            "positions": [
                {
                    "symbol": "BTCUSDT",
                    "side": "short",
                    "leverage": "5",
                    "quantity": "0.1",
                    "stop": "42000",
                }
            ],
        }
    )
    market = align([load_candles(tmp_path / "BTCUSDT_1h.csv").series])
    result = run_backtest(spec, market)
    for name in ("cross", "isolated"):
        run_mode = mode(result, name)
        assert run_mode.liquidations == ()
        assert run_mode.funding_paid == Decimal("-0.4")
        assert run_mode.fees_paid == Decimal("4.1")
        assert run_mode.final_wallet == Decimal("796.3")
        assert run_mode.final_equity == Decimal("796.3")
        [stop] = [a for a in run_mode.activities if a.kind == "stop"]
        assert (stop.price, stop.quantity, stop.side) == (Decimal(42000), Decimal("0.1"), "buy")
        assert stop.timestamp == start + timedelta(hours=2, minutes=40)
        [funding] = [a for a in run_mode.activities if a.kind == "funding"]
        assert funding.timestamp == start + timedelta(hours=2)


def test_the_top_up_rule_keeps_an_isolated_position_alive_within_its_budget(
    tmp_path: Path,
) -> None:
    """Without the rule the isolated long dies at 2250 in hour 1 (see above); with up to 100
    of top-ups triggered at a 50% margin ratio it survives the Low of 2200, and its equity is the
    cross wallet's: 997.245 - 1.245 + (2300 - 2490) = 806 (a top-up only moves money)."""
    spec = eth_long_spec(
        modes=["isolated"],
        rules={"top_up": {"trigger_ratio": "0.5", "target_ratio": "0.25", "budget": "100"}},
    )
    result = run(tmp_path, spec, {"ETHUSDT": ETH_CRASH[:2]})
    isolated = mode(result, "isolated")
    assert isolated.liquidations == ()
    assert Decimal(0) < isolated.top_ups <= Decimal(100)
    assert isolated.final_equity == Decimal("806")
    top_ups = [a for a in isolated.activities if a.kind == "top-up"]
    assert top_ups and all(a.timestamp == START + timedelta(hours=1, minutes=40) for a in top_ups)
    lowest = [s for s in isolated.samples if s.timestamp == START + timedelta(hours=1, minutes=40)]
    assert lowest[0].margin_ratio is not None and lowest[0].margin_ratio < Decimal("0.5")


def test_the_rebalance_rule_trades_the_hedge_back_to_its_ratio(tmp_path: Path) -> None:
    """Long 1 ETH at 2,000 hedged by 0.05 BTC short at 40,000 (ratio 1). At the 01:00 close BTC
    is 48,000: hedge 2,400 against a target of 2,000 (20% > the 10% band), so 400 / 48,000 =
    0.0083333.. BTC is bought back, floored to the 0.000001 step: 0.008333."""
    flat = (("2000", "2001", "1999", "2000"), ("2000", "2001", "1999", "2000"))
    btc = (("40000", "48000", "39999", "48000"), ("48000", "48001", "47999", "48000"))
    spec = {
        "wallet": "10000",
        "modes": ["cross"],
        "funding": {"rate": "0"},
        "positions": [
            {"symbol": "ETHUSDT", "side": "long", "leverage": "5", "quantity": "1"},
            {"symbol": "BTCUSDT", "side": "short", "leverage": "5", "quantity": "0.05"},
        ],
        "rules": {
            "rebalance": {
                "base": "ETHUSDT",
                "hedge": "BTCUSDT",
                "ratio": "1",
                "band": "0.1",
                "every_hours": "1",
            }
        },
    }
    result = run(tmp_path, spec, {"ETHUSDT": flat, "BTCUSDT": btc})
    trades = [a for a in mode(result, "cross").activities if a.kind == "rebalance"]
    assert len(trades) == 1  # after it the hedge is within the band
    assert (trades[0].side, trades[0].quantity, trades[0].price) == (
        "buy",
        Decimal("0.008333"),
        Decimal(48000),
    )
    assert trades[0].timestamp == START + timedelta(hours=1)


def test_a_position_opened_later_enters_at_that_candles_open(tmp_path: Path) -> None:
    spec = eth_long_spec(modes=["cross"])
    spec["positions"][0]["open_at"] = "2021-05-19T02:00"
    result = run(tmp_path, spec, {"ETHUSDT": ETH_CRASH})
    [opened] = [a for a in mode(result, "cross").activities if a.kind == "open"]
    assert (opened.price, opened.timestamp) == (Decimal(2300), START + timedelta(hours=2))


@pytest.mark.parametrize("name", ["cross", "isolated"])
def test_the_same_spec_gives_the_same_log_twice(tmp_path: Path, name: str) -> None:
    first = run(tmp_path, eth_long_spec(), {"ETHUSDT": ETH_CRASH})
    second = run(tmp_path, eth_long_spec(), {"ETHUSDT": ETH_CRASH})
    assert mode(first, name).state_hash == mode(second, name).state_hash


@pytest.mark.parametrize("venue", ["okx-swap", "hyperliquid", "dydx", "bybit-linear"])
def test_other_presets_run_on_binance_named_candles(tmp_path: Path, venue: str) -> None:
    """The venue's own instrument names (ETH-USDT-SWAP, ETH, ETH-USD) trade the ETHUSDT candles;
    activities are reported under the candles' symbol. Every preset liquidates the 10x isolated
    long on the way to hour 2's Low of 1,400 at the latest."""
    result = run(tmp_path, eth_long_spec(venue=venue), {"ETHUSDT": ETH_CRASH})
    liquidations = mode(result, "isolated").liquidations
    assert liquidations and liquidations[0].symbol == "ETHUSDT"
    assert liquidations[0].timestamp <= START + timedelta(hours=2, minutes=40)


def test_a_funding_series_is_settled_at_its_rates_and_must_cover_the_run(tmp_path: Path) -> None:
    """Long 1 ETH at 2,000 (cross), flat candles 06:00-10:00: one funding time (08:00) at a rate
    of 0.0003 from the series -> 1 x 2,000 x 0.0003 = 0.6 paid."""
    start = START + timedelta(hours=6)
    flat = (("2000", "2001", "1999", "2000"),) * 4
    write_candles(tmp_path, "ETHUSDT", flat, start)
    (tmp_path / "rates.csv").write_text(
        "Date,Symbol,Rate\n2021-05-19T08:00:00Z,ETHUSDT,0.0003\n", encoding="utf-8"
    )
    spec = parse_spec(
        eth_long_spec(
            modes=["cross"],
            wallet="1000",
            funding={"file": "rates.csv"},
            positions=[{"symbol": "ETHUSDT", "side": "long", "leverage": "5", "quantity": "1"}],
        ),
        base_dir=tmp_path,
    )
    market = align([load_candles(tmp_path / "ETHUSDT_1h.csv").series])
    result = run_backtest(spec, market).modes[0]
    assert result.funding_paid == Decimal("0.6")
    # 1000 - 1 (fee: 2000 x 0.05%) - 0.6
    assert result.final_equity == Decimal("998.4")

    longer = (("2000", "2001", "1999", "2000"),) * 12  # reaches the 16:00 funding time
    write_candles(tmp_path, "ETHUSDT", longer, start)
    market = align([load_candles(tmp_path / "ETHUSDT_1h.csv").series])
    with pytest.raises(InvalidInput) as raised:
        run_backtest(spec, market)
    assert raised.value.field == "funding.file"
