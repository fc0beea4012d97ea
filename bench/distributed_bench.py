"""The distributed batch path on a local Ray cluster (2 CPUs) against the one-process path.

For synthetic books of 10^6 and 10^7 positions (``crossmargin.batch.synthetic``, seed 0), saved
once as an array snapshot that every shard loads:

* ``tick``: a mark tick on BTCUSDT (the most held symbol) with the candidate screen, one process
  (``update_symbol`` + ``screen``) against ``DistributedBook.tick`` on 2 shards; median of
  alternating ticks, and the overhead (distributed minus one process);
* ``bytes per tick``: the pickled size of what the driver sends to each shard and what each shard
  returns (Ray adds its own task metadata, a few hundred bytes, per call);
* ``stress``: a 20-shock grid over the 10^7 book: one process, 1 shard on 1 worker, 2 shards on 2
  workers, 1 shard on 2 workers (two shock slices in threads of one actor); best of
  ``DISTRIBUTED_BENCH_REPEATS`` (default 2) runs, and how long the driver spent combining.

Run: ``python -m bench distributed``; ``DISTRIBUTED_BENCH_SIZES=1000000`` limits the sizes (the
stress scaling runs on the largest). The machine is shared and timings are noisy.
"""

from __future__ import annotations

import json
import os
import pickle
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from crossmargin.batch.convert import BookArrays
from crossmargin.batch.risk import revalue, update_symbol
from crossmargin.batch.screen import screen
from crossmargin.batch.stress import ShockGrid, grid, stress
from crossmargin.batch.synthetic import synthetic_book

SIZES = (1_000_000, 10_000_000)
TICKS = 21
WORKERS = 2
RESULTS = Path(__file__).parent / "results" / "distributed.json"


def _sizes() -> tuple[int, ...]:
    text = os.environ.get("DISTRIBUTED_BENCH_SIZES")
    return tuple(int(s) for s in text.split(",")) if text else SIZES


def _repeats() -> int:
    return int(os.environ.get("DISTRIBUTED_BENCH_REPEATS", "2"))


def _best(function: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def _grid(arrays: BookArrays) -> ShockGrid:
    return grid(
        arrays.symbols,
        [
            ("BTCUSDT", [float(x) for x in np.linspace(-0.3, 0.0, 5)]),
            ("*", [float(x) for x in np.linspace(-0.2, 0.1, 4)]),
        ],
    )


def _ticks(arrays: BookArrays, book: Any) -> dict[str, Any]:
    """Alternating one-process and distributed ticks on BTCUSDT (same prices for both)."""
    slot = arrays.symbol_index("BTCUSDT")
    valuation = revalue(arrays)
    base = float(arrays.marks[slot])
    local, remote = [], []
    reply_bytes = []
    for step in range(TICKS):
        price = base * (1.0 - 0.002 * (step % 7))
        started = time.perf_counter()
        update_symbol(arrays, valuation, slot, price)
        candidates = screen(arrays, valuation=valuation)
        float(np.sum(valuation.margin_balance))
        local.append(time.perf_counter() - started)
        started = time.perf_counter()
        result = book.tick("BTCUSDT", price)
        remote.append(time.perf_counter() - started)
        if not np.array_equal(result.candidate_accounts, candidates.accounts):
            raise SystemExit("distributed tick disagrees with the one-process tick")
        reply_bytes.append(len(pickle.dumps(result, protocol=5)) / book.shards)
    request = (book.version, book.marks, slot)
    one, two = statistics.median(local), statistics.median(remote)
    return {
        "shards": book.shards,
        "holding_accounts": int(
            arrays.symbol_account_start[slot + 1] - arrays.symbol_account_start[slot]
        ),
        "candidates": len(result.candidate_accounts),
        "one_process_ms": round(one * 1000, 2),
        "distributed_ms": round(two * 1000, 2),
        "distributed_minus_one_process_ms": round((two - one) * 1000, 2),
        "request_bytes_per_shard": len(pickle.dumps(request, protocol=5)),
        "reply_bytes_per_shard": round(statistics.median(reply_bytes)),
    }


def _stress(book: Any, shocks: ShockGrid, expected: Any, repeats: int) -> dict[str, Any]:
    result = book.stress(shocks)
    if not np.array_equal(result.cross_liquidated, expected.cross_liquidated):
        raise SystemExit("distributed stress disagrees with the one-process grid")
    wall = _best(lambda: book.stress(shocks), repeats)
    return {
        "wall_s": round(wall, 2),
        "combine_s": round(book.last_combine_seconds, 2),
        "slice_cpu_s": [round(x, 2) for x in book.last_compute_seconds],
    }


def _size(snapshot: Any, arrays: BookArrays, stressed: bool) -> dict[str, Any]:
    from crossmargin.distributed.cluster import DistributedBook

    row: dict[str, Any] = {"accounts": arrays.account_count, "book_bytes": arrays.nbytes}
    shocks = _grid(arrays)
    repeats = _repeats()
    expected = stress(arrays, shocks) if stressed else None
    if stressed:
        row["stress_shocks"] = shocks.count
        row["stress_one_process_s"] = round(_best(lambda: stress(arrays, shocks), repeats), 2)
    for name, shards, workers, ticks in (
        ("1_shard_1_worker", 1, 1, True),
        ("2_shards_2_workers", 2, 2, True),
        ("1_shard_2_workers", 1, 2, False),
    ):
        if not (ticks or stressed):
            continue
        started = time.perf_counter()
        book = DistributedBook(snapshot, shards=shards, workers=workers)
        entry: dict[str, Any] = {"start_s": round(time.perf_counter() - started, 2)}
        try:
            if stressed:  # first: a grid starts from the book's current marks
                entry["stress"] = _stress(book, shocks, expected, repeats)
            if ticks:
                entry["tick"] = _ticks(arrays, book)
        finally:
            book.close()
        row[name] = entry
    if stressed:
        one = row["1_shard_1_worker"]["stress"]
        two = row["2_shards_2_workers"]["stress"]
        row["stress_speedup_wall"] = round(one["wall_s"] / two["wall_s"], 2)
        row["stress_speedup_cpu_critical_path"] = round(
            max(one["slice_cpu_s"]) / max(two["slice_cpu_s"]), 2
        )
        row["stress_reply_bytes"] = int(
            arrays.account_count * (4 * 8 + 2 * -(-shocks.count // 8)) + 8 * shocks.count
        )
    return row


def main() -> None:
    import ray

    from crossmargin.distributed.cluster import connect, disconnect
    from crossmargin.distributed.source import Snapshot, save_snapshot

    # Ray runs workers at nice 15 by default; the one-process path runs in this process at
    # nice 0, so on a busy machine the comparison would be about priorities, not the path.
    os.environ.setdefault("RAY_worker_niceness", "0")
    connect("auto", workers=WORKERS)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "ray": ray.__version__,
        "workers": WORKERS,
        "load_average_at_start": os.getloadavg()[0],
        "sizes": {},
    }
    sizes = _sizes()
    try:
        with tempfile.TemporaryDirectory() as folder:
            for size in sizes:
                arrays = synthetic_book(size, seed=0).arrays
                path = str(Path(folder) / f"book-{size}.npz")
                save_snapshot(arrays, path)
                row = _size(Snapshot(path=path), arrays, stressed=size == max(sizes))
                row["load_average"] = os.getloadavg()[0]
                results["sizes"][str(size)] = row
                print(json.dumps({str(size): row}, indent=1), flush=True)
                del arrays
    finally:
        disconnect()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(Path(__file__).parent.parent)}")


if __name__ == "__main__":
    main()
