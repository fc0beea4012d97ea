"""Reports: chart, HTML page and events CSV from report data; the progress bar."""

from __future__ import annotations

import base64
import csv
import io
import re
import struct
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from crossmargin.core.errors import InvalidInput
from crossmargin.core.position import Side
from crossmargin.sim.episodes import load_episode
from crossmargin.sim.progress import ProgressBar, with_progress
from crossmargin.sim.report import write_report
from crossmargin.sim.report_data import LiquidationEvent, ModeTrack, PositionTrack, ReportData
from crossmargin.sim.report_tables import EVENT_COLUMNS, render_html, write_events_csv

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QUANTITY = Decimal("0.5")


def ftx_report() -> ReportData:
    """A 0.5 BTC long through the FTX episode: cross with a $5,000 wallet, isolated with $2,000."""
    candles = load_episode("ftx-2022", ["BTCUSDT"]).series["BTCUSDT"].candles
    closes = tuple(candle.close for candle in candles)
    entry = candles[0].open
    isolated_liquidation = entry - Decimal(2000) / QUANTITY
    liquidated_at = next(
        index for index, candle in enumerate(candles) if candle.low <= isolated_liquidation
    )
    count = len(candles)

    def open_until(index: int, value: Decimal) -> tuple[Decimal | None, ...]:
        return tuple(value if i < index else None for i in range(count))

    cross_equity = tuple(Decimal(5000) + QUANTITY * (close - entry) for close in closes)
    isolated_equity = tuple(
        Decimal(2000) + QUANTITY * (close - entry) if i < liquidated_at else Decimal(0)
        for i, close in enumerate(closes)
    )
    maintenance = Decimal("0.004")
    cross = ModeTrack(
        name="cross",
        equity=cross_equity,
        margin_ratio=tuple(
            QUANTITY * close * maintenance / equity
            for close, equity in zip(closes, cross_equity, strict=True)
        ),
        positions=(
            PositionTrack(
                label="long 0.5",
                symbol="BTCUSDT",
                side=Side.LONG,
                entry_price=(entry,) * count,
                liquidation_price=(entry - Decimal(5000) / QUANTITY,) * count,
            ),
        ),
    )
    isolated = ModeTrack(
        name="isolated",
        equity=isolated_equity,
        margin_ratio=tuple(
            QUANTITY * close * maintenance / equity if i < liquidated_at else None
            for i, (close, equity) in enumerate(zip(closes, isolated_equity, strict=True))
        ),
        positions=(
            PositionTrack(
                label="long 0.5",
                symbol="BTCUSDT",
                side=Side.LONG,
                entry_price=open_until(liquidated_at, entry),
                liquidation_price=open_until(liquidated_at, isolated_liquidation),
            ),
        ),
    )
    event = LiquidationEvent(
        timestamp=candles[liquidated_at].timestamp,
        mode="isolated",
        symbol="BTCUSDT",
        side=Side.LONG,
        quantity=QUANTITY,
        price=isolated_liquidation,
        loss_usd=Decimal(2000),
        note="tested against the candle's low",
    )
    return ReportData(
        title="FTX collapse <BTC long>",
        timestamps=tuple(candle.timestamp for candle in candles),
        prices={"BTCUSDT": closes},
        modes=(cross, isolated),
        events=(event,),
        notes=("Episode ftx-2022, Binance hourly candles.",),
        lows={"BTCUSDT": tuple(candle.low for candle in candles)},
        highs={"BTCUSDT": tuple(candle.high for candle in candles)},
    )


def test_report_files_are_written_and_the_png_is_a_real_chart(tmp_path: Path) -> None:
    files = write_report(ftx_report(), tmp_path / "out", stem="ftx")
    png = files.png.read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1100, 720)
    assert len(png) > 20_000
    assert files.html.name == "ftx.html"
    assert files.events_csv.name == "ftx-events.csv"


def test_html_embeds_the_png_and_holds_the_tables(tmp_path: Path) -> None:
    data = ftx_report()
    files = write_report(data, tmp_path)
    page = files.html.read_text(encoding="utf-8")
    embedded = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert embedded is not None
    assert base64.b64decode(embedded.group(1)) == files.png.read_bytes()
    assert page.count("<table>") == 3
    assert "FTX collapse &lt;BTC long&gt;" in page
    assert "<BTC long>" not in page
    assert "tested against the candle&#x27;s low" in page
    event = data.events[0]
    assert f"<td>{event.price}</td>" in page
    assert 'src="http' not in page and "<script" not in page


def test_summary_shows_lowest_equity_and_ratio_rounded_up() -> None:
    data = ftx_report()
    cross = data.modes[0]
    lowest = min(cross.equity)
    moment = data.timestamps[cross.equity.index(lowest)].strftime("%Y-%m-%d %H:%M")
    page = render_html(data, PNG_SIGNATURE)
    row = re.search(r"<tr><td class=\"text\">cross</td>(.*?)</tr>", page)
    assert row is not None
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert Decimal(cells[2]) == lowest
    assert cells[3] == moment
    highest = max(ratio for ratio in cross.margin_ratio if ratio is not None)
    shown = Decimal(cells[4].rstrip("%"))
    assert shown >= highest * 100
    assert shown - highest * 100 < Decimal("0.01")
    assert cells[6] == "0"


def test_no_events_says_so(tmp_path: Path) -> None:
    page = render_html(replace(ftx_report(), events=()), PNG_SIGNATURE)
    assert "No liquidations." in page
    assert page.count("<table>") == 2


def test_events_csv_round_trips_exact_decimals(tmp_path: Path) -> None:
    data = ftx_report()
    path = write_events_csv(data.events, tmp_path / "events.csv")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == EVENT_COLUMNS
    (event,) = data.events
    assert Decimal(rows[0]["price"]) == event.price
    assert Decimal(rows[0]["loss_usd"]) == event.loss_usd
    assert rows[0]["timestamp"] == event.timestamp.isoformat().replace("+00:00", "Z")
    empty = write_events_csv((), tmp_path / "none.csv")
    assert empty.read_text(encoding="utf-8").strip() == ",".join(EVENT_COLUMNS)


def test_report_data_refuses_misaligned_series() -> None:
    data = ftx_report()
    short = replace(data.modes[0], equity=data.modes[0].equity[:-1])
    with pytest.raises(InvalidInput) as caught:
        replace(data, modes=(short, data.modes[1]))
    assert caught.value.field == "modes[0].equity"
    with pytest.raises(InvalidInput) as caught:
        replace(data, prices={"BTCUSDT": data.prices["BTCUSDT"][1:]})
    assert caught.value.field == "prices.BTCUSDT"
    with pytest.raises(InvalidInput) as caught:
        replace(data, lows={"ETHUSDT": data.prices["BTCUSDT"]})
    assert caught.value.field == "lows.ETHUSDT"
    with pytest.raises(InvalidInput) as caught:
        replace(data, timestamps=data.timestamps[::-1])
    assert caught.value.field == "timestamps"
    stray = replace(data.events[0], mode="portfolio")
    with pytest.raises(InvalidInput) as caught:
        replace(data, events=(stray,))
    assert caught.value.field == "events[0].mode"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal() -> None:
    quiet = io.StringIO()
    assert list(with_progress(range(5), 5, stream=quiet)) == [0, 1, 2, 3, 4]
    assert quiet.getvalue() == ""
    terminal = FakeTerminal()
    bar = ProgressBar(4, label="replay", stream=terminal, width=8)
    for done in range(1, 5):
        bar.update(done)
    bar.update(4)
    bar.finish()
    frames = terminal.getvalue().split("\r")[1:]
    assert frames[0] == "replay [##------]  25% (1/4)"
    assert frames[-1] == "replay [########] 100% (4/4)\n"
    assert len(frames) == 4
