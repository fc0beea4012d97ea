"""The leverage / allocation sweep on the batch path: hand-checked first liquidations, and the
same first liquidation time as the engine run for every point (the Decimal path decides; the
float path must agree with it)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from crossmargin.core.errors import InvalidInput
from crossmargin.sim.backtest import run_backtest
from crossmargin.sim.feed import AlignedCandles, align
from crossmargin.sim.market import load_candles
from crossmargin.sim.spec import SweepSpec
from crossmargin.sim.spec_load import parse_spec
from crossmargin.sim.sweep import render_sweep_png, run_sweep
from tests.backtest.scenarios import ETH_CRASH, START, eth_long_spec, write_candles

LEVERAGES = tuple(Decimal(v) for v in ("2", "5", "10", "20"))


def margin_sized(leverage: str = "10") -> dict[str, object]:
    """249 USD of margin: 1 ETH at 10x, 0.5 at 5x, 2 at 20x, 0.2 at 2x (entry 2,490)."""
    return eth_long_spec(
        positions=[{"symbol": "ETHUSDT", "side": "long", "leverage": leverage, "margin": "249"}]
    )


def market(tmp_path: Path) -> AlignedCandles:
    write_candles(tmp_path, "ETHUSDT", ETH_CRASH)
    return align([load_candles(tmp_path / "ETHUSDT_1h.csv").series])


def test_survival_versus_leverage_matches_the_hand_computed_levels(tmp_path: Path) -> None:
    """Isolated liquidation price P = 2490 x (1 - 1/L) / 0.996 (the isolated margin is exactly
    the initial margin; the opening fee is paid from the wallet): 2x 1250 (never reached), 5x
    2000 (hour 2), 10x 2250 and 20x 2375 (hour 1). Cross at 20x (2 ETH,
    wallet 997.245 - 2.49): 994.755 + 2 (P - 2490) = 0.008 P -> P = 2000.625 (hour 2)."""
    spec = parse_spec(margin_sized())
    result = run_sweep(spec, market(tmp_path), SweepSpec(parameter="leverage", values=LEVERAGES))
    hour1, hour2 = START + timedelta(hours=1, minutes=40), START + timedelta(hours=2, minutes=40)
    expected = {
        ("isolated", "2"): None,
        ("isolated", "5"): hour2,
        ("isolated", "10"): hour1,
        ("isolated", "20"): hour1,
        ("cross", "2"): None,
        ("cross", "20"): hour2,
    }
    for (name, value), at in expected.items():
        point = result.point(name, Decimal(value))
        assert point.liquidated_at == at, (name, value)
        assert point.refused == ""
    assert result.point("isolated", Decimal(2)).hours_survived == result.hours == 4
    assert result.point("isolated", Decimal(5)).hours_survived == pytest.approx(2 + 40 / 60)


@pytest.mark.parametrize("leverage", ["2", "5", "10", "20"])
@pytest.mark.parametrize("name", ["cross", "isolated"])
def test_the_batch_sweep_and_the_engine_find_the_same_first_liquidation(
    tmp_path: Path, leverage: str, name: str
) -> None:
    candles = market(tmp_path)
    spec = parse_spec(margin_sized(leverage))
    engine = run_backtest(spec, candles, modes=[name]).modes[0]
    swept = run_sweep(spec, candles, SweepSpec(parameter="leverage", values=(Decimal(leverage),)))
    first = engine.liquidations[0].timestamp if engine.liquidations else None
    assert swept.point(name, Decimal(leverage)).liquidated_at == first


def test_an_allocation_sweep_moves_the_isolated_level_and_skips_cross(tmp_path: Path) -> None:
    """At 10x with twice the margin (498, less the 1.245 fee) the level is
    (2490 - 496.755) / 0.996 = 2001.25: reached only in hour 2."""
    spec = parse_spec(eth_long_spec())
    result = run_sweep(
        spec,
        market(tmp_path),
        SweepSpec(parameter="allocation", values=(Decimal(1), Decimal(2))),
    )
    assert result.modes == ("isolated",)
    assert result.point("isolated", Decimal(1)).liquidated_at == START + timedelta(
        hours=1, minutes=40
    )
    assert result.point("isolated", Decimal(2)).liquidated_at == START + timedelta(
        hours=2, minutes=40
    )
    with pytest.raises(InvalidInput):
        run_sweep(
            spec,
            market(tmp_path),
            SweepSpec(parameter="allocation", values=(Decimal(1),)),
            ["cross"],
        )


def test_a_point_the_wallet_cannot_open_is_refused_not_run(tmp_path: Path) -> None:
    spec = parse_spec(eth_long_spec(wallet="100"))  # 1 ETH at 2x needs 1,245 of margin
    result = run_sweep(
        spec, market(tmp_path), SweepSpec(parameter="leverage", values=(Decimal(2), Decimal(50)))
    )
    assert result.point("cross", Decimal(2)).refused
    assert result.point("cross", Decimal(2)).hours_survived == 0
    assert not result.point("cross", Decimal(50)).refused


def test_the_survival_chart_is_a_png(tmp_path: Path) -> None:
    spec = parse_spec(margin_sized())
    result = run_sweep(spec, market(tmp_path), SweepSpec(parameter="leverage", values=LEVERAGES))
    assert render_sweep_png(result, "survival").startswith(b"\x89PNG")
