"""``crossmargin backtest [SPEC]``: run a book through the engine over candles, print a summary,
write the report; ``--sweep`` adds a survival-versus-leverage (or allocation) sweep. Without a
SPEC the book is the worked example (``sim.demo.backtest_spec``).

Data: ``--episode NAME`` (a bundled crash) or ``--data DIR`` (files ``<SYMBOL>_1h.csv``), else
whatever the SPEC names; ``--from/--to`` narrow the window. Exit codes as ``crossmargin``'s.

The report goes to ``<spec name>-<episode or data folder>-report`` (one folder per book and data,
so two episodes never overwrite each other), or ``--out DIR``; a folder holding the report of
another book or data is refused unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from crossmargin.batch import compile_notice
from crossmargin.cli.render import table
from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import format_decimal
from crossmargin.ledger import EventStore, open_store
from crossmargin.sim.backtest import run_backtest
from crossmargin.sim.backtest_report import (
    SUMMARY_HEADER,
    money_text,
    price_text,
    quantity_text,
    report_run,
    summary_rows,
    write_backtest_report,
)
from crossmargin.sim.backtest_results import BacktestResult
from crossmargin.sim.candles import CandleSeries, TimeWindow
from crossmargin.sim.demo import backtest_spec, describe_backtest_book
from crossmargin.sim.episodes import episode_names, load_episode
from crossmargin.sim.feed import AlignedCandles, align
from crossmargin.sim.market import load_candles
from crossmargin.sim.market_warnings import DataWarning
from crossmargin.sim.progress import ProgressBar
from crossmargin.sim.spec import BacktestSpec
from crossmargin.sim.spec_fields import parse_modes
from crossmargin.sim.spec_load import load_spec
from crossmargin.sim.spec_rules import parse_sweep_option
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


def _source_tag(spec: BacktestSpec, episode: str | None, data: str | None) -> str:
    """The episode's name or the data folder's name: what tells two runs of one book apart."""
    chosen = episode if episode is not None else (None if data else spec.episode)
    if chosen is not None:
        return chosen
    folder = Path(data) if data is not None else spec.data
    return folder.resolve().name if folder is not None else "data"


def default_report_folder(spec: BacktestSpec, tag: str) -> Path:
    """``<name>-<tag>-report``, the tag left out when the name already ends with it (the example
    spec ``worked-example-may-2021`` on may-2021 writes ``worked-example-may-2021-report``)."""
    stem = spec.name if spec.name.endswith(tag) else f"{spec.name}-{tag}"
    return Path(f"{stem}-report")


def _check_report_folder(out: Path, run: str, force: bool) -> None:
    """Refuse (before any work) to overwrite the report of another book or data set."""
    found = report_run(out)
    if found is None or found == run or force:
        return
    raise InvalidInput(
        "--out",
        f"{out} holds the report of another run ({found}); choose another folder with --out, "
        "or --force to replace it",
    )


def cmd_backtest(args: argparse.Namespace) -> str:
    spec = load_spec(args.spec) if args.spec is not None else backtest_spec()
    modes = parse_modes(args.modes, "--modes") if args.modes else spec.modes
    sweep = parse_sweep_option(args.sweep) if args.sweep else spec.sweep
    market, source, warnings = load_market(
        spec, episode=args.episode, data=args.data, start=args.start, end=args.end
    )
    tag = _source_tag(spec, args.episode, args.data)
    out = Path(args.out) if args.out else default_report_folder(spec, tag)
    run = f"{spec.name}, {source}"
    if not args.no_report:
        _check_report_folder(out, run, args.force)
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
    if not args.no_report:
        written = write_backtest_report(result, out, run=run)
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
    text = render_text(result, swept, files, warnings)
    if args.spec is None:
        text = f"no SPEC given: {describe_backtest_book()}\n{text}"
    return text


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
            quantity = "-" if activity.quantity is None else quantity_text(activity.quantity)
            price = "-" if activity.price is None else price_text(activity.price)
            lines.append(
                f"  {mode.mode}: {activity.kind} {activity.symbol} {activity.side} "
                f"{quantity} @ {price} at {_time(activity.timestamp)}"
                f"{_outcome(activity.loss_usd)}"
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
        f"ran {len(result.modes)} mode{'s' if len(result.modes) != 1 else ''} in {result.seconds:.1f} s "
        f"({result.marks_posted} marks posted)"
        + (f"; sweep in {swept.seconds:.1f} s" if swept is not None else "")
    )
    return "\n".join(lines)


def _outcome(loss: Decimal | None) -> str:
    """`` (loss 1,927.28 USD)``; a negative loss is a gain (the profitable leg of a liquidated
    cross account): `` (gain 923.03 USD)``."""
    if loss is None:
        return ""
    if loss < 0:
        return f" (gain {money_text(-loss)} USD)"
    return f" (loss {money_text(loss)} USD)"


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
        "backtest",
        help="run a book through the engine over candles, cross and isolated",
        description="Run a book through the engine over hourly candles in cross and in "
        "isolated margin, print a summary and write an HTML/PNG report. Without a SPEC the "
        "book is the worked example ($1,000: long ETH 10x, short BTC 5x) on may-2021.",
    )
    parser.add_argument(
        "spec",
        metavar="SPEC",
        nargs="?",
        help="the backtest spec (YAML or JSON); default: the worked example book",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="DIR", help="candle files <SYMBOL>_1h.csv")
    source.add_argument(
        "--episode",
        metavar="NAME",
        help=f"a bundled crash: {', '.join(episode_names())} (default: the SPEC's)",
    )
    parser.add_argument("--from", dest="start", metavar="DATE", help="window start (UTC)")
    parser.add_argument("--to", dest="end", metavar="DATE", help="window end, exclusive (UTC)")
    parser.add_argument("--modes", help="comma-separated: cross, isolated, mixed")
    parser.add_argument(
        "--out", metavar="DIR", help="report folder (default <name>-<episode>-report)"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace a report of another run in the folder"
    )
    parser.add_argument("--no-report", action="store_true", help="print the summary only")
    parser.add_argument(
        "--sweep", metavar="PARAM=V1,V2", help="leverage=2,3,5 or allocation=0.5,1,2"
    )
    parser.add_argument(
        "--store", metavar="DIR", help="keep each mode's event log as DIR/<mode>.db (SQLite)"
    )
    parser.add_argument("--json", action="store_true", help="JSON instead of text")
    parser.set_defaults(run=cmd_backtest)
