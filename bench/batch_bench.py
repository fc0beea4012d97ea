"""The batch risk path: full revaluation against a memory-bandwidth floor, the Decimal core and a
plain per-position Python loop; one-symbol ticks; a stress grid; Monte Carlo.

For synthetic books (``crossmargin.batch.synthetic``: ~3 positions per account, 50 Binance
symbols with their real brackets) of 10^5, 10^6 and 10^7 positions:

* ``revalue``: the numba kernel writing every per-position and per-account output into a kept
  result (what a venue does on each mark tick); the numpy fallback for comparison;
* ``floor``: one numpy pass reading the same input arrays once (summing each), the memory
  bandwidth floor measured in the same run; floor and revaluation alternate, best of N each;
* ``core`` and ``loop``: the per-account Decimal core (``core.risk.position_risk`` per position,
  the cross sums, ``margin_ratio``, ``is_liquidatable``) and a plain Python loop of the Binance
  formula over float dicts, the style peers use, timed on a sample and extrapolated per position;
* ``tick``: a mark tick on BTCUSDT, the most held symbol (its positions and their accounts);
* ``peak``: the book's arrays plus the largest traced allocation while revaluing from scratch.

Then a 100-shock stress grid over 10^6 positions and 10,000 Monte Carlo paths of 24 hours over
10^5 accounts. Run: ``python -m bench batch``; ``BATCH_BENCH_SIZES=100000,1000000`` limits the
sizes. The machine is shared and timings are noisy: compare ratios measured together.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crossmargin.batch.convert import BookArrays
from crossmargin.batch.liquidation import liquidation_prices
from crossmargin.batch.montecarlo import liquidation_probability, simulate_paths
from crossmargin.batch.risk import revalue, update_symbol
from crossmargin.batch.stress import grid, stress
from crossmargin.batch.synthetic import SyntheticBook, account_books, synthetic_book
from crossmargin.core.numbers import ZERO
from crossmargin.core.risk import Book, is_liquidatable, margin_ratio, position_risk

SIZES = (100_000, 1_000_000, 10_000_000)
CORE_SAMPLE_ACCOUNTS = 400
LOOP_SAMPLE_POSITIONS = 30_000
RESULTS = Path(__file__).parent / "results" / "batch.json"


def best(function: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def alternating(
    first: Callable[[], object], second: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Best of ``repeats`` for each, run alternately so both see the same machine load."""
    a, b = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        first()
        a.append(time.perf_counter() - started)
        started = time.perf_counter()
        second()
        b.append(time.perf_counter() - started)
    return min(a), min(b)


def floor_pass(arrays: BookArrays) -> Callable[[], float]:
    inputs = arrays.input_arrays()

    def run() -> float:
        return float(sum(float(a.sum()) for a in inputs))

    return run


def core_account(book: Book) -> tuple[bool, object]:
    """The Decimal core doing what one revaluation does for an account."""
    cross = [p for p in book.positions if not p.is_isolated]
    total = position_risk(book, cross[0]) if cross else None
    for position in cross[1:]:
        total = total + position_risk(book, position) if total else position_risk(book, position)
    liquidatable = False
    ratio = None
    if total is not None:
        ratio = margin_ratio(book.wallet_balance, total)
        liquidatable = is_liquidatable(book.wallet_balance, total)
    for position in book.positions:
        if position.is_isolated:
            risk = position_risk(book, position)
            collateral = position.isolated_margin or ZERO
            liquidatable = liquidatable or is_liquidatable(collateral, risk)
    return liquidatable, ratio


def core_seconds_per_position(synthetic: SyntheticBook) -> float:
    books = account_books(synthetic, range(CORE_SAMPLE_ACCOUNTS))
    positions = sum(len(b.positions) for b in books)
    seconds = best(lambda: [core_account(b) for b in books], 3)
    return seconds / positions


def loop_seconds_per_position(synthetic: SyntheticBook) -> float:
    """A plain Python loop of the Binance formula over dicts, as peers write it."""
    arrays = synthetic.arrays
    count = min(LOOP_SAMPLE_POSITIONS, arrays.position_count)
    tables = arrays.tables
    brackets = [
        [
            {
                "cap": float(tables.caps[i, k]),
                "rate": float(tables.rates[i, k]),
                "cum": float(tables.amounts[i, k]),
            }
            for k in range(int(tables.counts[i]))
        ]
        for i in range(len(arrays.symbols))
    ]
    positions = [
        {
            "account": int(arrays.account[i]),
            "symbol": int(arrays.symbol[i]),
            "side": float(arrays.side[i]),
            "qty": float(arrays.quantity[i]),
            "entry": float(arrays.entry_notional[i]),
            "lev": 1 / float(arrays.inverse_leverage[i]),
            "isolated": bool(arrays.isolated[i]),
            "margin": float(arrays.collateral[i]),
        }
        for i in range(count)
    ]
    marks = [float(m) for m in arrays.marks]
    wallets = [float(w) for w in arrays.wallet]

    def run() -> dict[int, bool]:
        upnl: dict[int, float] = {}
        maintenance: dict[int, float] = {}
        flags: dict[int, bool] = {}
        for p in positions:
            price = marks[p["symbol"]]
            notional = p["qty"] * price
            pnl = p["side"] * (notional - p["entry"])
            table = brackets[p["symbol"]]
            chosen = table[-1]
            for bracket in table:
                if notional <= bracket["cap"]:
                    chosen = bracket
                    break
            mm = notional * chosen["rate"] - chosen["cum"]
            _ = notional / p["lev"]
            if p["isolated"]:
                if p["margin"] + pnl <= mm:
                    flags[p["account"]] = True
            else:
                upnl[p["account"]] = upnl.get(p["account"], 0.0) + pnl
                maintenance[p["account"]] = maintenance.get(p["account"], 0.0) + mm
        for account, total in upnl.items():
            if wallets[account] + total <= maintenance[account]:
                flags[account] = True
        return flags

    return best(run, 3) / count


def peak_bytes(arrays: BookArrays) -> int:
    gc.collect()
    tracemalloc.start()
    valuation = revalue(arrays)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del valuation
    return peak


def warm_up() -> None:
    """Compile every kernel (numba caches to disk; the first run of a session may compile)."""
    small = synthetic_book(2000, seed=99)
    valuation = revalue(small.arrays)
    update_symbol(small.arrays, valuation, 0, float(small.arrays.marks[0]))
    stress(small.arrays, grid(small.arrays.symbols, [("*", [-0.1])]))
    liquidation_probability(small.arrays, simulate_paths(4, 4, seed=1))


def size_row(size: int) -> dict[str, Any]:
    started = time.perf_counter()
    synthetic = synthetic_book(size, seed=2024)
    built = time.perf_counter() - started
    arrays = synthetic.arrays
    valuation = revalue(arrays)
    repeats = 30 if size <= 1_000_000 else 8
    revalue_s, floor_s = alternating(
        lambda: revalue(arrays, out=valuation), floor_pass(arrays), repeats
    )
    numpy_s = best(lambda: revalue(arrays, out=valuation, backend="numpy"), 3)
    btc = arrays.symbol_index("BTCUSDT")
    mark = float(arrays.marks[btc])
    ticks = [mark * (1 + 0.001 * (k % 7 - 3)) for k in range(repeats)]
    tick_times = []
    for price in ticks:
        begun = time.perf_counter()
        touched = update_symbol(arrays, valuation, btc, price)
        tick_times.append(time.perf_counter() - begun)
    core_per_position = core_seconds_per_position(synthetic)
    loop_per_position = loop_seconds_per_position(synthetic)
    peak = peak_bytes(arrays)
    per_position = revalue_s / size
    row = {
        "positions": size,
        "accounts": arrays.account_count,
        "build_s": built,
        "revalue_ms": revalue_s * 1e3,
        "positions_per_s": size / revalue_s,
        "floor_ms": floor_s * 1e3,
        "ratio_to_floor": revalue_s / floor_s,
        "numpy_ms": numpy_s * 1e3,
        "core_us_per_position": core_per_position * 1e6,
        "speedup_vs_core": core_per_position / per_position,
        "loop_us_per_position": loop_per_position * 1e6,
        "speedup_vs_loop": loop_per_position / per_position,
        "tick_ms": min(tick_times) * 1e3,
        "tick_median_ms": statistics.median(tick_times) * 1e3,
        "tick_accounts": len(touched),
        "tick_positions": int(np.count_nonzero(arrays.symbol == btc)),
        "book_mb": arrays.nbytes / 2**20,
        "revalue_peak_mb": peak / 2**20,
    }
    row["liquidation_prices_s"] = best(lambda: liquidation_prices(arrays, valuation), 1)
    return row


def stress_row(size: int) -> dict[str, Any]:
    arrays = synthetic_book(size, seed=7).arrays
    axes = [("BTCUSDT", list(np.linspace(-0.3, 0.1, 10))), ("*", list(np.linspace(-0.4, 0.2, 10)))]
    shocks = grid(arrays.symbols, axes)
    seconds = best(lambda: stress(arrays, shocks), 2)
    return {
        "positions": size,
        "shocks": shocks.count,
        "seconds": seconds,
        "position_shocks_per_s": size * shocks.count / seconds,
    }


def monte_carlo_row(accounts: int, paths: int, horizon: int) -> dict[str, Any]:
    positions = accounts * 3
    arrays = synthetic_book(positions, seed=8).arrays
    begun = time.perf_counter()
    simulated = simulate_paths(paths, horizon, seed=1)
    path_s = time.perf_counter() - begun
    begun = time.perf_counter()
    result = liquidation_probability(arrays, simulated)
    seconds = time.perf_counter() - begun
    return {
        "accounts": arrays.account_count,
        "positions": positions,
        "paths": paths,
        "horizon_hours": horizon,
        "paths_s": path_s,
        "seconds": seconds,
        "account_paths_per_s": arrays.account_count * paths / seconds,
        "mean_cross_probability": float(result.cross_probability.mean()),
        "mean_isolated_probability": float(result.isolated_probability.mean()),
    }


def machine() -> str:
    cores = os.cpu_count()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.processor() or platform.machine()}, {cores} cores, {memory:.0f} GiB, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )


def main() -> None:
    sizes = tuple(
        int(s) for s in os.environ.get("BATCH_BENCH_SIZES", ",".join(map(str, SIZES))).split(",")
    )
    print(f"machine: {machine()} (shared; load average {os.getloadavg()[0]:.1f})", flush=True)
    warm_up()
    rows = []
    header = (
        f"{'positions':>10} {'accounts':>9} {'revalue':>9} {'Mpos/s':>7} {'floor':>8} "
        f"{'x floor':>7} {'numpy':>8} {'x core':>8} {'x loop':>7} {'tick BTC':>9} "
        f"{'book':>8} {'peak+':>8}"
    )
    print(header)
    for size in sizes:
        row = size_row(size)
        rows.append(row)
        print(
            f"{row['positions']:>10,} {row['accounts']:>9,} {row['revalue_ms']:>7.2f}ms "
            f"{row['positions_per_s'] / 1e6:>7.0f} {row['floor_ms']:>6.2f}ms "
            f"{row['ratio_to_floor']:>7.2f} {row['numpy_ms']:>6.0f}ms "
            f"{row['speedup_vs_core']:>8,.0f} {row['speedup_vs_loop']:>7,.0f} "
            f"{row['tick_ms']:>7.2f}ms {row['book_mb']:>6.0f}MB {row['revalue_peak_mb']:>6.0f}MB",
            flush=True,
        )
    print(
        "x core / x loop: Decimal core and plain-loop time per position on a sample "
        f"({CORE_SAMPLE_ACCOUNTS} accounts / {LOOP_SAMPLE_POSITIONS:,} positions), extrapolated."
    )
    for row in rows:
        print(
            f"  {row['positions']:,}: core {row['core_us_per_position']:.1f} us/position, loop "
            f"{row['loop_us_per_position']:.2f} us/position; tick moved {row['tick_positions']:,}"
            f" positions in {row['tick_accounts']:,} accounts (median {row['tick_median_ms']:.2f}"
            f" ms); build {row['build_s']:.1f} s"
            + f"; liquidation prices {row['liquidation_prices_s']:.2f} s"
        )
    stressed = stress_row(1_000_000)
    print(
        f"stress: {stressed['shocks']} shocks x {stressed['positions']:,} positions in "
        f"{stressed['seconds']:.2f} s ({stressed['position_shocks_per_s'] / 1e6:.0f} M "
        "position-shocks/s)",
        flush=True,
    )
    carlo = monte_carlo_row(100_000, 10_000, 24)
    print(
        f"monte carlo: {carlo['paths']:,} paths x {carlo['horizon_hours']} h over "
        f"{carlo['accounts']:,} accounts in {carlo['seconds']:.1f} s (paths drawn in "
        f"{carlo['paths_s']:.2f} s; {carlo['account_paths_per_s'] / 1e6:.0f} M account-paths/s);"
        f" mean P(liquidation): cross {carlo['mean_cross_probability']:.4f}, isolated "
        f"{carlo['mean_isolated_probability']:.4f}"
    )
    maximum = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10
    print(f"process peak RSS {maximum:,.0f} MB")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": machine(),
                "sizes": rows,
                "stress": stressed,
                "monte_carlo": carlo,
                "peak_rss_mb": maximum,
            },
            indent=2,
        )
    )
