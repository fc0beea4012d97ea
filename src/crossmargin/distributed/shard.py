"""Shards of a book by account id, the work one shard does, and how shard results combine.

Plain numpy, no Ray: :mod:`crossmargin.distributed.cluster` runs a :class:`ShardServer` inside
each actor; tests run the same class in process.

Sharding: account ``a`` of a book of ``N`` accounts belongs to shard ``a % shards``. A shard is
a :class:`~crossmargin.batch.convert.BookArrays` of its accounts (in account order, each with all
of its positions) plus the global ids of those accounts and positions.

What is equal to the one-process batch path, and why:

* Everything per account or per position (valuations, liquidation flags, candidates, worst
  ratios and losses, Monte Carlo probabilities) is bit-for-bit identical: every batch kernel
  computes an account from that account's positions alone, in position order, and a shard keeps
  that order. A stress grid split into shock slices is identical too: each shock is independent
  and the per-account worst values are maxima (exact in floating point).
* Sums over accounts (a tick's total margin balance and maintenance, a stress grid's
  ``loss_by_shock``) are added per shard and then across shards, so they differ from the
  one-process sums by float summation order only (a few ulps: a relative 1e-12 is generous).
  With one shard they are identical.

Ticks carry a version: the marks after tick ``v`` are the marks of tick ``v - 1`` with one
symbol changed. A shard that missed ticks (it was restarted from its source) revalues fully at the
tick's marks, which gives the same bits as the one-symbol update (see
:func:`crossmargin.batch.risk.update_symbol`), so a recovered shard answers as an undisturbed one.
Stress grids and Monte Carlo start from the marks they are given (the driver's current marks), as
the batch functions start from a book's marks.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crossmargin.batch.convert import BookArrays, Floats, Ints, assemble
from crossmargin.batch.montecarlo import MonteCarloResult, liquidation_probability, simulate_paths
from crossmargin.batch.risk import account_positions, check_marks, revalue, update_symbol
from crossmargin.batch.screen import screen
from crossmargin.batch.stress import ShockGrid, StressResult, empty_result, stress
from crossmargin.core.errors import InvalidInput
from crossmargin.distributed.source import BookSource

Bytes = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True, kw_only=True)
class Shard:
    index: int
    count: int
    arrays: BookArrays
    accounts: Ints  # global account id of each shard account
    positions: Ints  # global position index of each shard position
    book_accounts: int  # accounts in the whole book


def shard_accounts(account_count: int, shards: int, index: int) -> Ints:
    """The global ids of the accounts of shard ``index`` (``a % shards == index``)."""
    if shards < 1:
        raise InvalidInput("shards", "must be at least 1")
    if not 0 <= index < shards:
        raise InvalidInput("shard", f"no shard {index} of {shards}")
    return np.arange(index, account_count, shards, dtype=np.int64)


def take_accounts(arrays: BookArrays, accounts: Ints) -> tuple[BookArrays, Ints]:
    """The sub-book of ``accounts`` (ascending global ids) and its positions' global indices."""
    positions, owner = account_positions(arrays, accounts)
    lengths = arrays.account_start[accounts + 1] - arrays.account_start[accounts]
    starts = np.zeros(len(accounts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    partner = arrays.partner[positions].astype(np.int64)
    local = np.arange(len(positions), dtype=np.int64)
    # a partner leg is in the same account, at the same offset from the position in both books
    local_partner = np.where(partner >= 0, local + partner - positions, -1).astype(np.int32)
    sub = assemble(
        symbols=arrays.symbols,
        marks=arrays.marks,
        tables=arrays.tables,
        account=owner.astype(np.int32),
        symbol=arrays.symbol[positions],
        instrument=arrays.instrument[positions],
        columns={
            "side": arrays.side[positions],
            "quantity": arrays.quantity[positions],
            "entry_notional": arrays.entry_notional[positions],
            "inverse_leverage": arrays.inverse_leverage[positions],
            "collateral": arrays.collateral[positions],
            "close_fee": arrays.close_fee[positions],
        },
        isolated=arrays.isolated[positions],
        maintenance_at_entry=arrays.maintenance_at_entry[positions],
        partner=local_partner,
        wallet=arrays.wallet[accounts],
        account_start=starts,
    )
    return sub, positions


def take_shard(arrays: BookArrays, shards: int, index: int) -> Shard:
    accounts = shard_accounts(arrays.account_count, shards, index)
    sub, positions = take_accounts(arrays, accounts)
    return Shard(
        index=index,
        count=shards,
        arrays=sub,
        accounts=accounts,
        positions=positions,
        book_accounts=arrays.account_count,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class ShardInfo:
    index: int
    symbols: tuple[str, ...]
    marks: Floats
    book_accounts: int
    accounts: int
    positions: int
    nbytes: int
    reconstructed: bool  # this actor was restarted after a loss


@dataclass(frozen=True, slots=True, kw_only=True)
class TickPart:
    """One shard's answer to a tick (or a full revaluation) at a marks version."""

    version: int
    accounts_holding: int  # accounts holding the ticked symbol (all accounts for a revaluation)
    liquidatable: int  # accounts with a liquidatable scope
    candidate_accounts: Ints  # global ids, ascending
    candidate_positions: Ints  # global isolated position indices, ascending
    margin_balance: float  # sum over accounts of the cross margin balance
    maintenance: float  # sum over accounts of the cross maintenance margin


@dataclass(frozen=True, slots=True, kw_only=True)
class StressPart:
    """One shard's stress results for shocks ``first`` .. ``first + shocks``."""

    first: int
    shocks: int
    cross_worst_ratio: Floats
    cross_liquidated: Bytes  # packed bits (accounts, ceil(shocks / 8))
    cross_worst_loss: Floats
    isolated_worst_ratio: Floats
    isolated_liquidated: Bytes
    isolated_worst_loss: Floats
    loss_by_shock: Floats
    compute_seconds: float  # CPU time of the thread that ran the grid slice


@dataclass(frozen=True, slots=True, kw_only=True)
class MonteCarloSpec:
    """Paths are drawn inside each shard from this spec (a few bytes instead of the paths)."""

    paths: int
    horizon: int
    seed: int
    model: str = "bootstrap"
    block_hours: int = 6


class ShardServer:
    """The state and work of one shard (the body of a Ray actor)."""

    def __init__(
        self, source: BookSource, shards: int, index: int, backend: str | None = None
    ) -> None:
        self.backend = backend
        self.shard = take_shard(source.load(), shards, index)
        self.valuation = revalue(self.shard.arrays, backend=backend)
        self.version = 0

    def info(self, reconstructed: bool = False) -> ShardInfo:
        arrays = self.shard.arrays
        return ShardInfo(
            index=self.shard.index,
            symbols=arrays.symbols,
            marks=arrays.marks,
            book_accounts=self.shard.book_accounts,
            accounts=arrays.account_count,
            positions=arrays.position_count,
            nbytes=arrays.nbytes,
            reconstructed=reconstructed,
        )

    def tick(self, version: int, marks: Floats, symbol: int) -> TickPart:
        """Apply tick ``version`` (``marks`` after it; ``symbol`` the one that moved)."""
        arrays = self.shard.arrays
        expected = self.valuation.marks.copy()
        expected[symbol] = marks[symbol]
        if self.version == version - 1 and np.array_equal(expected, marks):
            update_symbol(
                arrays, self.valuation, symbol, float(marks[symbol]), backend=self.backend
            )
        else:
            # missed ticks (a restarted shard) or several moved symbols: the same bits, in full
            revalue(arrays, marks, out=self.valuation, backend=self.backend)
        self.version = version
        start, stop = arrays.symbol_account_start[symbol], arrays.symbol_account_start[symbol + 1]
        return self._summary(int(stop - start))

    def revalue(self, version: int, marks: Floats) -> TickPart:
        revalue(self.shard.arrays, marks, out=self.valuation, backend=self.backend)
        self.version = version
        return self._summary(self.shard.arrays.account_count)

    def _summary(self, holding: int) -> TickPart:
        values = self.valuation
        candidates = screen(self.shard.arrays, valuation=values)
        return TickPart(
            version=self.version,
            accounts_holding=holding,
            liquidatable=int(np.count_nonzero(values.liquidatable)),
            candidate_accounts=self.shard.accounts[candidates.accounts],
            candidate_positions=self.shard.positions[candidates.isolated_positions],
            margin_balance=float(np.sum(values.margin_balance)),
            maintenance=float(np.sum(values.maintenance)),
        )

    def _at(self, marks: Floats) -> BookArrays:
        """The shard with ``marks`` as its base marks (the batch functions shock those)."""
        return dataclasses.replace(self.shard.arrays, marks=check_marks(self.shard.arrays, marks))

    def stress(self, relative: Floats, first: int, stop: int, marks: Floats) -> StressPart:
        """Shocks ``first`` .. ``stop`` of ``relative``, applied to ``marks``."""
        labels = tuple(str(k) for k in range(first, stop))
        shocks = ShockGrid(labels=labels, relative=relative[first:stop])
        started = time.thread_time()
        result = stress(self._at(marks), shocks, backend=self.backend)
        compute = time.thread_time() - started
        return StressPart(
            first=first,
            shocks=stop - first,
            cross_worst_ratio=result.cross_worst_ratio,
            cross_liquidated=np.packbits(result.cross_liquidated, axis=1),
            cross_worst_loss=result.cross_worst_loss,
            isolated_worst_ratio=result.isolated_worst_ratio,
            isolated_liquidated=np.packbits(result.isolated_liquidated, axis=1),
            isolated_worst_loss=result.isolated_worst_loss,
            loss_by_shock=result.loss_by_shock,
            compute_seconds=compute,
        )

    def monte_carlo(self, spec: MonteCarloSpec, marks: Floats) -> MonteCarloResult:
        """Paths drawn from ``spec``, starting at ``marks``."""
        paths = simulate_paths(
            spec.paths,
            spec.horizon,
            seed=spec.seed,
            model=spec.model,
            block_hours=spec.block_hours,
        )
        return liquidation_probability(self._at(marks), paths, backend=self.backend)


@dataclass(frozen=True, slots=True, kw_only=True)
class TickResult:
    """A tick over the whole book: the shards' parts combined."""

    version: int
    accounts_holding: int
    liquidatable: int
    candidate_accounts: Ints
    candidate_positions: Ints
    margin_balance: float
    maintenance: float


def combine_ticks(parts: list[TickPart]) -> TickResult:
    versions = {part.version for part in parts}
    if len(versions) != 1:
        raise InvalidInput("version", f"shards answered different ticks: {sorted(versions)}")
    return TickResult(
        version=parts[0].version,
        accounts_holding=sum(part.accounts_holding for part in parts),
        liquidatable=sum(part.liquidatable for part in parts),
        candidate_accounts=np.sort(np.concatenate([p.candidate_accounts for p in parts])),
        candidate_positions=np.sort(np.concatenate([p.candidate_positions for p in parts])),
        margin_balance=sum((part.margin_balance for part in parts), 0.0),
        maintenance=sum((part.maintenance for part in parts), 0.0),
    )


def shock_slices(shocks: int, pieces: int) -> list[tuple[int, int]]:
    """``shocks`` split into at most ``pieces`` contiguous, nearly equal, non-empty slices."""
    edges = np.linspace(0, shocks, min(max(pieces, 1), shocks) + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


def combine_stress(
    shocks: ShockGrid, account_count: int, parts: list[tuple[Ints, StressPart]]
) -> StressResult:
    """The book's :class:`StressResult` from (shard accounts, part) pairs covering every
    account and every shock."""
    result = empty_result(shocks, account_count)
    covered = np.zeros(account_count, dtype=np.int64)
    for accounts, part in parts:
        window = slice(part.first, part.first + part.shocks)
        # maxima are exact, so folding shock slices in any order gives the one-process bits
        for name in (
            "cross_worst_ratio",
            "cross_worst_loss",
            "isolated_worst_ratio",
            "isolated_worst_loss",
        ):
            target = getattr(result, name)
            target[accounts] = np.maximum(target[accounts], getattr(part, name))
        for name in ("cross_liquidated", "isolated_liquidated"):
            bits = np.unpackbits(getattr(part, name), axis=1, count=part.shocks)
            getattr(result, name)[accounts, window] = bits.astype(np.bool_)
        result.loss_by_shock[window] += part.loss_by_shock
        covered[accounts] += part.shocks
    if not np.all(covered == shocks.count):
        raise InvalidInput("parts", "the shard results do not cover every account and shock once")
    return result


def combine_monte_carlo(
    account_count: int, parts: list[tuple[Ints, MonteCarloResult]]
) -> MonteCarloResult:
    """The book's :class:`MonteCarloResult` from (shard accounts, shard result) pairs."""
    first = parts[0][1]
    cross = np.full(account_count, np.nan)
    isolated = np.full(account_count, np.nan)
    for accounts, part in parts:
        cross[accounts] = part.cross_probability
        isolated[accounts] = part.isolated_probability
    if np.isnan(cross).any() or np.isnan(isolated).any():
        raise InvalidInput("parts", "the shard results do not cover every account")
    return MonteCarloResult(
        cross_probability=cross,
        isolated_probability=isolated,
        series_of_symbol=first.series_of_symbol,
        paths=first.paths,
        horizon_hours=first.horizon_hours,
        model=first.model,
    )
