"""What a backtest records at each mark: one :class:`~crossmargin.sim.backtest_results.Sample`.

What it owns: reading the engine's state after a mark into a sample for the report: each
symbol's price; equity (USD: wallet + isolated margins + unrealized PnL); the margin ratio of the
mode (maintenance / margin balance of the cross scope; in isolated mode the highest ratio of its
positions; 1 when a liquidation happened since the last sample, since a scope reached maintenance
in between though its position is gone); each position's entry and liquidation price; and the
capital tied up (USD: cross initial margin + isolated margins). Liquidation prices come from the
exact core (:func:`crossmargin.core.risk.position_liquidation_price`), cached while nothing they
depend on changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from crossmargin.app.views import account_scopes, book_for
from crossmargin.core.numbers import ONE, ZERO
from crossmargin.core.position import Position
from crossmargin.core.risk import Book, Scope, position_liquidation_price
from crossmargin.sim.backtest_events import LIQUIDATION_KINDS, Activity
from crossmargin.sim.backtest_results import PositionSample, Sample
from crossmargin.sim.backtest_session import EngineSession
from crossmargin.sim.spec import BacktestSpec


class Sampler:
    """The samples of one mode's run, taken after every mark."""

    def __init__(self, spec: BacktestSpec, mode: str) -> None:
        self.spec = spec
        self.mode = mode
        self.samples: list[Sample] = []
        self._liquidation_prices: dict[tuple[object, ...], Decimal | None] = {}
        self._sampled_activities = 0

    def take(self, session: EngineSession, timestamp: datetime, candle_start: datetime) -> None:
        state = session.engine.state
        account = session.account
        scopes = [scope for scope in account_scopes(state, account) if scope.positions]
        upnl = sum((scope.risk.unrealized_pnl for scope in scopes), ZERO)
        isolated = sum(account.isolated.values(), ZERO)
        cross_im = sum((scope.risk.initial_margin for scope in scopes if scope.id.is_cross), ZERO)
        book = book_for(state, account)
        self.samples.append(
            Sample(
                timestamp=timestamp,
                candle_start=candle_start,
                prices={p.symbol: state.marks[p.instrument] for p in self.spec.positions},
                equity=account.wallet + isolated + upnl,
                margin_ratio=self._margin_ratio(scopes, session.log.activities),
                capital=cross_im + isolated,
                positions=self._positions(book),
            )
        )

    def _margin_ratio(self, scopes: Sequence[Scope], activities: list[Activity]) -> Decimal | None:
        wanted = {"cross": ("cross",), "isolated": ("isolated:",)}.get(self.mode, ("",))
        known = [
            ratio
            for scope in scopes
            if (ratio := scope.margin_ratio) is not None and str(scope.id).startswith(wanted)
        ]
        # A liquidation since the last sample means a scope reached maintenance (ratio >= 1) in
        # between, though the position is gone by now: the sample shows that 100%.
        if any(a.kind in LIQUIDATION_KINDS for a in activities[self._sampled_activities :]):
            known.append(ONE)
        self._sampled_activities = len(activities)
        return max(known) if known else None

    def _positions(self, book: Book) -> dict[str, PositionSample]:
        tracks = {}
        for spec in self.spec.positions:
            held = next((p for p in book.positions if p.symbol == spec.instrument), None)
            tracks[spec.label] = PositionSample(
                entry_price=None if held is None else held.entry_price,
                liquidation_price=None if held is None else self._liquidation_price(book, held),
            )
        return tracks

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
