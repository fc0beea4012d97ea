"""Backtest outputs: the report (chart PNG + HTML, via :mod:`crossmargin.sim.report_chart` and
:mod:`crossmargin.sim.report_tables`), the events CSV of everything that happened to the trader,
and the summary rows the terminal table prints.

Units: USD for money, quote currency per base unit for prices, margin ratios as fractions
(maintenance / margin balance; 1 = liquidatable). The CSV and the HTML tables print exact Decimal
text; what people read in a terminal (:func:`summary_rows`, the notes) shows money in cents with
thousands separators (:func:`money_text`) and prices to six significant digits
(:func:`price_text`). Drawdown fractions are rounded up so risk is never understated.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, ROUND_UP, Decimal
from pathlib import Path

from crossmargin.core.errors import InvariantViolation
from crossmargin.core.numbers import format_decimal
from crossmargin.core.position import Side
from crossmargin.sim.backtest_events import LIQUIDATION_KINDS, Activity
from crossmargin.sim.backtest_results import BacktestResult, ModeResult
from crossmargin.sim.report_chart import render_png
from crossmargin.sim.report_data import LiquidationEvent, ModeTrack, PositionTrack, ReportData
from crossmargin.sim.report_tables import render_html

ACTIVITY_COLUMNS = (
    "timestamp",
    "mode",
    "kind",
    "symbol",
    "side",
    "quantity",
    "price",
    "amount_usd",
    "loss_usd",
    "note",
)

INTRABAR_NOTE = (
    "Candles approximate the path. Each hourly candle is replayed as Open, then the extreme "
    "nearer the open, then the other extreme, then Close, so every long is tested against the "
    "candle's Low and every short against its High before the Close; between two of these "
    "marks the price is taken to move in a straight line, and a liquidation (or stop, or "
    "top-up) fires where that line crosses its level, at that level's price. What this means: "
    "a liquidation here says the candle's range reached the liquidation price, not that the "
    "venue's mark price did (mark and last prices differ in a crash, and wicks are often "
    "shorter in the mark price); the true order of the Low and the High inside the hour is "
    "unknown; times are those of the intrabar mark (start, +20 min, +40 min, +59:59.999), "
    "so an event is known to the hour, not the minute."
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestFiles:
    png: Path
    html: Path
    events_csv: Path


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


CENT = Decimal("0.01")
PRICE_DIGITS = 6  # significant digits of a price shown to people (a tick is finer than this)
MAX_PRICE_PLACES = 12


def _grouped(text: str) -> str:
    """Thousands separators in the integer part of a plain decimal text (``-1234.5`` ->
    ``-1,234.5``)."""
    sign = "-" if text.startswith("-") else ""
    whole, point, fraction = text.removeprefix("-").partition(".")
    return f"{sign}{int(whole):,}{point}{fraction}"


def money_text(value: Decimal) -> str:
    """USD in cents, half-even, with separators: ``1305.684`` -> ``1,305.68``; ``3.5`` -> ``3.50``."""
    cents = value.quantize(CENT, rounding=ROUND_HALF_EVEN)
    if cents == 0:
        cents = abs(cents)  # never "-0.00"
    return _grouped(format(cents, "f"))


def price_text(value: Decimal) -> str:
    """A price to six significant digits, at least two decimals, separators: ``2181.23707903`` ->
    ``2,181.24``, ``39263.52`` -> ``39,263.52``, ``0.3456789`` -> ``0.345679``."""
    if value == 0:
        return "0.00"
    places = min(max(2, PRICE_DIGITS - (value.adjusted() + 1)), MAX_PRICE_PLACES)
    text = format(value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN), "f")
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return _grouped(f"{whole}.{fraction}")


def quantity_text(value: Decimal) -> str:
    """A quantity exactly (base units), with separators: ``12500.5`` -> ``12,500.5``."""
    return _grouped(format_decimal(value))


def signed_money_text(value: Decimal, negative: str, positive: str) -> str:
    """``value`` as a word and an amount: ``signed_money_text(x, "received", "paid")`` reads
    ``paid 2.25`` or ``received 8.76`` (zero: ``0.00``)."""
    amount = money_text(abs(value))
    if amount == "0.00":
        return amount
    return f"{negative if value < 0 else positive} {amount}"


def _money(value: Decimal) -> str:
    return money_text(value)


def _percent(fraction: Decimal) -> str:
    return f"{(fraction * 100).quantize(CENT, rounding=ROUND_UP):f}%"


def liquidation_summary(mode: ModeResult) -> str:
    """``none`` or ``ETHUSDT long @ 2,186.48 2021-05-19 12:40; ...``."""
    items = [
        f"{a.symbol} {a.side} @ {price_text(a.price) if a.price is not None else '-'} "
        f"{_time(a.timestamp)}" + (" (partial)" if a.kind == "partial-liquidation" else "")
        for a in mode.liquidations
    ]
    return "; ".join(items) if items else "none"


def _liquidation_count(mode: ModeResult) -> str:
    found = mode.liquidations
    if not found:
        return "0"
    return f"{len(found)} (first {_time(found[0].timestamp)})"


SUMMARY_HEADER = (
    "mode",
    "final equity",
    "max drawdown",
    "liquidations",
    "fees paid",
    "liquidation fees",
    "funding",
    "capital tied up (peak / avg)",
)


def summary_rows(result: BacktestResult) -> list[tuple[str, ...]]:
    """One row per mode, in USD (cents); liquidations as a count and the first one's time."""
    rows: list[tuple[str, ...]] = []
    for mode in result.modes:
        rows.append(
            (
                mode.mode,
                _money(mode.final_equity),
                f"{_money(mode.max_drawdown_usd)} ({_percent(mode.max_drawdown_fraction)})",
                _liquidation_count(mode),
                _money(mode.fees_paid),
                _money(mode.liquidation_fees),
                signed_money_text(mode.funding_paid, "received", "paid"),
                f"{_money(mode.capital_peak)} / {_money(mode.capital_average)}",
            )
        )
    return rows


def report_data(result: BacktestResult, title: str | None = None) -> ReportData:
    """The chart and HTML contents: prices with entry and liquidation lines, equity and margin
    ratio per mode, liquidation markers."""
    if not result.modes:
        raise InvariantViolation("a backtest result without modes")
    first = result.modes[0]
    timestamps = tuple(sample.timestamp for sample in first.samples)
    for mode in result.modes[1:]:
        if tuple(sample.timestamp for sample in mode.samples) != timestamps:
            raise InvariantViolation(f"mode {mode.mode} was sampled at other times")
    spec = result.spec
    rows = dict(zip(result.market.timestamps, result.market.rows, strict=True))
    prices = {
        symbol: tuple(sample.prices[symbol] for sample in first.samples) for symbol in spec.symbols
    }
    lows = {
        symbol: tuple(rows[sample.candle_start][symbol].low for sample in first.samples)
        for symbol in spec.symbols
    }
    highs = {
        symbol: tuple(rows[sample.candle_start][symbol].high for sample in first.samples)
        for symbol in spec.symbols
    }
    modes = tuple(
        ModeTrack(
            name=mode.mode,
            equity=tuple(sample.equity for sample in mode.samples),
            margin_ratio=tuple(sample.margin_ratio for sample in mode.samples),
            positions=tuple(
                PositionTrack(
                    label=position.label,
                    symbol=position.symbol,
                    side=position.side,
                    entry_price=tuple(
                        sample.positions[position.label].entry_price for sample in mode.samples
                    ),
                    liquidation_price=tuple(
                        sample.positions[position.label].liquidation_price
                        for sample in mode.samples
                    ),
                )
                for position in spec.positions
            ),
        )
        for mode in result.modes
    )
    events = tuple(
        LiquidationEvent(
            timestamp=activity.timestamp,
            mode=activity.mode,
            symbol=activity.symbol,
            side=Side(activity.side),
            quantity=activity.quantity if activity.quantity is not None else Decimal(0),
            price=activity.price if activity.price is not None else Decimal(0),
            loss_usd=activity.loss_usd if activity.loss_usd is not None else Decimal(0),
            kind=activity.kind,
            note=activity.note,
        )
        for mode in result.modes
        for activity in mode.activities
        if activity.kind in LIQUIDATION_KINDS
    )
    return ReportData(
        title=title or f"{spec.name}: {spec.venue}, {result.source}",
        timestamps=timestamps,
        prices=prices,
        modes=modes,
        events=events,
        notes=report_notes(result),
        lows=lows,
        highs=highs,
    )


def report_notes(result: BacktestResult) -> tuple[str, ...]:
    spec = result.spec
    notes = [
        INTRABAR_NOTE,
        f"Funding: {spec.funding.source} per 8 h, settled at 00:00, 08:00 and 16:00 UTC "
        "(longs pay a positive rate).",
        "Each mode ran the same book through the engine on its own log; the insurance fund was "
        "seeded far above any loss, so no result depends on auto-deleveraging.",
    ]
    for mode in result.modes:
        notes.append(
            f"{mode.mode}: final equity {_money(mode.final_equity)} USD from "
            f"{_money(mode.start_equity)}; max drawdown {_money(mode.max_drawdown_usd)} "
            f"({_percent(mode.max_drawdown_fraction)}); fees {_money(mode.fees_paid)}, "
            f"liquidation fees {_money(mode.liquidation_fees)}, funding "
            f"{signed_money_text(mode.funding_paid, 'received', 'paid')}, top-ups "
            f"{_money(mode.top_ups)}; capital tied up "
            f"peak {_money(mode.capital_peak)}, average {_money(mode.capital_average)}; "
            f"liquidations: {liquidation_summary(mode)}."
        )
    return tuple(notes)


def write_activity_csv(result: BacktestResult, path: Path) -> Path:
    """Every activity of every mode, time-ordered within a mode; exact Decimals, ISO UTC."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ACTIVITY_COLUMNS)
        for mode in result.modes:
            for activity in mode.activities:
                writer.writerow(_activity_row(activity))
    return path


def _text(value: Decimal | None) -> str:
    return "" if value is None else format_decimal(value)


def _activity_row(activity: Activity) -> list[str]:
    return [
        _iso(activity.timestamp),
        activity.mode,
        activity.kind,
        activity.symbol,
        activity.side,
        _text(activity.quantity),
        _text(activity.price),
        _text(activity.amount_usd),
        _text(activity.loss_usd),
        activity.note,
    ]


RUN_FILE = "backtest-run.txt"


def report_run(directory: Path) -> str | None:
    """Which run wrote the backtest report in ``directory`` (its ``run`` text), None when there
    is none; a report without the record (older versions) reads as ``an unknown run``."""
    if not (directory / "backtest.html").exists():
        return None
    try:
        return (directory / RUN_FILE).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return "an unknown run"


def write_backtest_report(
    result: BacktestResult, directory: Path, stem: str = "backtest", run: str = ""
) -> BacktestFiles:
    """Write ``<stem>.png``, ``<stem>.html`` (chart inline) and ``<stem>-events.csv``, and
    record ``run`` (which book on which data) in ``backtest-run.txt`` for :func:`report_run`."""
    directory.mkdir(parents=True, exist_ok=True)
    if run:
        (directory / RUN_FILE).write_text(run + "\n", encoding="utf-8")
    data = report_data(result)
    png = render_png(data)
    png_path = directory / f"{stem}.png"
    png_path.write_bytes(png)
    html_path = directory / f"{stem}.html"
    html_path.write_text(render_html(data, png), encoding="utf-8")
    events_path = write_activity_csv(result, directory / f"{stem}-events.csv")
    return BacktestFiles(png=png_path, html=html_path, events_csv=events_path)
