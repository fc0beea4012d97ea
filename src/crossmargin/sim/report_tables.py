"""Report tables: the self-contained HTML page and the events CSV, in exact Decimal text.

What it owns: :func:`render_html` (title, notes, the chart inline as base64, a summary per mode,
the positions and the liquidation events; no scripts, no external links) and
:func:`write_events_csv` (one row per event, ISO UTC times). The summary's highest margin ratio is
rounded up, so risk is never understated; times in the HTML are UTC to the minute.
"""

from __future__ import annotations

import base64
import csv
import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_UP, Decimal
from pathlib import Path

from crossmargin.core.numbers import format_decimal
from crossmargin.sim.report_data import LiquidationEvent, ModeTrack, ReportData

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
