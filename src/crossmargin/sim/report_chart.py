"""Report chart: the PNG of a :class:`~crossmargin.sim.report_data.ReportData`.

What it owns: the figure. A price panel per symbol (the candle's low-high band where given, each
mode's entry lines dashed and liquidation lines dotted, liquidations marked with an X), then an
equity panel (USD) and a margin-ratio panel (percent) with the 80% warning and 100% liquidation
levels; one colour per mode. Decimals become floats here only to draw (``None`` draws as a gap).
matplotlib (the ``report`` extra) is imported when a chart is drawn, with the Agg canvas and no
pyplot, so no display and no global figure state are involved.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from crossmargin.core.numbers import format_decimal
from crossmargin.sim.report_data import ReportData

MARGIN_CALL_RATIO = Decimal("0.8")


def render_png(data: ReportData) -> bytes:
    """The chart: a price panel per symbol with entry (dashed) and liquidation (dotted) lines and
    liquidation markers, then equity and margin ratio panels, one colour per mode."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    symbols = list(data.prices)
    panels = len(symbols) + 2
    figure = Figure(figsize=(11, 2.4 * panels), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    times = list(data.timestamps)
    colours = {mode.name: f"C{index + 1}" for index, mode in enumerate(data.modes)}
    for axis, symbol in zip(axes, symbols, strict=False):
        _price_panel(axis, data, symbol, times, colours)
    _mode_panels(axes[-2], axes[-1], data, times, colours)
    figure.suptitle(data.title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _price_panel(
    axis: Any, data: ReportData, symbol: str, times: list[datetime], colours: Mapping[str, str]
) -> None:
    axis.plot(times, _floats(data.prices[symbol]), color="C0", linewidth=1.0, label=symbol)
    if symbol in data.lows and symbol in data.highs:
        axis.fill_between(
            times,
            _floats(data.lows[symbol]),
            _floats(data.highs[symbol]),
            color="C0",
            alpha=0.2,
            linewidth=0,
            label=f"{symbol} low-high",
        )
    for mode in data.modes:
        for track in mode.positions:
            if track.symbol != symbol:
                continue
            lines = (
                ("entry", track.entry_price, "--", 0.9),
                ("liquidation", track.liquidation_price, ":", 1.4),
            )
            for name, values, style, width in lines:
                axis.plot(
                    times,
                    _floats(values),
                    color=colours[mode.name],
                    linestyle=style,
                    linewidth=width,
                    label=f"{mode.name}: {name} {track.label}",
                )
    for event in data.events:
        if event.symbol == symbol:
            axis.plot(
                [event.timestamp],
                [float(event.price)],
                marker="X",
                markersize=9,
                color=colours[event.mode],
                linestyle="none",
            )
    axis.set_ylabel(f"{symbol} price")
    axis.legend(loc="best", fontsize="x-small")
    axis.grid(alpha=0.3)


def _mode_panels(
    equity_axis: Any,
    ratio_axis: Any,
    data: ReportData,
    times: list[datetime],
    colours: Mapping[str, str],
) -> None:
    for mode in data.modes:
        equity_axis.plot(times, _floats(mode.equity), color=colours[mode.name], label=mode.name)
        ratio_axis.plot(
            times, _floats(mode.margin_ratio, scale=100), color=colours[mode.name], label=mode.name
        )
    equity_axis.set_ylabel("equity (USD)")
    ratio_axis.set_ylabel("margin ratio (%)")
    ratio_axis.axhline(100, color="red", linewidth=0.8, label="liquidation (100%)")
    ratio_axis.axhline(
        float(MARGIN_CALL_RATIO * 100),
        color="orange",
        linewidth=0.8,
        label=f"warning ({format_decimal(MARGIN_CALL_RATIO * 100)}%)",
    )
    for axis in (equity_axis, ratio_axis):
        axis.legend(loc="best", fontsize="x-small")
        axis.grid(alpha=0.3)


def _floats(values: Sequence[Decimal | None], scale: int = 1) -> list[float]:
    return [float("nan") if value is None else float(value * scale) for value in values]
