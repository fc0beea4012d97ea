"""``crossmargin stress``: a whole book under a grid of joint price shocks (and Monte Carlo).

The book is a portfolio file of the risk contract (one portfolio or a list; all valued at one
mark per symbol) or a seeded synthetic book (``--synthetic N``). Grid axes:

  --shock-grid BTCUSDT=-30%..0%/7     seven moves from -30% to 0%
  --shock-grid ETHUSDT=-40%,-20%,0%   a list
  --shock-grid '*=-10%..10%/5'        every symbol not named by another axis

The grid is the cartesian product of the axes; with no axis (and no ``--monte-carlo``) the default
grid ``*=-30%..30%/13`` moves every symbol together from -30% to +30% in 5% steps. ``--monte-carlo PATHS`` adds the probability of
liquidation within ``--horizon`` hours under correlated paths drawn from the bundled real returns.
``--cluster auto|ADDRESS`` runs the same work on Ray actors holding shards of the book
(``crossmargin[distributed]``; ``auto`` starts a local cluster), with the same results.
"""

from __future__ import annotations

import argparse
import json
import time
from decimal import Decimal
from typing import Any

import numpy as np

from crossmargin.batch import compile_notice
from crossmargin.batch.convert import BookArrays
from crossmargin.batch.montecarlo import (
    MODELS,
    MonteCarloResult,
    liquidation_probability,
    simulate_paths,
)
from crossmargin.batch.risk import revalue
from crossmargin.batch.stress import ShockGrid, StressResult, grid, stress, summary_by_shock
from crossmargin.batch.synthetic import synthetic_book
from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import parse_decimal
from crossmargin.distributed.shard import MonteCarloSpec
from crossmargin.distributed.source import BookSource, PortfolioFile, Synthetic

MAX_AXIS_POINTS = 1000
MAX_SYNTHETIC = 20_000_000
# Every symbol moved together, -30% to +30% in 5% steps: the size of the bundled crashes' falls
# (BTC -50% over March 2020 aside) in both directions, since a rise is what kills a short.
DEFAULT_GRID = "*=-30%..30%/13"


def plural(count: int, noun: str) -> str:
    """``1 account``, ``2 accounts`` (``1,000 accounts``)."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _ranked(top: int, count: int, noun: str, order: str) -> str:
    """What a ranking shows: ``top 10 of 323 accounts, ORDER``, ``all 7 shocks, ORDER`` or
    ``the only shock``."""
    if count == 1:
        return f"the only {noun}"
    shown = f"all {plural(count, noun)}" if count <= top else f"top {top} of {plural(count, noun)}"
    return f"{shown}, {order}"


def _percent(text: str, field: str) -> float:
    body = text.strip()
    if not body.endswith("%"):
        raise InvalidInput(field, f"expected a percentage such as -30%, got {text!r}")
    value = parse_decimal(body[:-1], field) / 100
    if value <= -1:
        raise InvalidInput(field, "a move of -100% or less leaves no price")
    return float(value)


def parse_axis(text: str) -> tuple[str, list[float]]:
    """``SYMBOL=A%..B%/N`` (N evenly spaced moves, ends included) or ``SYMBOL=A%,B%,...``."""
    symbol, sep, spec = text.partition("=")
    symbol, spec = symbol.strip(), spec.strip()
    field = f"--shock-grid {symbol or text}"
    if not sep or not symbol or not spec:
        raise InvalidInput(field, f"expected SYMBOL=-30%..0%/7 or SYMBOL=-30%,0%, got {text!r}")
    if ".." in spec:
        span, slash, points_text = spec.partition("/")
        low_text, _, high_text = span.partition("..")
        if not slash or not points_text.strip().isdigit():
            raise InvalidInput(field, "a range needs a number of points: -30%..0%/7")
        points = int(points_text)
        if not 2 <= points <= MAX_AXIS_POINTS:
            raise InvalidInput(field, f"points must be 2 to {MAX_AXIS_POINTS}")
        low, high = _percent(low_text, field), _percent(high_text, field)
        return symbol, [float(x) for x in np.linspace(low, high, points)]
    return symbol, [_percent(item, field) for item in spec.split(",")]


def _load_book(args: argparse.Namespace) -> tuple[BookArrays, str]:
    if args.synthetic is not None:
        if args.book is not None:
            raise InvalidInput("BOOK", "give a book file or --synthetic, not both")
        book = synthetic_book(args.synthetic, seed=args.seed)
        return book.arrays, f"synthetic book (seed {args.seed})"
    if args.book is None:
        raise InvalidInput("BOOK", "give a portfolio file (one or a list) or --synthetic N")
    return PortfolioFile(path=args.book).load(), args.book


class _LocalBook:
    """The one-process batch path behind the calls of a ``DistributedBook``."""

    def __init__(self, arrays: BookArrays, name: str, backend: str | None) -> None:
        self.arrays, self.name, self.backend = arrays, name, backend
        self.symbols = arrays.symbols
        self.account_count = arrays.account_count
        self.position_count = arrays.position_count

    def liquidatable_now(self) -> int:
        return int(np.count_nonzero(revalue(self.arrays, backend=self.backend).liquidatable))

    def stress(self, shocks: ShockGrid) -> StressResult:
        return stress(self.arrays, shocks, backend=self.backend)

    def monte_carlo(self, spec: MonteCarloSpec) -> MonteCarloResult:
        paths = simulate_paths(spec.paths, spec.horizon, seed=spec.seed, model=spec.model)
        return liquidation_probability(self.arrays, paths, backend=self.backend)


def _source(args: argparse.Namespace) -> BookSource:
    if args.synthetic is not None:
        if args.book is not None:
            raise InvalidInput("BOOK", "give a book file or --synthetic, not both")
        return Synthetic(positions=args.synthetic, seed=args.seed)
    if args.book is None:
        raise InvalidInput("BOOK", "give a portfolio file (one or a list) or --synthetic N")
    return PortfolioFile(path=args.book)


def _ratio_text(value: float) -> str:
    if np.isnan(value):
        return "-"
    if np.isinf(value):
        return "gone"
    return f"{value:.4f}"


def _stress_report(result: StressResult, top: int) -> dict[str, Any]:
    shocks = summary_by_shock(result)
    cross_count = result.cross_liquidated.sum(axis=1)
    isolated_count = result.isolated_liquidated.sum(axis=1)
    worst = np.maximum(result.cross_worst_loss, result.isolated_worst_loss)
    order = np.argsort(-worst, kind="stable")[:top]
    accounts = [
        {
            "account": int(a),
            "cross_worst_margin_ratio": _ratio_text(float(result.cross_worst_ratio[a])),
            "cross_liquidating_shocks": int(cross_count[a]),
            "cross_liquidated_by": [int(k) for k in np.flatnonzero(result.cross_liquidated[a])],
            "cross_worst_loss": round(float(result.cross_worst_loss[a]), 2),
            "isolated_worst_margin_ratio": _ratio_text(float(result.isolated_worst_ratio[a])),
            "isolated_liquidating_shocks": int(isolated_count[a]),
            "isolated_liquidated_by": [
                int(k) for k in np.flatnonzero(result.isolated_liquidated[a])
            ],
            "isolated_worst_loss": round(float(result.isolated_worst_loss[a]), 2),
        }
        for a in order
    ]
    return {
        "shocks": result.grid.count,
        "accounts_liquidated_by_any_shock": {
            "cross": int(np.count_nonzero(cross_count)),
            "isolated": int(np.count_nonzero(isolated_count)),
        },
        "by_shock": [{**row, "loss": round(row["loss"], 2)} for row in shocks],
        "note": "*_liquidated_by lists indices into by_shock",
        "accounts_at_risk": accounts,
    }


def _table(report: dict[str, Any], top: int) -> str:
    lines = [report["title"]]
    if "stress" in report:
        stressed = report["stress"]
        any_shock = stressed["accounts_liquidated_by_any_shock"]
        lines.append(f"shock grid: {stressed['grid']}")
        lines.append(
            f"{plural(stressed['shocks'], 'shock')}; accounts liquidated by at least one shock: "
            f"cross {any_shock['cross']:,}, isolated {any_shock['isolated']:,}"
        )
        rows = sorted(
            stressed["by_shock"],
            key=lambda r: (-(r["cross_liquidated"] + r["isolated_liquidated"]), -r["loss"]),
        )[:top]
        lines.append("")
        lines.append(
            f"by shock ({_ranked(top, stressed['shocks'], 'shock', 'most liquidations first')}):"
        )
        lines.append(f"{'shock':<40} {'cross liq':>10} {'isol. liq':>10} {'loss USD':>16}")
        for row in rows:
            lines.append(
                f"{row['shock'][:40]:<40} {row['cross_liquidated']:>10,} "
                f"{row['isolated_liquidated']:>10,} {row['loss']:>16,.2f}"
            )
        lines.append("")
        lines.append(
            "accounts at risk "
            f"({_ranked(top, stressed['accounts'], 'account', 'largest worst loss first')}):"
        )
        lines.append(
            f"{'account':>8} {'cross MR':>9} {'liq/shocks':>10} {'cross loss':>14} "
            f"{'isol. MR':>9} {'liq/shocks':>10} {'isol. loss':>14}"
        )
        for row in stressed["accounts_at_risk"]:
            lines.append(
                f"{row['account']:>8} {row['cross_worst_margin_ratio']:>9} "
                f"{row['cross_liquidating_shocks']:>10} {row['cross_worst_loss']:>14,.2f} "
                f"{row['isolated_worst_margin_ratio']:>9} "
                f"{row['isolated_liquidating_shocks']:>10} {row['isolated_worst_loss']:>14,.2f}"
            )
    if "monte_carlo" in report:
        carlo = report["monte_carlo"]
        lines.append("")
        lines.append(
            f"Monte Carlo: {carlo['paths']} {carlo['model']} "
            f"path{'' if carlo['paths'] == 1 else 's'} of {carlo['horizon_hours']} h "
            f"(seed {carlo['seed']}); mean probability of liquidation: "
            f"cross {carlo['mean_cross_probability']:.4f}, "
            f"isolated {carlo['mean_isolated_probability']:.4f}"
        )
        lines.append(
            "accounts by probability of liquidation "
            f"({_ranked(top, carlo['accounts'], 'account', 'most likely first')}):"
        )
        for row in carlo["accounts_at_risk"]:
            lines.append(
                f"  account {row['account']:>8}: cross {row['cross_probability']:.4f}, "
                f"isolated {row['isolated_probability']:.4f}"
            )
    lines.append(report["timing"])
    return "\n".join(lines)


def cmd_stress(args: argparse.Namespace) -> str:
    if not args.shock_grid and args.monte_carlo is None:
        args.shock_grid = [DEFAULT_GRID]
        args.default_grid = True
    if args.top < 1:
        raise InvalidInput("--top", "must be at least 1")
    if args.synthetic is not None and not 1 <= args.synthetic <= MAX_SYNTHETIC:
        raise InvalidInput("--synthetic", f"must be 1 to {MAX_SYNTHETIC:,} positions")
    if args.monte_carlo is not None and args.monte_carlo < 1:
        raise InvalidInput("--monte-carlo", "must be at least 1 path")
    if args.horizon < 1:
        raise InvalidInput("--horizon", "must be at least 1 hour")
    if args.cluster is None:
        if args.shards is not None or args.workers is not None:
            raise InvalidInput("--shards", "--shards and --workers need --cluster")
        arrays, name = _load_book(args)
        with compile_notice():  # the first run in an environment compiles the kernels
            return _run(args, _LocalBook(arrays, name, args.backend))
    try:
        from crossmargin.distributed.cluster import open_book  # imports ray: only with --cluster
    except ModuleNotFoundError as error:
        if error.name != "ray":
            raise
        raise InvalidInput(
            "--cluster", "needs Ray: pip install 'crossmargin[distributed]'"
        ) from None

    with open_book(
        args.cluster,
        _source(args),
        shards=args.shards,
        workers=args.workers,
        backend=args.backend,
    ) as distributed:
        return _run(args, distributed)


def _run(args: argparse.Namespace, book: Any) -> str:
    """The report over ``book``: a ``_LocalBook`` or a ``DistributedBook``."""
    started = time.perf_counter()
    report: dict[str, Any] = {
        "title": (
            f"{book.name}: {plural(book.account_count, 'account')}, "
            f"{plural(book.position_count, 'position')}, {plural(len(book.symbols), 'symbol')}; "
            f"liquidatable now: {book.liquidatable_now():,}"
        ),
    }
    if args.shock_grid:
        shocks = grid(book.symbols, [parse_axis(text) for text in args.shock_grid])
        report["stress"] = {
            "grid": " ".join(args.shock_grid)
            + (" (the default; choose with --shock-grid)" if args.default_grid else ""),
            "accounts": book.account_count,
            **_stress_report(book.stress(shocks), args.top),
        }
    if args.monte_carlo is not None:
        spec = MonteCarloSpec(
            paths=args.monte_carlo, horizon=args.horizon, seed=args.seed, model=args.model
        )
        carlo = book.monte_carlo(spec)
        either = np.maximum(carlo.cross_probability, carlo.isolated_probability)
        order = np.argsort(-either, kind="stable")[: args.top]
        report["monte_carlo"] = {
            "paths": carlo.paths,
            "horizon_hours": carlo.horizon_hours,
            "model": carlo.model,
            "seed": args.seed,
            "accounts": book.account_count,
            "mean_cross_probability": float(carlo.cross_probability.mean()),
            "mean_isolated_probability": float(carlo.isolated_probability.mean()),
            "series_of_symbol": dict(zip(book.symbols, carlo.series_of_symbol, strict=True)),
            "accounts_at_risk": [
                {
                    "account": int(a),
                    "cross_probability": float(carlo.cross_probability[a]),
                    "isolated_probability": float(carlo.isolated_probability[a]),
                }
                for a in order
            ],
        }
    report["timing"] = f"computed in {time.perf_counter() - started:.3f} s"
    if args.json:
        del report["timing"]
        return json.dumps(report, indent=2, default=_json_default)
    return _table(report, args.top)


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(type(value).__name__)


def register(commands: Any) -> None:
    """Add the ``stress`` subcommand to the ``crossmargin`` parser."""
    parser = commands.add_parser(
        "stress", help="a book of many accounts under a shock grid (vectorised)"
    )
    parser.add_argument("book", metavar="BOOK", nargs="?", help="portfolio JSON (one or a list)")
    parser.add_argument(
        "--synthetic", type=int, metavar="N", help="a synthetic book of N positions"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic book and paths")
    parser.add_argument(
        "--shock-grid",
        action="append",
        default=[],
        metavar="SYMBOL=MOVES",
        help="an axis: SYMBOL=-30%%..0%%/7 or SYMBOL=-30%%,0%% ('*' = every other symbol); "
        f"repeatable; default {DEFAULT_GRID.replace('%', '%%')}",
    )
    parser.add_argument("--monte-carlo", type=int, metavar="PATHS", help="also run PATHS paths")
    parser.add_argument("--horizon", type=int, default=24, help="Monte Carlo horizon in hours")
    parser.add_argument("--model", choices=MODELS, default="bootstrap", help="path model")
    parser.add_argument("--top", type=int, default=10, help="rows in each ranking (default 10)")
    parser.set_defaults(default_grid=False)
    parser.add_argument("--json", action="store_true", help="JSON instead of tables")
    parser.add_argument(
        "--backend", choices=("auto", "numba", "numpy"), default=None, help="kernel choice"
    )
    parser.add_argument(
        "--cluster",
        metavar="auto|ADDRESS",
        help="run on Ray (crossmargin[distributed]): 'auto' starts a local cluster",
    )
    parser.add_argument(
        "--shards", type=int, help="with --cluster: shards of the book (default: one per worker)"
    )
    parser.add_argument(
        "--workers", type=int, help="with --cluster: CPUs to use (default: the cluster's)"
    )
    parser.set_defaults(run=cmd_stress)
