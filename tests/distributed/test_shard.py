"""Sharding and combining without Ray: the shard servers run in process.

What a shard computes per account must be bit-for-bit what the whole book computes; sums over
accounts may differ by float summation order only (``loss_by_shock``, tick totals).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crossmargin.batch.montecarlo import liquidation_probability, simulate_paths
from crossmargin.batch.risk import revalue, update_symbol
from crossmargin.batch.screen import screen
from crossmargin.batch.stress import ShockGrid, StressResult, grid, stress
from crossmargin.core.errors import InvalidInput
from crossmargin.distributed.shard import (
    MonteCarloSpec,
    ShardServer,
    combine_monte_carlo,
    combine_stress,
    combine_ticks,
    shard_accounts,
    shock_slices,
    take_shard,
)
from crossmargin.distributed.source import PortfolioFile, Snapshot, Synthetic, save_snapshot
from tests.distributed.books import assert_same_arrays, write_portfolios

PER_ACCOUNT = (
    "cross_worst_ratio",
    "cross_liquidated",
    "cross_worst_loss",
    "isolated_worst_ratio",
    "isolated_liquidated",
    "isolated_worst_loss",
)


def assert_same_stress(left: StressResult, right: StressResult, *, loss_rtol: float) -> None:
    for name in PER_ACCOUNT:
        assert np.array_equal(getattr(left, name), getattr(right, name), equal_nan=True), name
    if loss_rtol == 0:
        assert np.array_equal(left.loss_by_shock, right.loss_by_shock)
    else:
        assert np.allclose(left.loss_by_shock, right.loss_by_shock, rtol=loss_rtol, atol=0)


@pytest.fixture(scope="module")
def portfolio_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_portfolios(tmp_path_factory.mktemp("book") / "book.json")


def test_shards_partition_the_book_by_account_id(portfolio_file: Path) -> None:
    arrays = PortfolioFile(path=str(portfolio_file)).load()
    for shards in (1, 2, 3):
        seen = np.zeros(arrays.position_count, dtype=np.int64)
        for index in range(shards):
            shard = take_shard(arrays, shards, index)
            assert np.array_equal(shard.accounts % shards, np.full(len(shard.accounts), index))
            seen[shard.positions] += 1
            sub = shard.arrays
            assert np.array_equal(sub.quantity, arrays.quantity[shard.positions])
            assert np.array_equal(sub.wallet, arrays.wallet[shard.accounts])
            assert np.array_equal(shard.accounts[sub.account], arrays.account[shard.positions])
            legs = sub.partner >= 0
            assert np.array_equal(
                shard.positions[sub.partner[legs]], arrays.partner[shard.positions[legs]]
            )
        assert np.array_equal(seen, np.ones(arrays.position_count, dtype=np.int64))
    assert (arrays.partner >= 0).any()


def test_each_shard_values_its_accounts_as_the_whole_book_does(
    portfolio_file: Path, backend: str
) -> None:
    for arrays in (
        PortfolioFile(path=str(portfolio_file)).load(),
        Synthetic(positions=3000).load(),
    ):
        whole = revalue(arrays, backend=backend)
        for index in range(3):
            shard = take_shard(arrays, 3, index)
            part = revalue(shard.arrays, backend=backend)
            for name in ("notional", "maintenance_margin", "isolated_liquidatable", "bracket"):
                assert np.array_equal(getattr(part, name), getattr(whole, name)[shard.positions]), (
                    name
                )
            for name in ("margin_balance", "maintenance", "margin_ratio", "cross_liquidatable"):
                assert np.array_equal(
                    getattr(part, name), getattr(whole, name)[shard.accounts], equal_nan=True
                ), name


def _stress_on_shards(
    servers: list[ShardServer], shocks: ShockGrid, pieces: int, marks: np.ndarray
) -> StressResult:
    parts = [
        (server.shard.accounts, server.stress(shocks.relative, first, stop, marks))
        for server in servers
        for first, stop in shock_slices(shocks.count, pieces)
    ]
    return combine_stress(shocks, servers[0].shard.book_accounts, parts)


def test_stress_from_shards_and_shock_slices_equals_the_one_process_grid(backend: str) -> None:
    source = Synthetic(positions=4000, seed=5)
    arrays = source.load()
    shocks = grid(arrays.symbols, [("BTCUSDT", [-0.35, -0.1, 0.15]), ("*", [-0.3, 0.0, 0.25])])
    expected = stress(arrays, shocks, backend=backend)
    assert expected.cross_liquidated.any() and expected.isolated_liquidated.any()
    three = [ShardServer(source, 3, i, backend) for i in range(3)]
    assert_same_stress(_stress_on_shards(three, shocks, 2, arrays.marks), expected, loss_rtol=1e-12)
    # one shard, shocks split in slices: every sum keeps its order, so every bit is the same
    one = [ShardServer(source, 1, 0, backend)]
    assert_same_stress(_stress_on_shards(one, shocks, 4, arrays.marks), expected, loss_rtol=0)
    # from other marks, as after ticks
    moved = arrays.marks * np.linspace(0.9, 1.1, len(arrays.symbols))
    at_moved = stress(dataclasses.replace(arrays, marks=moved), shocks, backend=backend)
    assert not np.array_equal(at_moved.cross_liquidated, expected.cross_liquidated)
    assert_same_stress(_stress_on_shards(three, shocks, 1, moved), at_moved, loss_rtol=1e-12)


def test_monte_carlo_from_shards_is_bit_identical(backend: str) -> None:
    source = Synthetic(positions=3000, seed=6)
    arrays = source.load()
    spec = MonteCarloSpec(paths=120, horizon=24, seed=4)
    expected = liquidation_probability(arrays, simulate_paths(120, 24, seed=4), backend=backend)
    assert expected.cross_probability.max() > 0 and expected.isolated_probability.max() > 0
    servers = [ShardServer(source, 2, i, backend) for i in range(2)]
    combined = combine_monte_carlo(
        arrays.account_count,
        [(s.shard.accounts, s.monte_carlo(spec, arrays.marks)) for s in servers],
    )
    assert np.array_equal(combined.cross_probability, expected.cross_probability)
    assert np.array_equal(combined.isolated_probability, expected.isolated_probability)
    assert combined.series_of_symbol == expected.series_of_symbol


def test_ticks_on_shards_give_the_candidates_of_the_whole_book(portfolio_file: Path) -> None:
    source = PortfolioFile(path=str(portfolio_file))
    arrays = source.load()
    valuation = revalue(arrays)
    servers = [ShardServer(source, 2, i) for i in range(2)]
    marks = arrays.marks.copy()
    rng = np.random.default_rng(3)
    found = 0
    for version in range(1, 9):
        slot = int(rng.integers(len(arrays.symbols)))
        marks[slot] *= float(rng.uniform(0.85, 1.1))
        result = combine_ticks([s.tick(version, marks, slot) for s in servers])
        update_symbol(arrays, valuation, slot, float(marks[slot]))
        candidates = screen(arrays, valuation=valuation)
        assert np.array_equal(result.candidate_accounts, candidates.accounts)
        assert np.array_equal(result.candidate_positions, candidates.isolated_positions)
        assert result.liquidatable == int(np.count_nonzero(valuation.liquidatable))
        start, stop = arrays.symbol_account_start[slot : slot + 2]
        assert result.accounts_holding == stop - start
        assert result.margin_balance == pytest.approx(valuation.margin_balance.sum(), rel=1e-12)
        found += len(candidates.accounts)
    assert found > 0


def test_a_shard_that_missed_ticks_answers_as_one_that_saw_them(backend: str) -> None:
    source = Synthetic(positions=2000, seed=9)
    steady = ShardServer(source, 2, 1, backend)
    marks = steady.shard.arrays.marks.copy()
    for version, slot in enumerate([0, 3, 0, 7], start=1):
        marks[slot] *= 0.9
        last = steady.tick(version, marks, slot)
    restarted = ShardServer(source, 2, 1, backend)
    recovered = restarted.tick(4, marks, 7)
    for name in last.__dataclass_fields__:
        assert np.array_equal(getattr(recovered, name), getattr(last, name)), name


def test_combining_refuses_parts_that_leave_out_a_shock_or_an_account() -> None:
    source = Synthetic(positions=500, seed=2)
    arrays = source.load()
    shocks = grid(arrays.symbols, [("*", [-0.2, 0.0, 0.2])])
    servers = [ShardServer(source, 2, i) for i in range(2)]
    only_first = [
        (servers[0].shard.accounts, servers[0].stress(shocks.relative, 0, 3, arrays.marks))
    ]
    with pytest.raises(InvalidInput, match="every account"):
        combine_stress(shocks, arrays.account_count, only_first)
    short = [(s.shard.accounts, s.stress(shocks.relative, 0, 2, arrays.marks)) for s in servers]
    with pytest.raises(InvalidInput, match="every account and shock"):
        combine_stress(shocks, arrays.account_count, short)
    with pytest.raises(InvalidInput, match="shards"):
        shard_accounts(10, 0, 0)
    with pytest.raises(InvalidInput, match="no shard 2"):
        shard_accounts(10, 2, 2)


def test_shock_slices_cover_every_shock_once() -> None:
    for shocks in (1, 2, 7, 100):
        for pieces in (1, 2, 3, 8, 200):
            slices = shock_slices(shocks, pieces)
            assert len(slices) == min(pieces, shocks)
            covered = [k for first, stop in slices for k in range(first, stop)]
            assert covered == list(range(shocks))


def test_a_snapshot_loads_the_arrays_it_saved(tmp_path: Path, portfolio_file: Path) -> None:
    arrays = PortfolioFile(path=str(portfolio_file)).load()
    path = tmp_path / "book.npz"
    save_snapshot(arrays, str(path))
    assert_same_arrays(Snapshot(path=str(path)).load(), arrays)
    (tmp_path / "junk.npz").write_bytes(b"not a snapshot")
    for bad in (tmp_path / "missing.npz", tmp_path / "junk.npz"):
        with pytest.raises(InvalidInput) as error:
            Snapshot(path=str(bad)).load()
        assert error.value.field == "BOOK"


def test_a_portfolio_file_names_the_bad_field(tmp_path: Path) -> None:
    path = tmp_path / "book.json"
    path.write_text('[{"wallet_balance": "10", "positions": [{"symbol": "BTCUSDT"}]}]')
    with pytest.raises(InvalidInput) as error:
        PortfolioFile(path=str(path)).load()
    assert error.value.field.startswith("[0].positions[0]")
    path.write_text("[")
    with pytest.raises(InvalidInput, match="invalid JSON"):
        PortfolioFile(path=str(path)).load()
    with pytest.raises(InvalidInput, match="no such file"):
        PortfolioFile(path=str(tmp_path / "none.json")).load()


def test_importing_crossmargin_does_not_import_ray() -> None:
    code = (
        "import sys; import crossmargin.cli.main, crossmargin.cli.stress, "
        "crossmargin.distributed, crossmargin.distributed.shard, crossmargin.distributed.source; "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
