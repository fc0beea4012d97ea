"""What Binance's history endpoints list, derived from the engine's log: orders, trades, income.

The index reads the log's entries in order (on the engine thread, through the host) and keeps,
per account, Binance-shaped records. Every id is derived from the log, so it is the same after
a restart (the index is rebuilt from the log on start):

  event id   = seq x 1,000,000 + the event's position in its entry
  orderId    = event id of the OrderAccepted (or, for a forced close, of the liquidation fill)
  trade id   = event id of the fill
  tranId     = event id x 100 + k (k numbers the income records of one event)

Event -> records:
  OrderAccepted                 an order (NEW); clientOrderId = the engine's order id
  OrderFilled                   executed quantity and status of its order; a trade;
                                REALIZED_PNL (when not zero) and COMMISSION income
  OrderCancelled                CANCELED (by the client) or EXPIRED (liquidation, reduce-only)
  PositionLiquidated            a FILLED order ``autoclose-<orderId>`` (Binance names forced
                                closes so), a trade and REALIZED_PNL income
  PositionAutoDeleveraged       the same for the counterparty, ``adl_autoclose-<orderId>``
  LiquidationFeeCharged,        INSURANCE_CLEAR income: out of the scope (the clearance fee,
  InsuranceFundCollected        the leftover collateral of a bankrupt scope) ...
  InsuranceFundPaid,            ... or into it (the fund covering a deficit, the rest written
  BadDebtRecorded               off as bad debt), so that income sums to the wallet's change
  FundingSettled                FUNDING_FEE income per position
  FundsDeposited / Withdrawn    TRANSFER income

Times: the log has no clock, so a record's time is when the index first saw its entry (the
index follows the log within a fraction of a second); entries read while rebuilding on start
all carry the start time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from crossmargin.core.numbers import ZERO
from crossmargin.ledger.store import StoredEntry
from crossmargin.service.binance.tape import MarkTape

EVENT_ID_SPACE = 1_000_000
INCOME_PER_EVENT = 100
# Money moved into (+) or out of (-) a scope's collateral around a liquidation -> INSURANCE_CLEAR.
SCOPE_MONEY: dict[str, tuple[int, str]] = {
    "LiquidationFeeCharged": (-1, "liquidation clearance fee"),
    "InsuranceFundCollected": (-1, "leftover collateral to the insurance fund"),
    "InsuranceFundPaid": (1, "insurance fund cover of a deficit"),
    "BadDebtRecorded": (1, "deficit written off as bad debt"),
}


def event_id(seq: int, position: int) -> int:
    return seq * EVENT_ID_SPACE + position


def position_side(slot: str) -> str:
    return {"long": "LONG", "short": "SHORT"}.get(slot, "BOTH")


@dataclass(slots=True, kw_only=True)
class OrderRecord:
    order_id: int
    client_order_id: str
    symbol: str
    side: str  # BUY / SELL
    position_side: str
    order_type: str  # MARKET / LIMIT
    time_in_force: str
    price: Decimal
    quantity: Decimal
    reduce_only: bool
    time: int
    update_time: int
    executed: Decimal = ZERO
    quote: Decimal = ZERO
    status: str = "NEW"

    @property
    def average(self) -> Decimal:
        return (self.quote / self.executed).quantize(Decimal("1e-8")) if self.executed else ZERO

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeRecord:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    position_side: str
    price: Decimal
    quantity: Decimal
    commission: Decimal
    realized_pnl: Decimal
    maker: bool
    time: int


@dataclass(frozen=True, slots=True, kw_only=True)
class IncomeRecord:
    tran_id: int
    symbol: str
    income_type: str
    income: Decimal
    info: str
    time: int
    trade_id: str = ""


@dataclass(slots=True)
class Activity:
    """One account's records."""

    orders: dict[int, OrderRecord] = field(default_factory=dict)
    open_orders: dict[str, int] = field(default_factory=dict)  # engine order id -> orderId
    trades: list[TradeRecord] = field(default_factory=list)
    income: list[IncomeRecord] = field(default_factory=list)
    updated: int = 0  # when the wallet last changed
    positions_updated: dict[tuple[str, str], int] = field(default_factory=dict)

    def latest(self, client_order_id: str) -> OrderRecord | None:
        for record in reversed(self.orders.values()):
            if record.client_order_id == client_order_id:
                return record
        return None


@dataclass(frozen=True, slots=True)
class FundingRecord:
    rate: Decimal
    mark: Decimal
    time: int


class ActivityIndex:
    """Every account's activity plus the mark tape; fed entry by entry from the log."""

    def __init__(self, clock: Callable[[], int]) -> None:
        self.clock = clock
        self.last_seq = 0
        self.started = clock()
        self.accounts: dict[str, Activity] = {}
        self.by_command: dict[str, int] = {}  # log key of a place_order -> its orderId
        self.funding: dict[str, list[FundingRecord]] = {}
        self.tape = MarkTape()

    def activity(self, account: str) -> Activity:
        found = self.accounts.get(account)
        if found is None:
            found = self.accounts[account] = Activity(updated=self.started)
        return found

    def follow(self, entries: Iterable[StoredEntry], *, live: bool = True) -> None:
        """Apply entries after ``last_seq``; ``live`` False while rebuilding (no tape points)."""
        now = self.clock() if live else self.started
        for entry in entries:
            if entry.seq <= self.last_seq:
                continue
            events = [event for event in entry.events if isinstance(event, dict)]
            for position, event in enumerate(events):
                self._apply(entry, position, event, events, now, live)
            self.last_seq = entry.seq

    def _apply(
        self,
        entry: StoredEntry,
        position: int,
        event: dict[str, Any],
        events: Sequence[dict[str, Any]],
        now: int,
        live: bool,
    ) -> None:
        kind = event.get("type")
        eid = event_id(entry.seq, position)
        if kind == "MarkPriceUpdated":
            if live:
                self.tape.mark(str(event["symbol"]), Decimal(event["price"]), now)
            return
        if kind == "FundingSettled":
            self._funding(eid, event, now)
            return
        account = event.get("account")
        if not isinstance(account, str):
            return
        activity = self.activity(account)
        if kind == "OrderAccepted":
            self._accepted(activity, entry, eid, event, now)
        elif kind == "OrderFilled":
            self._filled(activity, eid, event, now, live)
        elif kind == "OrderCancelled":
            self._cancelled(activity, event, now)
        elif kind in ("PositionLiquidated", "PositionAutoDeleveraged"):
            self._forced(activity, eid, event, now, live)
        elif kind in SCOPE_MONEY:
            sign, reason = SCOPE_MONEY[kind]
            symbol = _scope_symbol(event, events, position)
            amount = sign * Decimal(event["amount"])
            self._income(activity, eid, 0, symbol, "INSURANCE_CLEAR", amount, reason, now)
        elif kind in ("FundsDeposited", "FundsWithdrawn"):
            sign = 1 if kind == "FundsDeposited" else -1
            self._income(
                activity, eid, 0, "", "TRANSFER", sign * Decimal(event["amount"]), kind, now
            )
        elif kind == "AccountOpened":
            activity.updated = now

    # -- orders --------------------------------------------------------------------------

    def _accepted(
        self, activity: Activity, entry: StoredEntry, eid: int, event: dict[str, Any], now: int
    ) -> None:
        order = event.get("order") or event.get("accepted") or {}
        limit = order.get("order_type") == "limit"
        record = OrderRecord(
            order_id=eid,
            client_order_id=str(order.get("order_id")),
            symbol=str(order.get("symbol")),
            side="BUY" if order.get("side") == "long" else "SELL",
            position_side=position_side(str(order.get("position_side"))),
            order_type="LIMIT" if limit else "MARKET",
            time_in_force="GTC",
            price=Decimal(order["price"]) if limit and order.get("price") is not None else ZERO,
            quantity=Decimal(order.get("quantity", 0)),
            reduce_only=bool(order.get("reduce_only", False)),
            time=now,
            update_time=now,
        )
        activity.orders[eid] = record
        activity.open_orders[record.client_order_id] = eid
        self.by_command[entry.command_id] = eid

    def _filled(
        self, activity: Activity, eid: int, event: dict[str, Any], now: int, live: bool
    ) -> None:
        engine_id = str(event.get("order_id"))
        order_id = activity.open_orders.get(engine_id)
        record = activity.orders.get(order_id) if order_id is not None else None
        quantity, price = Decimal(event["quantity"]), Decimal(event["price"])
        if record is not None:
            record.executed += quantity
            record.quote += quantity * price
            record.update_time = now
            if "order" in event:
                record.status = "PARTIALLY_FILLED"
            else:
                record.status = "FILLED" if record.executed >= record.quantity else "EXPIRED"
                activity.open_orders.pop(engine_id, None)
        self._trade(activity, eid, record.order_id if record else 0, event, now, live)

    def _cancelled(self, activity: Activity, event: dict[str, Any], now: int) -> None:
        order_id = activity.open_orders.pop(str(event.get("order_id")), None)
        record = activity.orders.get(order_id) if order_id is not None else None
        if record is not None:
            record.status = "CANCELED" if event.get("reason") == "by client" else "EXPIRED"
            record.update_time = now

    def _forced(
        self, activity: Activity, eid: int, event: dict[str, Any], now: int, live: bool
    ) -> None:
        """A liquidation or ADL close: Binance lists it as a filled order of its own."""
        quantity, price = Decimal(event["quantity"]), Decimal(event["price"])
        prefix = "adl_autoclose" if event["type"] == "PositionAutoDeleveraged" else "autoclose"
        activity.orders[eid] = OrderRecord(
            order_id=eid,
            client_order_id=f"{prefix}-{eid}",
            symbol=str(event["symbol"]),
            side="BUY" if event.get("side") == "long" else "SELL",
            position_side=position_side(str(event.get("slot"))),
            order_type="LIMIT",
            time_in_force="IOC",
            price=price,
            quantity=quantity,
            reduce_only=True,
            time=now,
            update_time=now,
            executed=quantity,
            quote=quantity * price,
            status="FILLED",
        )
        self._trade(activity, eid, eid, event, now, live)

    def _trade(
        self,
        activity: Activity,
        eid: int,
        order_id: int,
        event: dict[str, Any],
        now: int,
        live: bool,
    ) -> None:
        symbol = str(event["symbol"])
        quantity, price = Decimal(event["quantity"]), Decimal(event["price"])
        fee, realized = Decimal(event.get("fee", 0)), Decimal(event.get("realized_pnl", 0))
        buy = event.get("side") == "long"
        activity.trades.append(
            TradeRecord(
                trade_id=eid,
                order_id=order_id,
                symbol=symbol,
                side="BUY" if buy else "SELL",
                position_side=position_side(str(event.get("slot"))),
                price=price,
                quantity=quantity,
                commission=fee,
                realized_pnl=realized,
                maker=event.get("liquidity") == "maker",
                time=now,
            )
        )
        activity.positions_updated[(symbol, str(event.get("slot")))] = now
        activity.updated = now
        if realized != 0:
            self._income(activity, eid, 0, symbol, "REALIZED_PNL", realized, "", now, str(eid))
        if fee != 0:
            self._income(activity, eid, 1, symbol, "COMMISSION", -fee, "", now, str(eid))
        if live:
            self.tape.fill(symbol, quantity, price, buy, now)

    # -- money ----------------------------------------------------------------------------

    def _funding(self, eid: int, event: dict[str, Any], now: int) -> None:
        symbol = str(event["symbol"])
        self.funding.setdefault(symbol, []).append(
            FundingRecord(rate=Decimal(event["rate"]), mark=Decimal(event["mark"]), time=now)
        )
        for k, payment in enumerate(event.get("payments", ())):
            activity = self.activity(str(payment["account"]))
            paid = Decimal(payment["paid"])
            self._income(activity, eid, k, symbol, "FUNDING_FEE", -paid, "", now)

    def _income(
        self,
        activity: Activity,
        eid: int,
        k: int,
        symbol: str,
        kind: str,
        amount: Decimal,
        info: str,
        now: int,
        trade_id: str = "",
    ) -> None:
        activity.income.append(
            IncomeRecord(
                tran_id=eid * INCOME_PER_EVENT + k,
                symbol=symbol,
                income_type=kind,
                income=amount,
                info=info,
                time=now,
                trade_id=trade_id,
            )
        )
        activity.updated = now


def _scope_symbol(event: dict[str, Any], events: Sequence[dict[str, Any]], position: int) -> str:
    """The symbol a liquidation fee or fund payment concerns (a cross scope names none): the
    nearest fill of the same account in the entry, looking forward first (the fee precedes its
    fill, the fund's payment follows it)."""
    scope = str(event.get("scope", ""))
    if scope.startswith("isolated:"):
        return scope.split(":")[1]
    nearby = [*events[position + 1 :], *reversed(events[:position])]
    for other in nearby:
        if other.get("account") == event.get("account") and "symbol" in other:
            return str(other["symbol"])
    return ""
