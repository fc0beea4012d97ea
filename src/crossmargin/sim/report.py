"""Backtest reports: a chart (PNG), a self-contained HTML page, an events CSV, a progress bar.

The producer (a backtest, a replay) fills :class:`ReportData`: one list of timestamps and, aligned
with it, the price of every symbol and, per margin mode (``cross``, ``isolated``, ...), the equity,
the margin ratio and each position's entry and liquidation price lines, plus the liquidation
events. Optional ``lows``/``highs`` per symbol draw the candle range the intrabar test used. Every series must have one value per timestamp; ``None`` marks a gap (a position not open
yet or closed, no liquidation price, no margin ratio because nothing is open).

Units: prices in quote currency (USDT) per base unit; equity and losses in USD; the margin ratio
is ``maintenance margin / margin balance`` as a fraction (1 = liquidatable), drawn in percent.

Decimals are turned into floats only to draw; tables and the CSV print the exact Decimals.
matplotlib (the ``report`` extra) is imported when a chart is drawn, with the Agg canvas and no
pyplot, so no display and no global figure state are involved.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import itertools
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_UP, Decimal
from pathlib import Path
from typing import TextIO, TypeVar

from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import format_decimal
from crossmargin.core.position import Side

MARGIN_CALL_RATIO = Decimal("0.8")
EVENT_COLUMNS = (
    "timestamp",
    "mode",
    "kind",
    "symbol",
    "side",
    "quantity",
    "price",
    "loss_usd",
    "note",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionTrack:
    """One position's reference lines, one value (or None) per report timestamp."""

    label: str
    symbol: str
    side: Side
    entry_price: tuple[Decimal | None, ...]
    liquidation_price: tuple[Decimal | None, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeTrack:
    """An account run in one margin mode: equity (USD) and margin ratio per timestamp."""

    name: str
    equity: tuple[Decimal, ...]
    margin_ratio: tuple[Decimal | None, ...]
    positions: tuple[PositionTrack, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LiquidationEvent:
    """A liquidation (or partial liquidation, bankruptcy, ADL) and what it cost the trader."""

    timestamp: datetime
    mode: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    loss_usd: Decimal
    kind: str = "liquidation"
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportData:
    """Everything a report shows; validated on construction (lengths, names, time order)."""

    title: str
    timestamps: tuple[datetime, ...]
    prices: Mapping[str, tuple[Decimal, ...]]
    modes: tuple[ModeTrack, ...]
    events: tuple[LiquidationEvent, ...] = ()
    notes: tuple[str, ...] = ()
    lows: Mapping[str, tuple[Decimal, ...]] = field(default_factory=dict)
    highs: Mapping[str, tuple[Decimal, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        count = len(self.timestamps)
        if count == 0:
            raise InvalidInput("timestamps", "a report needs at least one timestamp")
        if any(later <= earlier for earlier, later in itertools.pairwise(self.timestamps)):
            raise InvalidInput("timestamps", "must be strictly increasing")
        if not self.prices:
            raise InvalidInput("prices", "at least one symbol is needed")
        for symbol, values in self.prices.items():
            _check_length(values, count, f"prices.{symbol}")
        for name, extremes in (("lows", self.lows), ("highs", self.highs)):
            for symbol, values in extremes.items():
                if symbol not in self.prices:
                    raise InvalidInput(f"{name}.{symbol}", f"no price series for {symbol}")
                _check_length(values, count, f"{name}.{symbol}")
        self._check_modes(count)

    def _check_modes(self, count: int) -> None:
        names = [mode.name for mode in self.modes]
        if len(set(names)) != len(names):
            raise InvalidInput("modes", f"mode names must be unique, got {', '.join(names)}")
        for index, mode in enumerate(self.modes):
            _check_length(mode.equity, count, f"modes[{index}].equity")
            _check_length(mode.margin_ratio, count, f"modes[{index}].margin_ratio")
            for number, track in enumerate(mode.positions):
                where = f"modes[{index}].positions[{number}]"
                if track.symbol not in self.prices:
                    raise InvalidInput(f"{where}.symbol", f"no price series for {track.symbol}")
                _check_length(track.entry_price, count, f"{where}.entry_price")
                _check_length(track.liquidation_price, count, f"{where}.liquidation_price")
        for index, event in enumerate(self.events):
            if event.mode not in names:
                raise InvalidInput(f"events[{index}].mode", f"unknown mode {event.mode!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportFiles:
    png: Path
    html: Path
    events_csv: Path


def _check_length(values: Sequence[object], count: int, field: str) -> None:
    if len(values) != count:
        raise InvalidInput(field, f"has {len(values)} values for {count} timestamps")


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
                colour = colours[mode.name]
                axis.plot(
                    times,
                    _floats(track.entry_price),
                    color=colour,
                    linestyle="--",
                    linewidth=0.9,
                    label=f"{mode.name}: entry {track.label}",
                )
                axis.plot(
                    times,
                    _floats(track.liquidation_price),
                    color=colour,
                    linestyle=":",
                    linewidth=1.4,
                    label=f"{mode.name}: liquidation {track.label}",
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
    equity_axis, ratio_axis = axes[-2], axes[-1]
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
    figure.suptitle(data.title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _floats(values: Sequence[Decimal | None], scale: int = 1) -> list[float]:
    return [float("nan") if value is None else float(value * scale) for value in values]


def render_html(data: ReportData, png: bytes) -> str:
    """A single HTML page: title, notes, the chart inline (base64), summary and event tables."""
    image = base64.b64encode(png).decode("ascii")
    notes = "".join(f"<p>{html.escape(note)}</p>" for note in data.notes)
    span = f"{_time(data.timestamps[0])} to {_time(data.timestamps[-1])}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(data.title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;"
        "padding:.3em .6em;text-align:right}th{background:#eee}td.text{text-align:left}"
        "img{max-width:100%}</style></head><body>",
        f"<h1>{html.escape(data.title)}</h1>",
        f"<p>{html.escape(span)} (UTC), {len(data.timestamps)} points.</p>",
        notes,
        f'<img alt="{html.escape(data.title)} chart" src="data:image/png;base64,{image}">',
        "<h2>Summary by margin mode</h2>",
        _table(
            (
                "mode",
                "start equity",
                "end equity",
                "lowest equity",
                "at",
                "highest margin ratio",
                "at",
                "liquidations",
                "liquidation loss (USD)",
            ),
            [_summary_row(data, mode) for mode in data.modes],
        ),
        "<h2>Positions</h2>",
        _table(
            ("mode", "position", "symbol", "side", "entry", "last liquidation price"),
            [
                (
                    mode.name,
                    track.label,
                    track.symbol,
                    track.side.value,
                    _number(_first(track.entry_price)),
                    _number(_last(track.liquidation_price)),
                )
                for mode in data.modes
                for track in mode.positions
            ],
        ),
        "<h2>Liquidation events</h2>",
        _table(EVENT_COLUMNS, [_event_row(event) for event in data.events])
        if data.events
        else "<p>No liquidations.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _summary_row(data: ReportData, mode: ModeTrack) -> tuple[str, ...]:
    lowest = min(range(len(mode.equity)), key=lambda index: mode.equity[index])
    ratios = [(value, index) for index, value in enumerate(mode.margin_ratio) if value is not None]
    highest = max(ratios, key=lambda pair: pair[0]) if ratios else None
    events = [event for event in data.events if event.mode == mode.name]
    return (
        mode.name,
        _number(mode.equity[0]),
        _number(mode.equity[-1]),
        _number(mode.equity[lowest]),
        _time(data.timestamps[lowest]),
        "-" if highest is None else _percent_up(highest[0]),
        "-" if highest is None else _time(data.timestamps[highest[1]]),
        str(len(events)),
        _number(sum((event.loss_usd for event in events), Decimal(0))),
    )


def _event_row(event: LiquidationEvent) -> tuple[str, ...]:
    return (
        _time(event.timestamp),
        event.mode,
        event.kind,
        event.symbol,
        event.side.value,
        format_decimal(event.quantity),
        format_decimal(event.price),
        format_decimal(event.loss_usd),
        event.note,
    )


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(text: str) -> str:
    numeric = text.replace(".", "", 1).replace("-", "", 1).replace("%", "").isdigit()
    css = "" if numeric else ' class="text"'
    return f"<td{css}>{html.escape(text)}</td>"


def _percent_up(ratio: Decimal) -> str:
    """A margin ratio in percent, rounded up (as core.numbers.round_ratio): never understated."""
    return f"{format_decimal((ratio * 100).quantize(Decimal('0.01'), rounding=ROUND_UP))}%"


def _first(values: Sequence[Decimal | None]) -> Decimal | None:
    return next((value for value in values if value is not None), None)


def _last(values: Sequence[Decimal | None]) -> Decimal | None:
    return _first(values[::-1])


def _number(value: Decimal | None) -> str:
    return "-" if value is None else format_decimal(value)


def _time(timestamp: datetime) -> str:
    return timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def write_events_csv(events: Sequence[LiquidationEvent], path: Path) -> Path:
    """One row per event, exact Decimals, ISO UTC timestamps; a header even when empty."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(EVENT_COLUMNS)
        for event in events:
            row = list(_event_row(event))
            row[0] = event.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z")
            writer.writerow(row)
    return path


T = TypeVar("T")


class ProgressBar:
    """``label [#####-----]  50% (5/10)`` redrawn in place on stderr, only when it is a terminal."""

    def __init__(
        self, total: int, *, label: str = "", stream: TextIO | None = None, width: int = 30
    ) -> None:
        if total < 0:
            raise InvalidInput("total", f"must not be negative, got {total}")
        self._total = total
        self._label = label
        self._stream = sys.stderr if stream is None else stream
        self._width = width
        self._enabled = self._stream.isatty()
        self._shown = -1
        self._done = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    def update(self, done: int) -> None:
        self._done = min(max(done, 0), self._total)
        percent = 100 if self._total == 0 else self._done * 100 // self._total
        if not self._enabled or percent == self._shown:
            return
        self._shown = percent
        filled = percent * self._width // 100
        bar = "#" * filled + "-" * (self._width - filled)
        prefix = f"{self._label} " if self._label else ""
        self._stream.write(f"\r{prefix}[{bar}] {percent:3d}% ({self._done}/{self._total})")
        self._stream.flush()

    def finish(self) -> None:
        self.update(self._total)
        if self._enabled:
            self._stream.write("\n")
            self._stream.flush()


def with_progress(
    items: Iterable[T], total: int, *, label: str = "", stream: TextIO | None = None
) -> Iterator[T]:
    """Yield ``items`` while drawing a :class:`ProgressBar` (silent when stderr is not a TTY)."""
    bar = ProgressBar(total, label=label, stream=stream)
    for done, item in enumerate(items, start=1):
        yield item
        bar.update(done)
    bar.finish()
