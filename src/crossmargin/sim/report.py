"""Backtest reports: a chart (PNG), a self-contained HTML page and an events CSV, as files.

The producer (a backtest, a replay) fills :class:`ReportData`: one list of timestamps and, aligned
with it, the price of every symbol and, per margin mode (``cross``, ``isolated``, ...), the equity,
the margin ratio and each position's entry and liquidation price lines, plus the liquidation
events. Optional ``lows``/``highs`` per symbol draw the candle range the intrabar test used. Every
series must have one value per timestamp; ``None`` marks a gap (a position not open yet or
closed, no liquidation price, no margin ratio because nothing is open).

Units: prices in quote currency (USDT) per base unit; equity and losses in USD; the margin ratio
is ``maintenance margin / margin balance`` as a fraction (1 = liquidatable), drawn in percent.

What it owns: :func:`write_report`, which puts the three files side by side. The data and its
checks are :mod:`crossmargin.sim.report_data`, the chart :mod:`crossmargin.sim.report_chart`, the
HTML page and the CSV :mod:`crossmargin.sim.report_tables`; the progress bar
:mod:`crossmargin.sim.progress`. Decimals are turned into floats only to draw; tables and the CSV
print the exact Decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crossmargin.sim.report_chart import render_png
from crossmargin.sim.report_data import LiquidationEvent, ModeTrack, PositionTrack, ReportData
from crossmargin.sim.report_tables import render_html, write_events_csv

# The report's data model stays importable from here: docs/market-data.md presents it as this
# module's.
__all__ = [
    "LiquidationEvent",
    "ModeTrack",
    "PositionTrack",
    "ReportData",
    "ReportFiles",
    "write_report",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportFiles:
    png: Path
    html: Path
    events_csv: Path


def write_report(data: ReportData, directory: Path, stem: str = "report") -> ReportFiles:
    """Write ``<stem>.png``, ``<stem>.html`` (the PNG embedded) and ``<stem>-events.csv``."""
    directory.mkdir(parents=True, exist_ok=True)
    png = render_png(data)
    png_path = directory / f"{stem}.png"
    png_path.write_bytes(png)
    html_path = directory / f"{stem}.html"
    html_path.write_text(render_html(data, png), encoding="utf-8")
    events_path = write_events_csv(data.events, directory / f"{stem}-events.csv")
    return ReportFiles(png=png_path, html=html_path, events_csv=events_path)
