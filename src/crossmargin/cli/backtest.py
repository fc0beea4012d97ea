"""``crossmargin backtest SPEC``: run a book through the engine over candles, print a summary,
write the report; ``--sweep`` adds a survival-versus-leverage (or allocation) sweep.

Data: ``--episode NAME`` (a bundled crash) or ``--data DIR`` (files ``<SYMBOL>_1h.csv``), else
whatever the SPEC names; ``--from/--to`` narrow the window. Exit codes as ``crossmargin``'s.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from crossmargin.batch import compile_notice
from crossmargin.cli.render import money, table
from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import format_decimal
from crossmargin.ledger import EventStore, open_store
from crossmargin.sim.backtest import BacktestResult, run_backtest
from crossmargin.sim.backtest_report import (
    SUMMARY_HEADER,
    summary_rows,
    write_backtest_report,
)
from crossmargin.sim.episodes import load_episode
from crossmargin.sim.feed import AlignedCandles, align
from crossmargin.sim.market import CandleSeries, DataWarning, TimeWindow, load_candles
from crossmargin.sim.report import ProgressBar
from crossmargin.sim.spec import BacktestSpec, load_spec, parse_modes, parse_sweep_option
from crossmargin.sim.sweep import SweepResult, render_sweep_png, run_sweep

FILE_SUFFIX = "_1h.csv"


def load_market(
    spec: BacktestSpec,
    *,
    episode: str | None,
    data: str | None,
    start: str | None,
    end: str | None,
) -> tuple[AlignedCandles, str, tuple[DataWarning, ...]]:
    """The aligned candles of the spec's symbols, a description of their source, and warnings."""
    window = TimeWindow.parse(start, end) if (start or end) else None
    if window is None and (spec.start or spec.end):
        window = TimeWindow.checked(spec.start, spec.end)
    chosen_episode = episode if episode is not None else (None if data else spec.episode)
    series: list[CandleSeries] = []
    warnings: list[DataWarning] = []
    if chosen_episode is not None:
        loaded = load_episode(chosen_episode, spec.symbols)
        for symbol in spec.symbols:
            item = loaded.series[symbol]
            if window is not None:
                item = item.between(window.start, window.end)
            series.append(item)
        warnings.extend(
            w for w in loaded.warnings if window is None or window.contains(w.timestamp)
        )
        source = f"episode {chosen_episode}"
    else:
        directory = Path(data) if data is not None else spec.data
        if directory is None:
            raise InvalidInput(
                "--data", "give --data DIR or --episode NAME (or data:/episode: in the SPEC)"
            )
        if not directory.is_dir():
            raise InvalidInput("--data", f"no such directory: {directory}")
        for symbol in spec.symbols:
            path = directory / f"{symbol}{FILE_SUFFIX}"
            if not path.is_file():
                raise InvalidInput("--data", f"no {symbol}{FILE_SUFFIX} in {directory}")
            candles = load_candles(path, symbol=symbol, window=window)
            series.append(candles.series)
            warnings.extend(candles.warnings)
        source = f"data {directory}"
    return align(series), source, tuple(warnings)


def _store_factory(directory: str | None) -> Callable[[str], EventStore] | None:
    if directory is None:
        return None
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)

    def factory(mode: str) -> EventStore:
        path = folder / f"{mode}.db"
        if path.exists():
            raise InvalidInput("--store", f"{path} exists; a backtest writes a fresh log")
        return open_store(path)

    return factory


class _Progress:
    """One progress bar per mode on stderr (drawn only when stderr is a terminal)."""

    def __init__(self) -> None:
        self.bars: dict[str, ProgressBar] = {}

    def __call__(self, mode: str, done: int, total: int) -> None:
        bar = self.bars.get(mode)
        if bar is None:
            bar = self.bars[mode] = ProgressBar(total, label=f"backtest {mode:8}")
        bar.update(done)
        if done == total:
            bar.finish()


def cmd_backtest(args: argparse.Namespace) -> str:
    spec = load_spec(args.spec)
    modes = parse_modes(args.modes, "--modes") if args.modes else spec.modes
    sweep = parse_sweep_option(args.sweep) if args.sweep else spec.sweep
    market, source, warnings = load_market(
        spec, episode=args.episode, data=args.data, start=args.start, end=args.end
    )
    with compile_notice():  # the engine's float screen compiles its kernel on a first run
        result = run_backtest(
            spec,
            market,
            source=source,
            modes=modes,
            store_factory=_store_factory(args.store),
            progress=_Progress(),
        )
    files: dict[str, str] = {}
    out = Path(args.out) if args.out else Path(f"{spec.name}-report")
    if not args.no_report:
        written = write_backtest_report(result, out)
        files = {
            "html": str(written.html),
            "png": str(written.png),
            "events": str(written.events_csv),
        }
    swept = None
    if sweep is not None:
        swept = run_sweep(spec, market, sweep, modes)
        if not args.no_report:
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"sweep-{swept.parameter}.png"
            path.write_bytes(render_sweep_png(swept, f"{spec.name}: survival vs {swept.parameter}"))
            files["sweep"] = str(path)
    if args.json:
        return json.dumps(result_json(result, swept, files, warnings), indent=2)
    return render_text(result, swept, files, warnings)


def _time(moment: Any) -> str:
    return str(moment.strftime("%Y-%m-%d %H:%M"))


def render_text(
    result: BacktestResult,
    swept: SweepResult | None,
    files: dict[str, str],
    warnings: tuple[DataWarning, ...],
) -> str:
    market = result.market
    spec = result.spec
    lines = [
        f"backtest {spec.name}: {spec.venue}, {result.source} ({', '.join(spec.symbols)}), "
        f"{_time(market.timestamps[0])} to {_time(market.timestamps[-1] + market.interval)} UTC, "
        f"{len(market.timestamps)} candles x 4 intrabar marks",
        "",
        table(SUMMARY_HEADER, summary_rows(result)),
    ]
    for mode in result.modes:
        for activity in mode.liquidations:
            lines.append(
                f"  {mode.mode}: {activity.kind} {activity.symbol} {activity.side} "
                f"{_decimal(activity.quantity)} @ {_decimal(activity.price)} "
                f"at {_time(activity.timestamp)} (loss {money(activity.loss_usd)} USD)"
            )
    if swept is not None:
        lines += [
            "",
            f"sweep over {swept.parameter} (hours until the first liquidation, "
            f"of {swept.hours:g}):",
        ]
        header = (swept.parameter, *swept.modes)
        rows = []
        for value in swept.values:
            cells = [format_decimal(value)]
            for name in swept.modes:
                point = swept.point(name, value)
                if point.refused:
                    cells.append("refused")
                elif point.liquidated_at is None:
                    cells.append("survived")
                else:
                    cells.append(f"{point.hours_survived:.1f} h ({_time(point.liquidated_at)})")
            rows.append(cells)
        lines.append(table(header, rows))
    if warnings:
        lines += ["", f"data warnings: {len(warnings)} (first: {warnings[0]})"]
    if files:
        lines += ["", *(f"{name}: {path}" for name, path in files.items())]
    lines.append(
        f"ran {len(result.modes)} mode(s) in {result.seconds:.1f} s "
        f"({result.marks_posted} marks posted)"
        + (f"; sweep in {swept.seconds:.1f} s" if swept is not None else "")
    )
    return "\n".join(lines)


def _decimal(value: Any) -> Any:
    return None if value is None else format_decimal(value)


def result_json(
    result: BacktestResult,
    swept: SweepResult | None,
    files: dict[str, str],
    warnings: tuple[DataWarning, ...],
) -> dict[str, Any]:
    """Exact Decimals as strings, times in ISO UTC."""
    modes = []
    for mode in result.modes:
        modes.append(
            {
                "mode": mode.mode,
                "start_equity": _decimal(mode.start_equity),
                "final_equity": _decimal(mode.final_equity),
                "final_wallet": _decimal(mode.final_wallet),
                "max_drawdown_usd": _decimal(mode.max_drawdown_usd),
                "max_drawdown_fraction": _decimal(mode.max_drawdown_fraction),
                "fees_paid": _decimal(mode.fees_paid),
                "liquidation_fees": _decimal(mode.liquidation_fees),
                "funding_paid": _decimal(mode.funding_paid),
                "top_ups": _decimal(mode.top_ups),
                "capital_peak": _decimal(mode.capital_peak),
                "capital_average": _decimal(mode.capital_average),
                "state_hash": mode.state_hash,
                "activities": [
                    {
                        "time": activity.timestamp.isoformat(),
                        "kind": activity.kind,
                        "symbol": activity.symbol,
                        "side": activity.side,
                        "quantity": _decimal(activity.quantity),
                        "price": _decimal(activity.price),
                        "amount_usd": _decimal(activity.amount_usd),
                        "loss_usd": _decimal(activity.loss_usd),
                        "note": activity.note,
                    }
                    for activity in mode.activities
                ],
            }
        )
    document: dict[str, Any] = {
        "name": result.spec.name,
        "source": result.source,
        "candles": len(result.market.timestamps),
        "modes": modes,
        "files": files,
        "warnings": [str(warning) for warning in warnings],
    }
    if swept is not None:
        document["sweep"] = {
            "parameter": swept.parameter,
            "hours": swept.hours,
            "points": [
                {
                    "mode": point.mode,
                    "value": format_decimal(point.value),
                    "refused": point.refused,
                    "liquidated_at": None
                    if point.liquidated_at is None
                    else point.liquidated_at.isoformat(),
                    "hours_survived": point.hours_survived,
                }
                for point in swept.points
            ],
        }
    return document


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "backtest", help="run a book through the engine over candles, cross and isolated"
    )
    parser.add_argument("spec", metavar="SPEC", help="the backtest spec (YAML or JSON)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="DIR", help="candle files <SYMBOL>_1h.csv")
    source.add_argument("--episode", metavar="NAME", help="a bundled episode, e.g. may-2021")
    parser.add_argument("--from", dest="start", metavar="DATE", help="window start (UTC)")
    parser.add_argument("--to", dest="end", metavar="DATE", help="window end, exclusive (UTC)")
    parser.add_argument("--modes", help="comma-separated: cross, isolated, mixed")
    parser.add_argument("--out", metavar="DIR", help="report folder (default <name>-report)")
    parser.add_argument("--no-report", action="store_true", help="print the summary only")
    parser.add_argument(
        "--sweep", metavar="PARAM=V1,V2", help="leverage=2,3,5 or allocation=0.5,1,2"
    )
    parser.add_argument(
        "--store", metavar="DIR", help="keep each mode's event log as DIR/<mode>.db (SQLite)"
    )
    parser.add_argument("--json", action="store_true", help="JSON instead of text")
    parser.set_defaults(run=cmd_backtest)
