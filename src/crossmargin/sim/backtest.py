"""Backtest: one book replayed through the engine itself over candles, once per margin mode.

What it owns: turning a :class:`~crossmargin.sim.spec.BacktestSpec` and aligned candles into
engine commands on a simulated clock, and reading the engine's own events back into a summary
(final equity, drawdown, liquidations, fees, funding, capital tied up) and per-mark samples for
the report. The engine decides everything (fills, fees, funding, liquidation, insurance fund);
this module never computes a balance itself.

Per margin mode (``cross``, ``isolated``, ``mixed``) a fresh engine runs on its own event store
(in memory by default) with one account, ``trader``, and an insurance fund seeded far above any
loss, so the outcome never depends on auto-deleveraging against absent counterparties.

The simulated clock, per candle (times UTC; marks are the feed's intrabar marks):

1. Four marks O -> first extreme -> second extreme -> C (:func:`crossmargin.sim.feed.replay`):
   a long is tested against the candle's Low and a short against its High before the Close.
   Symbols move one after another in the order of the spec's positions.
2. Between two marks of a symbol the price is taken to move monotonically, so every level it
   crosses was visited. Before posting the next mark, the nearest of these levels strictly
   between the two is posted first, and acted on: a position's liquidation price (so the engine
   liquidates at the price the venue would have triggered, not at the candle's extreme), a stop
   (closed there at market, taker fee), a top-up trigger (isolated margin added). Liquidation
   prices come from the exact core (:func:`crossmargin.core.risk.position_liquidation_price`);
   when the rounded level is not yet liquidatable it is moved one price quantum (1e-8) further.
3. Positions with ``open_at`` open at market right after the open mark of that candle.
4. At a candle close that is a funding time (00:00, 08:00, 16:00 UTC) funding is settled for
   every symbol at the close mark, with the constant rate or the series' rate.
5. The rebalance rule runs at candle closes on its hour grid (UTC hours divisible by
   ``every_hours``).
6. After each of the four marks a sample is taken: prices, equity (wallet + isolated margins +
   unrealized PnL), the margin ratio of the mode (the cross scope; in isolated mode the highest
   ratio of its positions; 1 when a liquidation happened since the last sample), each position's entry and liquidation price, and the capital tied up
   (cross initial margin + isolated margins).

Events are timed with the mark that caused them: a level crossed on the way to the Low carries
the Low mark's nominal time (start + 20 min). Candles cannot say more.

Levels are computed in :mod:`crossmargin.sim.backtest_levels`; events are read back into
activities and totals by :mod:`crossmargin.sim.backtest_events`. The engine and its commands are
:mod:`crossmargin.sim.backtest_session`, the stop, top-up and rebalance rules
:mod:`crossmargin.sim.backtest_rules`, the samples :mod:`crossmargin.sim.backtest_samples`, and
the results, sizing and the market check :mod:`crossmargin.sim.backtest_results`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal

from crossmargin.app.views import book_for
from crossmargin.core.numbers import ZERO, round_requirement
from crossmargin.core.position import MarginMode
from crossmargin.ledger.store import EventStore
from crossmargin.sim.backtest_events import ACCOUNT
from crossmargin.sim.backtest_levels import scope_liquidatable, triggering_liquidation_price
from crossmargin.sim.backtest_results import (
    BacktestResult,
    ModeResult,
    check_market,
    is_funding_time,
    max_drawdown,
    quantity_for,
)
from crossmargin.sim.backtest_rules import Rules
from crossmargin.sim.backtest_samples import Sampler
from crossmargin.sim.backtest_session import EngineSession, market_order
from crossmargin.sim.candles import EPOCH
from crossmargin.sim.feed import AlignedCandles, IntrabarStep, replay
from crossmargin.sim.memory_store import MemoryEventStore
from crossmargin.sim.spec import BacktestSpec, PositionSpec

INSURANCE_SEED = Decimal("1000000000000")
MAX_LEVELS_PER_LEG = 50  # each level closes, reduces or tops up something; a backstop


def run_backtest(
    spec: BacktestSpec,
    market: AlignedCandles,
    *,
    source: str = "",
    modes: Sequence[str] | None = None,
    store_factory: Callable[[str], EventStore] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> BacktestResult:
    """Run ``spec`` over ``market`` once per mode (default: the spec's modes)."""
    check_market(spec, market)
    started = time.perf_counter()
    results = []
    marks = 0
    for mode in modes or spec.modes:
        store = store_factory(mode) if store_factory is not None else MemoryEventStore()
        try:
            runner = _ModeRun(spec, market, mode, store, progress)
            results.append(runner.run())
            marks += runner.marks_posted
        finally:
            store.close()
    return BacktestResult(
        spec=spec,
        market=market,
        source=source,
        modes=tuple(results),
        seconds=time.perf_counter() - started,
        marks_posted=marks,
    )


class _ModeRun:
    """One margin mode's clock: candles in, marks, orders and funding out to its session."""

    def __init__(
        self,
        spec: BacktestSpec,
        market: AlignedCandles,
        mode: str,
        store: EventStore,
        progress: Callable[[str, int, int], None] | None,
    ) -> None:
        self.spec = spec
        self.market = market
        self.mode = mode
        self.progress = progress
        self.session = EngineSession(spec, mode, store, market.timestamps[0])
        self.rules = Rules(spec, self.session)
        self.sampler = Sampler(spec, mode)
        self.marks_posted = 0

    # -- the run -------------------------------------------------------------------------

    def setup(self) -> None:
        """The account, its wallet, the insurance fund, each position's margin mode and leverage."""
        session = self.session
        session.reason = "setup"
        session.execute({"type": "open_account", "account": ACCOUNT})
        session.execute({"type": "deposit", "account": ACCOUNT, "amount": self.spec.wallet})
        session.execute({"type": "seed_insurance_fund", "amount": INSURANCE_SEED})
        for index, position in enumerate(self.spec.positions):
            wanted = position.margin_mode if self.mode == "mixed" else _mode_of_run(self.mode)
            if session.account.mode_for(position.instrument) is not wanted:
                self._set(index, position, "margin_mode", wanted.value)
            self._set(index, position, "leverage", position.leverage)
        session.log.activities.clear()

    def _set(self, index: int, position: PositionSpec, name: str, value: object) -> None:
        """``set_margin_mode`` or ``set_leverage`` for ``position``; a refusal is the spec's error."""
        result = self.session.execute(
            {"type": f"set_{name}", "account": ACCOUNT, "symbol": position.instrument, name: value}
        )
        self.session.accepted(result, f"positions[{index}].{name}", strict=True)

    def run(self) -> ModeResult:
        self.setup()
        first = self.market.timestamps[0]
        due: dict[datetime, list[tuple[int, PositionSpec]]] = {}
        for index, position in enumerate(self.spec.positions):
            due.setdefault(position.open_at or first, []).append((index, position))
        candles = len(self.market.timestamps)
        done = 0
        for mark in replay(self.market):
            start = mark.candle_start if mark.candle_start is not None else mark.timestamp
            self.session.now = mark.timestamp
            for position in self.spec.positions:
                self.move(position.instrument, mark.prices[position.symbol])
            if mark.step is IntrabarStep.OPEN:
                for index, position in due.get(start, []):
                    self.open(index, position, strict=start == first)
            if mark.step is IntrabarStep.CLOSE:
                self.close_candle(start + self.market.interval)
            self.sampler.take(self.session, mark.timestamp, start)
            if mark.step is IntrabarStep.CLOSE:
                done += 1
                if self.progress is not None:
                    self.progress(self.mode, done, candles)
        return self.result()

    def open(self, index: int, position: PositionSpec, *, strict: bool) -> None:
        price = self.session.engine.state.marks[position.instrument]
        quantity = quantity_for(position, price, self.spec.quantity_step)
        self.session.reason = "open"
        result = self.session.execute(
            market_order(f"open-{index}", position.instrument, position.side, quantity)
        )
        self.session.accepted(result, f"positions[{index}]", strict=strict)

    def close_candle(self, end: datetime) -> None:
        """At a candle's close ``end``: funding at a funding time, the rebalance on its grid."""
        if is_funding_time(end):
            self.session.now = end
            self.settle_funding(end)
        if self.spec.rebalance is not None:
            seconds = int((end - EPOCH).total_seconds())
            if seconds % (3600 * self.spec.rebalance.every_hours) == 0:
                self.session.now = end
                self.rules.rebalance()

    def settle_funding(self, moment: datetime) -> None:
        self.session.reason = "funding"
        for position in self.spec.positions:
            rate = self.spec.funding.rate(position.symbol, moment)
            if rate != 0:
                self.session.execute(
                    {"type": "settle_funding", "symbol": position.instrument, "rate": rate}
                )

    # -- moving a mark ---------------------------------------------------------------------

    def move(self, symbol: str, target: Decimal) -> None:
        """Post ``target`` for ``symbol``, first posting every level crossed on the way."""
        for _ in range(MAX_LEVELS_PER_LEG):
            current = self.session.engine.state.marks.get(symbol)
            if current is None or current == target:
                break
            level = self._next_level(symbol, current, target)
            if level is None:
                break
            self.post(symbol, level)
        self.post(symbol, target)

    def post(self, symbol: str, price: Decimal) -> None:
        self.session.reason = "liquidation"
        self.session.execute({"type": "update_mark", "symbol": symbol, "price": price})
        self.marks_posted += 1
        self.rules.after_mark(symbol, price)

    def _next_level(self, symbol: str, current: Decimal, target: Decimal) -> Decimal | None:
        """The nearest level strictly between ``current`` and ``target`` along the move."""
        if self.session.held(symbol) is None:
            return None
        down = target < current
        levels = []
        book = book_for(self.session.engine.state, self.session.account)
        for position in book.positions:
            if position.symbol != symbol:
                continue
            # The scope's equity minus maintenance is monotone in one symbol's price, so a
            # liquidation level lies on this leg only if the leg ends liquidatable.
            if scope_liquidatable(book, position, target):
                liquidation = triggering_liquidation_price(book, position)
                if liquidation is not None:
                    levels.append(liquidation)
            stop = self.rules.stop_level(position)
            if stop is not None:
                levels.append(stop)
            trigger = self.rules.top_up_level(book, position, current, target)
            if trigger is not None:
                levels.append(trigger)
        between = [
            level
            for level in levels
            if (target < level < current if down else current < level < target)
        ]
        if not between:
            return None
        return max(between) if down else min(between)

    # -- the result ------------------------------------------------------------------------

    def result(self) -> ModeResult:
        samples = self.sampler.samples
        drawdown, fraction = max_drawdown((s.equity for s in samples), self.spec.wallet)
        capitals = [sample.capital for sample in samples]
        log = self.session.log
        account = self.session.account
        return ModeResult(
            mode=self.mode,
            start_equity=self.spec.wallet,
            final_equity=samples[-1].equity if samples else self.spec.wallet,
            final_wallet=account.wallet,
            max_drawdown_usd=drawdown,
            max_drawdown_fraction=fraction,
            fees_paid=log.fees_paid,
            liquidation_fees=log.liquidation_fees,
            funding_paid=log.funding_paid,
            top_ups=log.top_ups,
            capital_peak=max(capitals, default=ZERO),
            capital_average=(
                round_requirement(sum(capitals, ZERO) / len(capitals)) if capitals else ZERO
            ),
            samples=tuple(samples),
            activities=tuple(log.activities),
            open_positions=tuple(account.positions.values()),
            commands=self.session.counter,
            state_hash=self.session.engine.state_hash(),
        )


def _mode_of_run(mode: str) -> MarginMode:
    """The margin mode every position takes in a ``cross`` or ``isolated`` run."""
    return MarginMode.ISOLATED if mode == "isolated" else MarginMode.CROSS
