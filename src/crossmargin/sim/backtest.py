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
activities and totals by :mod:`crossmargin.sim.backtest_events`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from crossmargin.app.model import BOTH, Account
from crossmargin.app.views import account_scopes, book_for
from crossmargin.app.writer import Engine
from crossmargin.core.errors import InvalidInput, InvariantViolation
from crossmargin.core.numbers import ONE, ZERO, round_requirement
from crossmargin.core.position import MarginMode, Position, Side
from crossmargin.core.risk import (
    Book,
    position_liquidation_price,
)
from crossmargin.ledger.store import EventStore
from crossmargin.sim.backtest_events import ACCOUNT, LIQUIDATION_KINDS, Activity, ActivityLog
from crossmargin.sim.backtest_levels import (
    scope_liquidatable,
    top_up_level,
    triggering_liquidation_price,
)
from crossmargin.sim.feed import AlignedCandles, IntrabarStep, replay
from crossmargin.sim.market import EPOCH
from crossmargin.sim.memory_store import MemoryEventStore
from crossmargin.sim.spec import BacktestSpec, PositionSpec

INSURANCE_SEED = Decimal("1000000000000")
FUNDING_HOURS = frozenset({0, 8, 16})
MAX_LEVELS_PER_LEG = 50  # each level closes, reduces or tops up something; a backstop


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionSample:
    entry_price: Decimal | None
    liquidation_price: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    timestamp: datetime
    candle_start: datetime
    prices: Mapping[str, Decimal]
    equity: Decimal
    margin_ratio: Decimal | None
    capital: Decimal
    positions: Mapping[str, PositionSample]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeResult:
    """One margin mode's run: samples, activities and the summary numbers (USD)."""

    mode: str
    start_equity: Decimal
    final_equity: Decimal
    final_wallet: Decimal
    max_drawdown_usd: Decimal
    max_drawdown_fraction: Decimal
    fees_paid: Decimal
    liquidation_fees: Decimal
    funding_paid: Decimal
    top_ups: Decimal
    capital_peak: Decimal
    capital_average: Decimal
    samples: tuple[Sample, ...]
    activities: tuple[Activity, ...]
    open_positions: tuple[Position, ...]
    commands: int
    state_hash: str

    @property
    def liquidations(self) -> tuple[Activity, ...]:
        return tuple(a for a in self.activities if a.kind in LIQUIDATION_KINDS)


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestResult:
    spec: BacktestSpec
    market: AlignedCandles
    source: str
    modes: tuple[ModeResult, ...]
    seconds: float
    marks_posted: int = 0
    notes: tuple[str, ...] = field(default=())


def quantity_for(spec: PositionSpec, price: Decimal, step: Decimal) -> Decimal:
    """Base units to open: the spec's quantity, or its USD notional / price floored to ``step``."""
    if spec.quantity is not None:
        return spec.quantity
    notional = spec.notional_usd_asked()
    if notional is None:
        raise InvariantViolation(f"{spec.label} has no size")
    quantity = (notional / price / step).to_integral_value(rounding=ROUND_FLOOR) * step
    if quantity <= 0:
        raise InvalidInput(
            f"positions.{spec.symbol}", f"a notional of {notional} buys nothing at {price}"
        )
    return quantity


def check_market(spec: BacktestSpec, market: AlignedCandles) -> None:
    """Every position's symbol has candles; every ``open_at`` is a candle open of the window."""
    missing = [symbol for symbol in spec.symbols if symbol not in market.symbols]
    if missing:
        raise InvalidInput("positions", f"no candles for {', '.join(missing)}")
    starts = set(market.timestamps)
    for index, position in enumerate(spec.positions):
        if position.open_at is not None and position.open_at not in starts:
            raise InvalidInput(
                f"positions[{index}].open_at",
                f"{position.open_at.isoformat()} is not the open time of a candle in the run "
                f"({market.timestamps[0].isoformat()} to {market.timestamps[-1].isoformat()})",
            )
    if spec.funding.series is not None:
        for stamp in market.timestamps:
            end = stamp + market.interval
            if _is_funding_time(end):
                for symbol in spec.symbols:
                    spec.funding.rate(symbol, end)


def _is_funding_time(moment: datetime) -> bool:
    return moment.minute == 0 and moment.second == 0 and moment.hour in FUNDING_HOURS


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
    """One margin mode's engine and clock."""

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
        self.store = store
        self.progress = progress
        self.engine = Engine(store, venue_name=spec.venue, symbols=spec.instruments)
        self.read_seq = store.last_seq()
        self.counter = 0
        self.marks_posted = 0
        self.now = market.timestamps[0]
        self.log = ActivityLog(mode, {p.instrument: p.symbol for p in spec.positions})
        self.samples: list[Sample] = []
        self.stopped: set[str] = set()
        self.reason = "open"
        self._liquidation_prices: dict[tuple[object, ...], Decimal | None] = {}
        self._sampled_activities = 0

    # -- commands --------------------------------------------------------------------------

    def execute(self, command: dict[str, Any]) -> dict[str, Any]:
        self.counter += 1
        command["command_id"] = f"{self.mode}-{self.counter}"
        result = self.engine.execute(command)
        for entry in self.store.read(self.read_seq):
            self.read_seq = entry.seq
            for event in entry.events:
                if isinstance(event, dict):
                    self.log.consume(self.now, self.reason, event)
        return result

    def _accepted(self, result: dict[str, Any], where: str, *, strict: bool) -> bool:
        if result.get("status") == "accepted":
            return True
        message = f"{result.get('reason')}: {result.get('message')}"
        if strict:
            raise InvalidInput(where, f"the engine refused it ({message})")
        self.log.record(self.now, "rejected", note=f"{where}: {message}")
        return False

    # -- the run -------------------------------------------------------------------------

    @property
    def account(self) -> Account:
        return self.engine.state.accounts[ACCOUNT]

    def _mode_for(self, position: PositionSpec) -> MarginMode:
        if self.mode == "mixed":
            return position.margin_mode
        return MarginMode.ISOLATED if self.mode == "isolated" else MarginMode.CROSS

    def setup(self) -> None:
        self.reason = "setup"
        self.execute({"type": "open_account", "account": ACCOUNT})
        self.execute({"type": "deposit", "account": ACCOUNT, "amount": self.spec.wallet})
        self.execute({"type": "seed_insurance_fund", "amount": INSURANCE_SEED})
        for index, position in enumerate(self.spec.positions):
            wanted = self._mode_for(position)
            if self.account.mode_for(position.instrument) is not wanted:
                result = self.execute(
                    {
                        "type": "set_margin_mode",
                        "account": ACCOUNT,
                        "symbol": position.instrument,
                        "margin_mode": wanted.value,
                    }
                )
                self._accepted(result, f"positions[{index}].margin_mode", strict=True)
            result = self.execute(
                {
                    "type": "set_leverage",
                    "account": ACCOUNT,
                    "symbol": position.instrument,
                    "leverage": position.leverage,
                }
            )
            self._accepted(result, f"positions[{index}].leverage", strict=True)
        self.log.activities.clear()

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
            self.now = mark.timestamp
            for position in self.spec.positions:
                self.move(position.instrument, mark.prices[position.symbol])
            if mark.step is IntrabarStep.OPEN:
                for index, position in due.get(start, []):
                    self.open(index, position, strict=start == first)
            if mark.step is IntrabarStep.CLOSE:
                end = start + self.market.interval
                if _is_funding_time(end):
                    self.now = end
                    self.settle_funding(end)
                if self.spec.rebalance is not None:
                    seconds = int((end - EPOCH).total_seconds())
                    if seconds % (3600 * self.spec.rebalance.every_hours) == 0:
                        self.now = end
                        self.rebalance()
            self.sample(mark.timestamp, start)
            if mark.step is IntrabarStep.CLOSE:
                done += 1
                if self.progress is not None:
                    self.progress(self.mode, done, candles)
        return self.result()

    def open(self, index: int, position: PositionSpec, *, strict: bool) -> None:
        price = self.engine.state.marks[position.instrument]
        quantity = quantity_for(position, price, self.spec.quantity_step)
        self.reason = "open"
        result = self.execute(
            {
                "type": "place_order",
                "account": ACCOUNT,
                "order_id": f"open-{index}",
                "symbol": position.instrument,
                "side": "buy" if position.side is Side.LONG else "sell",
                "order_type": "market",
                "quantity": quantity,
            }
        )
        self._accepted(result, f"positions[{index}]", strict=strict)

    def settle_funding(self, moment: datetime) -> None:
        self.reason = "funding"
        for position in self.spec.positions:
            rate = self.spec.funding.rate(position.symbol, moment)
            if rate != 0:
                self.execute(
                    {"type": "settle_funding", "symbol": position.instrument, "rate": rate}
                )

    # -- moving a mark ---------------------------------------------------------------------

    def move(self, symbol: str, target: Decimal) -> None:
        """Post ``target`` for ``symbol``, first posting every level crossed on the way."""
        for _ in range(MAX_LEVELS_PER_LEG):
            current = self.engine.state.marks.get(symbol)
            if current is None or current == target:
                break
            level = self._next_level(symbol, current, target)
            if level is None:
                break
            self.post(symbol, level)
        self.post(symbol, target)

    def post(self, symbol: str, price: Decimal) -> None:
        self.reason = "liquidation"
        self.execute({"type": "update_mark", "symbol": symbol, "price": price})
        self.marks_posted += 1
        self._stops(symbol, price)
        if self.spec.top_up is not None:
            self._top_up()

    def _held(self, symbol: str) -> Position | None:
        account = self.engine.state.accounts.get(ACCOUNT)
        return None if account is None else account.positions.get((symbol, BOTH))

    def _next_level(self, symbol: str, current: Decimal, target: Decimal) -> Decimal | None:
        """The nearest level strictly between ``current`` and ``target`` along the move."""
        if self._held(symbol) is None:
            return None
        down = target < current
        levels = []
        book = book_for(self.engine.state, self.account)
        for position in book.positions:
            if position.symbol != symbol:
                continue
            # The scope's equity minus maintenance is monotone in one symbol's price, so a
            # liquidation level lies on this leg only if the leg ends liquidatable.
            if scope_liquidatable(book, position, target):
                liquidation = triggering_liquidation_price(book, position)
                if liquidation is not None:
                    levels.append(liquidation)
            stop = self._stop_for(position)
            if stop is not None:
                levels.append(stop)
            trigger = self._top_up_level(book, position, current, target)
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

    def _stop_for(self, position: Position) -> Decimal | None:
        spec = self.spec.position(position.symbol)
        if spec.stop_price is None or position.symbol in self.stopped:
            return None
        return spec.stop_price

    def _stops(self, symbol: str, price: Decimal) -> None:
        position = self._held(symbol)
        if position is None:
            return
        stop = self._stop_for(position)
        if stop is None:
            return
        hit = price <= stop if position.side is Side.LONG else price >= stop
        if not hit:
            return
        self.stopped.add(symbol)
        self.reason = "stop"
        result = self.execute(
            {
                "type": "place_order",
                "account": ACCOUNT,
                "order_id": f"stop-{symbol}",
                "symbol": symbol,
                "side": "sell" if position.side is Side.LONG else "buy",
                "order_type": "market",
                "quantity": position.quantity,
                "reduce_only": True,
            }
        )
        self._accepted(result, f"stop {symbol}", strict=False)

    # -- rules -----------------------------------------------------------------------------

    def _top_up_room(self) -> Decimal:
        rule = self.spec.top_up
        if rule is None:
            return ZERO
        room = self.account.wallet
        if rule.budget_usd is not None:
            room = min(room, rule.budget_usd - self.log.top_ups)
        return max(ZERO, room)

    def _top_up_level(
        self, book: Book, position: Position, current: Decimal, target: Decimal
    ) -> Decimal | None:
        rule = self.spec.top_up
        if rule is None or not position.is_isolated or self._top_up_room() <= 0:
            return None
        return top_up_level(book, position, current, target, rule.trigger_ratio)

    def _top_up(self) -> None:
        rule = self.spec.top_up
        if rule is None:
            return
        for scope in account_scopes(self.engine.state, self.account):
            if scope.id.is_cross or not scope.positions or scope.liquidatable:
                continue
            ratio = scope.margin_ratio
            if ratio is not None and ratio < rule.trigger_ratio:
                continue
            balance = scope.margin_balance
            needed = round_requirement(scope.risk.maintenance_margin / rule.target_ratio - balance)
            amount = min(needed, self._top_up_room())
            if amount <= 0:
                continue
            symbol = scope.id.symbol
            self.reason = "top-up"
            result = self.execute(
                {
                    "type": "add_isolated_margin",
                    "account": ACCOUNT,
                    "symbol": symbol,
                    "amount": amount,
                }
            )
            self._accepted(result, f"top_up {symbol}", strict=False)

    def rebalance(self) -> None:
        rule = self.spec.rebalance
        if rule is None:
            return
        base_spec, hedge_spec = self.spec.position(rule.base), self.spec.position(rule.hedge)
        if hedge_spec.instrument in self.stopped:
            return
        state = self.engine.state
        base = self._held(base_spec.instrument)
        hedge = self._held(hedge_spec.instrument)
        mark = state.marks.get(hedge_spec.instrument)
        if mark is None:
            return
        target = (
            ZERO if base is None else base.quantity * state.marks[base_spec.instrument] * rule.ratio
        )
        current = ZERO
        if hedge is not None:
            current = hedge.quantity * mark * (1 if hedge.side is hedge_spec.side else -1)
        if target == 0 and current == 0:
            return
        if target > 0 and abs(current - target) <= rule.band * target:
            return
        step = self.spec.quantity_step
        quantity = (abs(target - current) / mark / step).to_integral_value(ROUND_FLOOR) * step
        if quantity <= 0:
            return
        growing = target > current
        side = hedge_spec.side if growing else hedge_spec.side.opposite
        command: dict[str, Any] = {
            "type": "place_order",
            "account": ACCOUNT,
            "order_id": f"rebalance-{self.counter + 1}",
            "symbol": hedge_spec.instrument,
            "side": "buy" if side is Side.LONG else "sell",
            "order_type": "market",
            "quantity": quantity if growing or hedge is None else min(quantity, hedge.quantity),
        }
        if not growing:
            command["reduce_only"] = True
        self.reason = "rebalance"
        self._accepted(self.execute(command), f"rebalance {rule.hedge}", strict=False)

    # -- samples and the result -------------------------------------------------------------

    def sample(self, timestamp: datetime, candle_start: datetime) -> None:
        state = self.engine.state
        account = self.account
        scopes = [scope for scope in account_scopes(state, account) if scope.positions]
        upnl = sum((scope.risk.unrealized_pnl for scope in scopes), ZERO)
        isolated = sum(account.isolated.values(), ZERO)
        cross_im = sum((scope.risk.initial_margin for scope in scopes if scope.id.is_cross), ZERO)
        wanted = {"cross": ("cross",), "isolated": ("isolated:",)}.get(self.mode, ("",))
        known = [
            ratio
            for scope in scopes
            if (ratio := scope.margin_ratio) is not None and str(scope.id).startswith(wanted)
        ]
        # A liquidation since the last sample means a scope reached maintenance (ratio >= 1) in
        # between, though the position is gone by now: the sample shows that 100%.
        activities = self.log.activities
        if any(a.kind in LIQUIDATION_KINDS for a in activities[self._sampled_activities :]):
            known.append(ONE)
        self._sampled_activities = len(activities)
        book = book_for(state, account)
        tracks = {}
        for spec in self.spec.positions:
            held = next((p for p in book.positions if p.symbol == spec.instrument), None)
            tracks[spec.label] = PositionSample(
                entry_price=None if held is None else held.entry_price,
                liquidation_price=None if held is None else self._liquidation_price(book, held),
            )
        self.samples.append(
            Sample(
                timestamp=timestamp,
                candle_start=candle_start,
                prices={p.symbol: state.marks[p.instrument] for p in self.spec.positions},
                equity=account.wallet + isolated + upnl,
                margin_ratio=max(known) if known else None,
                capital=cross_im + isolated,
                positions=tracks,
            )
        )

    def _liquidation_price(self, book: Book, position: Position) -> Decimal | None:
        """Cached: it changes only with the position, its collateral or the other cross marks."""
        if position.is_isolated:
            key: tuple[object, ...] = (position,)
        else:
            others = tuple(
                (p, book.mark(p.symbol)) for p in book.cross_positions() if p is not position
            )
            key = (position, book.wallet_balance, others)
        if key not in self._liquidation_prices:
            self._liquidation_prices[key] = position_liquidation_price(book, position)
        return self._liquidation_prices[key]

    def result(self) -> ModeResult:
        equities = [sample.equity for sample in self.samples]
        peak = equities[0] if equities else self.spec.wallet
        drawdown = ZERO
        fraction = ZERO
        for value in equities:
            peak = max(peak, value)
            if peak - value > drawdown:
                drawdown = peak - value
                fraction = drawdown / peak if peak > 0 else ZERO
        capitals = [sample.capital for sample in self.samples]
        account = self.account
        return ModeResult(
            mode=self.mode,
            start_equity=self.spec.wallet,
            final_equity=equities[-1] if equities else self.spec.wallet,
            final_wallet=account.wallet,
            max_drawdown_usd=drawdown,
            max_drawdown_fraction=fraction.quantize(Decimal("0.0001"), rounding=ROUND_CEILING),
            fees_paid=self.log.fees_paid,
            liquidation_fees=self.log.liquidation_fees,
            funding_paid=self.log.funding_paid,
            top_ups=self.log.top_ups,
            capital_peak=max(capitals, default=ZERO),
            capital_average=(
                round_requirement(sum(capitals, ZERO) / len(capitals)) if capitals else ZERO
            ),
            samples=tuple(self.samples),
            activities=tuple(self.log.activities),
            open_positions=tuple(account.positions.values()),
            commands=self.counter,
            state_hash=self.engine.state_hash(),
        )
