"""The report built from a backtest: series aligned with the samples, liquidation markers on the
price panel of their symbol, liquidation-price lines that end with the position."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from crossmargin.sim.backtest import run_backtest
from crossmargin.sim.backtest_report import INTRABAR_NOTE, report_data, summary_rows
from crossmargin.sim.feed import align
from crossmargin.sim.market import load_candles
from crossmargin.sim.spec_load import parse_spec
from tests.backtest.scenarios import ETH_CRASH, eth_long_spec, write_candles


def test_report_series_follow_the_samples_and_the_liquidation(tmp_path: Path) -> None:
    write_candles(tmp_path, "ETHUSDT", ETH_CRASH)
    spec = parse_spec(eth_long_spec())
    result = run_backtest(spec, align([load_candles(tmp_path / "ETHUSDT_1h.csv").series]))
    data = report_data(result)
    assert len(data.timestamps) == 4 * len(ETH_CRASH)
    # the intrabar path of hour 1 is O, H, L, C: 2495, 2496, 2200, 2300
    assert data.prices["ETHUSDT"][4:8] == tuple(
        Decimal(v) for v in ("2495", "2496", "2200", "2300")
    )
    assert data.lows["ETHUSDT"][4] == Decimal(2200)
    isolated = next(mode for mode in data.modes if mode.name == "isolated")
    line = isolated.positions[0].liquidation_price
    assert line[5] == Decimal("2250")  # at the High mark, before the crossing
    assert line[6] is None  # closed by the liquidation on the way to the Low
    # the ratio reached 100% on that leg, though nothing is open at the Low mark itself
    assert isolated.margin_ratio[5] is not None and isolated.margin_ratio[5] < 1
    assert isolated.margin_ratio[6] == 1
    assert isolated.margin_ratio[7] is None
    assert {event.symbol for event in data.events} <= set(data.prices)
    assert INTRABAR_NOTE in data.notes
    rows = {row[0]: row for row in summary_rows(result)}
    assert rows["isolated"][1] == "747.00"
