"""One margin mode's engine in a backtest, and the commands the backtest sends it.

What it owns: the :class:`~crossmargin.app.writer.Engine` on the mode's event store, with one
account (``trader``); numbering the commands (``<mode>-<n>``); reading every event a command
appended back into the mode's :class:`~crossmargin.sim.backtest_events.ActivityLog`, stamped with
the simulated time (``now``) and the reason it was sent (open, stop, top-up, ...); and what a
refused command means: an error naming the spec field for the commands the spec asked for
(``strict``), a ``rejected`` activity for the ones a rule sent. The session decides nothing about
money: fills, fees and balances are the engine's.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from crossmargin.app.model import BOTH, Account
from crossmargin.app.writer import Engine
from crossmargin.core.errors import InvalidInput
from crossmargin.core.position import Position, Side
from crossmargin.ledger.store import EventStore
from crossmargin.sim.backtest_events import ACCOUNT, ActivityLog
from crossmargin.sim.spec import BacktestSpec


class EngineSession:
    """The engine of one mode's run, its command counter and its activity log."""

    def __init__(self, spec: BacktestSpec, mode: str, store: EventStore, now: datetime) -> None:
        self.mode = mode
        self.store = store
        self.engine = Engine(store, venue_name=spec.venue, symbols=spec.instruments)
        self.read_seq = store.last_seq()
        self.counter = 0
        self.now = now
        self.reason = "open"
        self.log = ActivityLog(mode, {p.instrument: p.symbol for p in spec.positions})

    @property
    def account(self) -> Account:
        return self.engine.state.accounts[ACCOUNT]

    def held(self, symbol: str) -> Position | None:
        """The trader's position on ``symbol`` (the venue's instrument name), if any."""
        account = self.engine.state.accounts.get(ACCOUNT)
        return None if account is None else account.positions.get((symbol, BOTH))

    def execute(self, command: dict[str, Any]) -> dict[str, Any]:
        """Send ``command`` and log the trader's events it produced."""
        self.counter += 1
        command["command_id"] = f"{self.mode}-{self.counter}"
        result = self.engine.execute(command)
        for entry in self.store.read(self.read_seq):
            self.read_seq = entry.seq
            for event in entry.events:
                if isinstance(event, dict):
                    self.log.consume(self.now, self.reason, event)
        return result

    def accepted(self, result: dict[str, Any], where: str, *, strict: bool) -> bool:
        """Whether the engine accepted; a refusal raises (``strict``) or is logged."""
        if result.get("status") == "accepted":
            return True
        message = f"{result.get('reason')}: {result.get('message')}"
        if strict:
            raise InvalidInput(where, f"the engine refused it ({message})")
        self.log.record(self.now, "rejected", note=f"{where}: {message}")
        return False


def market_order(
    order_id: str, symbol: str, side: Side, quantity: Decimal, *, reduce_only: bool = False
) -> dict[str, Any]:
    """A ``place_order`` command for the trader: market, buying for a long ``side``."""
    command: dict[str, Any] = {
        "type": "place_order",
        "account": ACCOUNT,
        "order_id": order_id,
        "symbol": symbol,
        "side": "buy" if side is Side.LONG else "sell",
        "order_type": "market",
        "quantity": quantity,
    }
    if reduce_only:
        command["reduce_only"] = True
    return command
