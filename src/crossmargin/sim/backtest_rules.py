"""The SPEC's rules in a backtest run: stops, isolated-margin top-ups and the hedge rebalance.

What it owns: when each rule acts and the command it sends through the mode's
:class:`~crossmargin.sim.backtest_session.EngineSession` (the engine decides the fills):

* a stop closes its position at market (reduce-only, taker fee) once the mark reaches the stop
  price (a long at or below it, a short at or above it); a stopped symbol stays stopped;
* a top-up adds isolated margin to an isolated scope whose margin ratio reached
  ``trigger_ratio``, enough to bring it back to ``target_ratio`` (rounded up to the cent), within
  the wallet and what is left of the budget (USD);
* the rebalance trades the hedge back to ``ratio`` x the base's notional (USD) when it drifted
  more than ``band`` away, in whole quantity steps (floored), reduce-only when it shrinks.

It also names the prices at which a rule would act (:meth:`Rules.stop_level`,
:meth:`Rules.top_up_level`), so the run posts them as marks on the way
(:mod:`crossmargin.sim.backtest`).
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from crossmargin.app.views import account_scopes
from crossmargin.core.numbers import ZERO, round_requirement
from crossmargin.core.position import Position, Side
from crossmargin.core.risk import Book
from crossmargin.sim.backtest_events import ACCOUNT
from crossmargin.sim.backtest_levels import top_up_level
from crossmargin.sim.backtest_session import EngineSession, market_order
from crossmargin.sim.spec import BacktestSpec


class Rules:
    """The spec's stop, top-up and rebalance rules acting on one mode's session."""

    def __init__(self, spec: BacktestSpec, session: EngineSession) -> None:
        self.spec = spec
        self.session = session
        self.stopped: set[str] = set()

    # -- stops -----------------------------------------------------------------------------

    def stop_level(self, position: Position) -> Decimal | None:
        """The stop price of ``position`` while its stop can still fire."""
        spec = self.spec.position(position.symbol)
        if spec.stop_price is None or position.symbol in self.stopped:
            return None
        return spec.stop_price

    def after_mark(self, symbol: str, price: Decimal) -> None:
        """What the rules do once ``price`` is posted for ``symbol``: its stop, then top-ups."""
        self._stop(symbol, price)
        self._top_up()

    def _stop(self, symbol: str, price: Decimal) -> None:
        position = self.session.held(symbol)
        if position is None:
            return
        stop = self.stop_level(position)
        if stop is None:
            return
        hit = price <= stop if position.side is Side.LONG else price >= stop
        if not hit:
            return
        self.stopped.add(symbol)
        self.session.reason = "stop"
        result = self.session.execute(
            market_order(
                f"stop-{symbol}",
                symbol,
                position.side.opposite,
                position.quantity,
                reduce_only=True,
            )
        )
        self.session.accepted(result, f"stop {symbol}", strict=False)

    # -- top-ups ---------------------------------------------------------------------------

    def _top_up_room(self) -> Decimal:
        rule = self.spec.top_up
        if rule is None:
            return ZERO
        room = self.session.account.wallet
        if rule.budget_usd is not None:
            room = min(room, rule.budget_usd - self.session.log.top_ups)
        return max(ZERO, room)

    def top_up_level(
        self, book: Book, position: Position, current: Decimal, target: Decimal
    ) -> Decimal | None:
        """The price between ``current`` and ``target`` at which ``position`` would be topped
        up, when the rule applies to it and money is left for it."""
        rule = self.spec.top_up
        if rule is None or not position.is_isolated or self._top_up_room() <= 0:
            return None
        return top_up_level(book, position, current, target, rule.trigger_ratio)

    def _top_up(self) -> None:
        rule = self.spec.top_up
        if rule is None:
            return
        session = self.session
        for scope in account_scopes(session.engine.state, session.account):
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
            session.reason = "top-up"
            result = session.execute(
                {
                    "type": "add_isolated_margin",
                    "account": ACCOUNT,
                    "symbol": symbol,
                    "amount": amount,
                }
            )
            session.accepted(result, f"top_up {symbol}", strict=False)

    # -- the rebalance ---------------------------------------------------------------------

    def rebalance(self) -> None:
        """Trade the hedge back to ``ratio`` x the base's notional when it left the band."""
        rule = self.spec.rebalance
        if rule is None:
            return
        base_spec, hedge_spec = self.spec.position(rule.base), self.spec.position(rule.hedge)
        if hedge_spec.instrument in self.stopped:
            return
        session = self.session
        state = session.engine.state
        base = session.held(base_spec.instrument)
        hedge = session.held(hedge_spec.instrument)
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
        command = market_order(
            f"rebalance-{session.counter + 1}",
            hedge_spec.instrument,
            side,
            quantity if growing or hedge is None else min(quantity, hedge.quantity),
            reduce_only=not growing,
        )
        session.reason = "rebalance"
        session.accepted(session.execute(command), f"rebalance {rule.hedge}", strict=False)
