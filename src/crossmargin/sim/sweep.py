"""Sweeps: the same book over a range of leverages or isolated allocations, on the batch path.

What it owns: building one account per (mode, value) as core :class:`Book` objects, converting
them once (:func:`crossmargin.batch.convert.from_books`) and replaying the candles' intrabar marks
through the vectorised revaluation (:func:`crossmargin.batch.risk.update_symbol`), recording for
each account the first mark at which anything in it is liquidatable. Floats are used here and only
here (the analytics path); the engine run (:mod:`crossmargin.sim.backtest`) is the authoritative
one, and a test checks that both find the same first liquidation.

Parameters:

* ``leverage``: every position's leverage is the swept value. A position sized by ``margin``
  keeps its margin (its notional grows with the leverage); one sized by ``notional`` or
  ``quantity`` keeps its size (its margin shrinks).
* ``allocation``: notional and leverage fixed; an isolated position's margin is the swept factor
  times its initial margin (2 = twice the margin the leverage needs). Cross positions have no
  allocation, so this sweep runs the ``isolated`` and ``mixed`` modes only.

Opening mirrors the engine: every position opens at the first candle's open (``open_at`` is
ignored), the taker fee is paid from the cross wallet (an isolated position starts with exactly
its allocated margin); an account whose wallet cannot pay initial margin and fees is reported as
refused.
Funding is settled at 00/08/16 UTC closes like the engine does. Rules (stops, top-ups,
rebalancing) are not applied: a sweep answers how long the book survives unmanaged.
Symbols move one after another within a mark, in the spec's order, as in the engine.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np

from crossmargin.batch.convert import BookArrays, Floats, from_books
from crossmargin.batch.risk import revalue, update_symbol
from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import ZERO, round_requirement
from crossmargin.core.position import MarginMode, Position
from crossmargin.core.risk import Book
from crossmargin.core.venues import venue
from crossmargin.sim.backtest_results import quantity_for
from crossmargin.sim.feed import AlignedCandles, IntrabarStep, replay
from crossmargin.sim.spec import BacktestSpec, SweepSpec

FUNDING_HOURS = frozenset({0, 8, 16})


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepPoint:
    """One account of the sweep: survived, liquidated at a time, or refused at the open."""

    mode: str
    value: Decimal
    refused: str = ""
    liquidated_at: datetime | None = None
    hours_survived: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepResult:
    parameter: str
    values: tuple[Decimal, ...]
    modes: tuple[str, ...]
    points: tuple[SweepPoint, ...]
    hours: float  # length of the run
    start: datetime
    seconds: float

    def point(self, mode: str, value: Decimal) -> SweepPoint:
        for point in self.points:
            if point.mode == mode and point.value == value:
                return point
        raise InvalidInput("sweep", f"no point for {mode} at {value}")


def _mode_of(mode: str, declared: MarginMode) -> MarginMode:
    if mode == "mixed":
        return declared
    return MarginMode.ISOLATED if mode == "isolated" else MarginMode.CROSS


def sweep_book(
    spec: BacktestSpec, mode: str, parameter: str, value: Decimal, prices: dict[str, Decimal]
) -> tuple[Book | None, str]:
    """The account of one sweep point at the opening prices, or None and why it was refused."""
    rules = venue(spec.venue)
    instruments = {}
    wallet = spec.wallet
    cross_initial = ZERO
    positions: list[Position] = []
    for declared in spec.positions:
        instrument = rules.instrument(declared.instrument)
        if instrument is None:
            raise InvalidInput(
                "positions", f"{declared.instrument} is not in the {rules.name} table"
            )
        instruments[declared.instrument] = instrument
        leverage = value if parameter == "leverage" else declared.leverage
        sized = dataclasses.replace(declared, leverage=leverage)
        price = prices[declared.instrument]
        quantity = quantity_for(sized, price, spec.quantity_step)
        margin_mode = _mode_of(mode, declared.margin_mode)
        notional = quantity * price
        bracket = instrument.bracket_for(notional)
        if bracket.max_leverage is not None and leverage > bracket.max_leverage:
            return None, f"{leverage}x is above the {bracket.max_leverage}x allowed"
        initial = round_requirement(notional / leverage)
        fee = round_requirement(notional * instrument.taker_fee_rate)
        # The engine's pre-trade check: IM + taker fee within the wallet less cross IM in use.
        if initial + fee > wallet - cross_initial:
            return None, "the wallet cannot pay the initial margin and fees"
        collateral: Decimal | None = None
        if margin_mode is MarginMode.ISOLATED:
            factor = value if parameter == "allocation" else Decimal(1)
            allocated = round_requirement(initial * factor)
            if allocated + fee > wallet - cross_initial:
                return None, "the wallet cannot pay the allocation and fees"
            wallet -= allocated + fee  # the opening fee is paid from the wallet, as the engine does
            collateral = allocated
        else:
            wallet -= fee
            cross_initial += initial
        positions.append(
            Position(
                symbol=declared.instrument,
                side=declared.side,
                quantity=quantity,
                entry_notional=notional,
                leverage=leverage,
                margin_mode=margin_mode,
                isolated_margin=collateral,
            )
        )
    book = Book(
        rules=rules,
        instruments=instruments,
        marks=dict(prices),
        positions=tuple(positions),
        wallet_balance=wallet,
    )
    return book, ""


def run_sweep(
    spec: BacktestSpec,
    market: AlignedCandles,
    sweep: SweepSpec,
    modes: Sequence[str] | None = None,
) -> SweepResult:
    """First liquidation time of every (mode, value) account over the market's intrabar marks."""
    started = time.perf_counter()
    chosen = tuple(modes or spec.modes)
    if sweep.parameter == "allocation":
        chosen = tuple(mode for mode in chosen if mode != "cross")
        if not chosen:
            raise InvalidInput("--sweep", "an allocation sweep needs the isolated or mixed mode")
    first = market.rows[0]
    opening = {p.instrument: first[p.symbol].open for p in spec.positions}
    keys: list[tuple[str, Decimal]] = []
    books: list[Book] = []
    refused: dict[tuple[str, Decimal], str] = {}
    for mode in chosen:
        for value in sweep.values:
            book, why = sweep_book(spec, mode, sweep.parameter, value, opening)
            if book is None:
                refused[(mode, value)] = why
            else:
                keys.append((mode, value))
                books.append(book)
    start = market.timestamps[0]
    hours = (market.timestamps[-1] + market.interval - start) / timedelta(hours=1)
    liquidated: dict[tuple[str, Decimal], datetime] = {}
    if books:
        liquidated = _first_liquidations(spec, market, books, keys)
    points = []
    for mode in chosen:
        for value in sweep.values:
            key = (mode, value)
            at = liquidated.get(key)
            points.append(
                SweepPoint(
                    mode=mode,
                    value=value,
                    refused=refused.get(key, ""),
                    liquidated_at=at,
                    hours_survived=0.0
                    if key in refused
                    else (hours if at is None else (at - start) / timedelta(hours=1)),
                )
            )
    return SweepResult(
        parameter=sweep.parameter,
        values=sweep.values,
        modes=chosen,
        points=tuple(points),
        hours=hours,
        start=start,
        seconds=time.perf_counter() - started,
    )


def _first_liquidations(
    spec: BacktestSpec,
    market: AlignedCandles,
    books: list[Book],
    keys: list[tuple[str, Decimal]],
) -> dict[tuple[str, Decimal], datetime]:
    arrays = from_books(books)
    valuation = revalue(arrays, backend="numpy")
    slots = {p.symbol: arrays.symbol_index(p.instrument) for p in spec.positions}
    found: dict[tuple[str, Decimal], datetime] = {}
    alive = np.ones(arrays.account_count, dtype=np.bool_)

    def check(moment: datetime) -> None:
        hit = alive & valuation.liquidatable
        for account in np.flatnonzero(hit):
            found[keys[int(account)]] = moment
        alive[hit] = False

    for mark in replay(market):
        for symbol in spec.symbols:
            update_symbol(
                arrays, valuation, slots[symbol], float(mark.prices[symbol]), backend="numpy"
            )
            check(mark.timestamp)
        if mark.step is IntrabarStep.CLOSE and mark.candle_start is not None:
            end = mark.candle_start + market.interval
            if end.minute == 0 and end.hour in FUNDING_HOURS:
                _settle_funding(spec, arrays, valuation.marks, end)
                revalue(arrays, valuation.marks, out=valuation, backend="numpy")
                check(end)
        if not alive.any():
            break
    return found


def _settle_funding(
    spec: BacktestSpec, arrays: BookArrays, marks: Floats, moment: datetime
) -> None:
    """Funding out of the cross wallet or the isolated margin (float twin of the engine's
    ``settle_funding``: notional at the mark x rate, longs pay a positive rate)."""
    rates = np.array(
        [float(spec.funding.rate(spec.position(name).symbol, moment)) for name in arrays.symbols],
        dtype=np.float64,
    )
    owed = arrays.side * arrays.quantity * marks[arrays.symbol] * rates[arrays.symbol]
    cross = ~arrays.isolated
    np.subtract.at(arrays.wallet, arrays.account[cross], owed[cross])
    arrays.collateral[arrays.isolated] -= owed[arrays.isolated]


def render_sweep_png(result: SweepResult, title: str) -> bytes:
    """Survival versus the swept value, one line per mode: hours until the first liquidation
    (the full run length when the book survived); refused points are marked at zero."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.5), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    for index, mode in enumerate(result.modes):
        colour = f"C{index + 1}"
        points = [point for point in result.points if point.mode == mode]
        opened = [point for point in points if not point.refused]
        axis.plot(
            [float(point.value) for point in opened],
            [point.hours_survived for point in opened],
            marker="o",
            color=colour,
            label=mode,
        )
        refused = [point for point in points if point.refused]
        if refused:
            axis.plot(
                [float(point.value) for point in refused],
                [0.0] * len(refused),
                marker="x",
                linestyle="none",
                color=colour,
                label=f"{mode}: refused at the open",
            )
    axis.axhline(result.hours, color="grey", linewidth=0.8, linestyle="--", label="end of run")
    axis.set_xlabel("leverage (x)" if result.parameter == "leverage" else "isolated allocation (x)")
    axis.set_ylabel("hours until the first liquidation")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(loc="best", fontsize="small")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
