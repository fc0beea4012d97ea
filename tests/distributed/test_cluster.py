"""The distributed path on a real local Ray cluster equals the one-process batch path; a lost
shard is rebuilt from the book's source and the run gives the same answer.

One Ray cluster for the module (4 logical CPUs on whatever machine runs it, so that a shared
2-shard book and one more book fit at once); books of 10^4 positions.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from crossmargin.batch.convert import BookArrays  # noqa: E402
from crossmargin.batch.montecarlo import liquidation_probability, simulate_paths  # noqa: E402
from crossmargin.batch.risk import Valuation, revalue, update_symbol  # noqa: E402
from crossmargin.batch.screen import screen  # noqa: E402
from crossmargin.batch.stress import ShockGrid, grid, stress  # noqa: E402
from crossmargin.core.errors import InvalidInput  # noqa: E402
from crossmargin.distributed.cluster import DistributedBook  # noqa: E402
from crossmargin.distributed.shard import MonteCarloSpec, TickResult  # noqa: E402
from crossmargin.distributed.source import PortfolioFile, Synthetic  # noqa: E402
from tests.distributed.books import SYNTHETIC_POSITIONS, write_portfolios  # noqa: E402
from tests.distributed.test_shard import assert_same_stress  # noqa: E402
from tests.helpers import run_cli  # noqa: E402

SOURCE = Synthetic(positions=SYNTHETIC_POSITIONS, seed=11)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def arrays() -> BookArrays:
    return SOURCE.load()


@pytest.fixture(scope="module")
def book(cluster: None) -> Iterator[DistributedBook]:
    held = DistributedBook(SOURCE, shards=2, workers=2)
    try:
        yield held
    finally:
        held.close()


def shocks_for(arrays: BookArrays) -> ShockGrid:
    return grid(arrays.symbols, [("BTCUSDT", [-0.3, -0.15, 0.0, 0.1]), ("*", [-0.25, 0.0, 0.2])])


def check_tick(result: TickResult, arrays: BookArrays, valuation: Valuation) -> None:
    candidates = screen(arrays, valuation=valuation)
    assert np.array_equal(result.candidate_accounts, candidates.accounts)
    assert np.array_equal(result.candidate_positions, candidates.isolated_positions)
    assert result.liquidatable == int(np.count_nonzero(valuation.liquidatable))
    # sums over accounts: added per shard, then across shards (summation order only)
    assert result.margin_balance == pytest.approx(valuation.margin_balance.sum(), rel=1e-12)
    assert result.maintenance == pytest.approx(valuation.maintenance.sum(), rel=1e-12)


def test_the_book_is_held_on_two_shards(book: DistributedBook, arrays: BookArrays) -> None:
    assert book.account_count == arrays.account_count
    assert book.position_count == arrays.position_count
    assert book.symbols == arrays.symbols
    infos = book.shard_info()
    assert [info.accounts for info in infos] == [
        len(range(i, arrays.account_count, 2)) for i in range(2)
    ]
    assert not any(info.reconstructed for info in infos)


def test_a_stress_grid_on_shards_equals_the_one_process_grid(
    book: DistributedBook, arrays: BookArrays
) -> None:
    shocks = shocks_for(arrays)
    expected = stress(dataclasses.replace(arrays, marks=book.marks), shocks)
    assert expected.cross_liquidated.any() and expected.isolated_liquidated.any()
    assert_same_stress(book.stress(shocks), expected, loss_rtol=1e-12)


def test_monte_carlo_on_shards_equals_the_one_process_run(
    book: DistributedBook, arrays: BookArrays
) -> None:
    spec = MonteCarloSpec(paths=64, horizon=24, seed=7, model="gbm")
    at_marks = dataclasses.replace(arrays, marks=book.marks)
    expected = liquidation_probability(at_marks, simulate_paths(64, 24, seed=7, model="gbm"))
    result = book.monte_carlo(spec)
    assert np.array_equal(result.cross_probability, expected.cross_probability)
    assert np.array_equal(result.isolated_probability, expected.isolated_probability)
    assert expected.cross_probability.max() > 0


def test_ticks_broadcast_to_shards_give_the_candidates_of_the_one_process_path(
    book: DistributedBook, arrays: BookArrays
) -> None:
    valuation = revalue(arrays, book.marks)
    rng = np.random.default_rng(5)
    for _ in range(6):
        slot = int(rng.integers(6))
        price = float(book.marks[slot] * rng.uniform(0.9, 1.05))
        result = book.tick(arrays.symbols[slot], price)
        update_symbol(arrays, valuation, slot, price)
        check_tick(result, arrays, valuation)
    assert len(result.candidate_accounts) > 0
    with pytest.raises(InvalidInput, match="price"):
        book.tick(arrays.symbols[0], -1.0)
    with pytest.raises(InvalidInput, match="symbol"):
        book.tick("NOPEUSDT", 1.0)


def test_one_shard_on_two_workers_splits_the_grid_into_shock_slices(
    cluster: None, arrays: BookArrays
) -> None:
    single = DistributedBook(SOURCE, shards=1, workers=2)
    try:
        assert single.threads == 2
        shocks = shocks_for(arrays)
        # one shard keeps every sum in the one-process order: all bits equal
        assert_same_stress(single.stress(shocks), stress(arrays, shocks), loss_rtol=0)
    finally:
        single.close()


def test_a_killed_shard_is_reloaded_from_its_source_and_ticks_agree(
    cluster: None, arrays: BookArrays
) -> None:
    book = DistributedBook(SOURCE, shards=2, workers=2, max_restarts=2)
    try:
        valuation = revalue(arrays)
        moves = [("BTCUSDT", 0.93), ("ETHUSDT", 0.9), ("BTCUSDT", 0.97)]
        for step, (symbol, factor) in enumerate(moves):
            slot = arrays.symbol_index(symbol)
            price = float(book.marks[slot] * factor)
            if step == 2:
                book.kill_shard(1)  # shard 1 loses the two ticks it had applied
            result = book.tick(symbol, price)
            update_symbol(arrays, valuation, slot, price)
            check_tick(result, arrays, valuation)
        assert [info.reconstructed for info in book.shard_info()] == [False, True]
        shocks = shocks_for(arrays)
        expected = stress(dataclasses.replace(arrays, marks=book.marks), shocks)
        assert_same_stress(book.stress(shocks), expected, loss_rtol=1e-12)
    finally:
        book.close()


def test_shards_dying_during_stress_and_monte_carlo_are_restarted_and_the_run_completes(
    cluster: None, tmp_path: Path
) -> None:
    source = PortfolioFile(path=str(write_portfolios(tmp_path / "book.json")))
    arrays = source.load()
    book = DistributedBook(
        source, shards=2, workers=2, max_restarts=1, crash_on=("stress", "monte_carlo")
    )
    try:
        shocks = grid(arrays.symbols, [("*", [-0.3, -0.1, 0.0, 0.1])])
        assert_same_stress(book.stress(shocks), stress(arrays, shocks), loss_rtol=1e-12)
        assert book.retried_calls >= 2
        assert all(info.reconstructed for info in book.shard_info())
        expected = liquidation_probability(arrays, simulate_paths(40, 12, seed=3))
        result = book.monte_carlo(MonteCarloSpec(paths=40, horizon=12, seed=3))
        assert np.array_equal(result.cross_probability, expected.cross_probability)
        assert np.array_equal(result.isolated_probability, expected.isolated_probability)
    finally:
        book.close()


def test_a_shard_that_keeps_dying_fails_the_call_after_its_restarts(cluster: None) -> None:
    book = DistributedBook(
        Synthetic(positions=300), shards=1, workers=1, max_restarts=0, crash_on=("revalue",)
    )
    try:
        with pytest.raises(ray.exceptions.RayActorError):
            book.revalue()
    finally:
        book.close()


def test_a_missing_book_file_is_reported_naming_the_book(cluster: None, tmp_path: Path) -> None:
    free = ray.available_resources().get("CPU", 0)
    with pytest.raises(InvalidInput) as error:
        DistributedBook(PortfolioFile(path=str(tmp_path / "none.json")), shards=2, workers=2)
    assert error.value.field == "BOOK"
    deadline = time.monotonic() + 30
    while ray.available_resources().get("CPU", 0) < free and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) >= free  # the failed shards let go


def _stress_json(*extra: str) -> dict[str, object]:
    code, out, err = run_cli(
        "stress",
        *extra,
        "--shock-grid",
        "BTCUSDT=-30%..0%/4",
        "--shock-grid",
        "*=-20%,10%",
        "--monte-carlo",
        "50",
        "--horizon",
        "12",
        "--seed",
        "11",
        "--json",
    )
    assert code == 0, err
    report: dict[str, object] = json.loads(out)
    return report


def test_the_cli_gives_the_same_report_with_and_without_a_cluster(
    cluster: None, tmp_path: Path
) -> None:
    synthetic = ("--synthetic", str(SYNTHETIC_POSITIONS))
    on_cluster = _stress_json(*synthetic, "--cluster", "auto", "--shards", "2", "--workers", "2")
    assert on_cluster == _stress_json(*synthetic)
    path = str(write_portfolios(tmp_path / "book.json"))
    code, out, err = run_cli(
        "stress", path, "--shock-grid", "*=-30%,-10%", "--cluster", "auto", "--workers", "2"
    )
    assert code == 0, err
    assert "60 accounts, 144 positions, 3 symbols" in out
    code, out, err = run_cli("stress", path, "--shock-grid", "*=-30%", "--shards", "2")
    assert code == 2 and "error: --shards:" in err
