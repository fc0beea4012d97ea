"""The reference model of the engine: commands in, result and state out, from the specification.

``ReferenceModel.execute(command)`` decides a command exactly as the specification's money rules
say (validation, business rejections, orders and simulated or external matching, fills, funding,
the examination with liquidation, insurance fund, ADL and bad debt) and returns an
:class:`Outcome` (status, reason, the model's own event records). It shares no code with the
engine (crossmargin.app / core / batch): only the bundled bracket table, read as data.

Where the specification is silent the model takes the reading closest to Binance's rules:
reduce-only and hedge-mode closes are clipped to the position when they fill and the clipped
remainder is cancelled (a hedge-mode close never opens, as on Binance); resting limits with the
same id on two accounts fill in (order id, account) order; a resting market order (external
matching) is re-reserved at the current mark; a liquidation that leaves a scope without
positions and below zero (a non-bankrupt close's remainder, rounding dust) settles it at once.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any

from tests.model.ref_booking import book_fill
from tests.model.ref_figures import (
    BOTH,
    CROSS,
    MAKER,
    TAKER,
    ZERO,
    Acct,
    Order,
    State,
    bracket_index,
    down,
    figures,
    free_margin,
    initial,
    load_brackets,
    up,
    upnl,
)
from tests.model.ref_liquidation import Event, examine
from tests.model.ref_validation import Outcome, Rejected, number, validate


class ReferenceModel:
    def __init__(self, symbols: tuple[str, ...], *, external_matching: bool = False) -> None:
        self.state = State(brackets=load_brackets(symbols), external_matching=external_matching)

    # -- entry point ---------------------------------------------------------------------

    def execute(self, command: dict[str, Any]) -> Outcome:
        # the specification's context (28 digits, half-even), whatever the caller's context is
        with localcontext(Context(prec=28, rounding=ROUND_HALF_EVEN)):
            return self._execute(command)

    def _execute(self, command: dict[str, Any]) -> Outcome:
        try:
            validate(command)
        except Rejected as rejected:
            return Outcome("rejected", rejected.reason)
        saved = self.state.clone()
        events: list[Event] = []
        named: set[str] = set()
        try:
            getattr(self, "_" + command["type"])(command, events, named)
        except Rejected as rejected:
            self.state = saved
            return Outcome("rejected", rejected.reason)
        examine(self.state, events, named)
        return Outcome("accepted", None, events)

    # -- lookups -------------------------------------------------------------------------

    def _account(self, command: dict[str, Any]) -> Acct:
        account = self.state.accounts.get(command["account"])
        if account is None:
            raise Rejected("UNKNOWN_ACCOUNT")
        return account

    def _symbol(self, command: dict[str, Any]) -> str:
        symbol = command["symbol"]
        if symbol not in self.state.brackets:
            raise Rejected("UNKNOWN_SYMBOL")
        return str(symbol)

    # -- money in and out ----------------------------------------------------------------

    def _open_account(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        if c["account"] in self.state.accounts:
            raise Rejected("ACCOUNT_EXISTS")
        self.state.accounts[c["account"]] = Acct(account_id=c["account"])
        named.add(c["account"])

    def _deposit(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        account = self._account(c)
        amount = number(c, "amount")
        account.wallet += amount
        self.state.flow("deposits", -amount)
        named.add(account.account_id)

    def _withdraw(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        account = self._account(c)
        amount = number(c, "amount")
        if amount > free_margin(self.state, account):
            raise Rejected("INSUFFICIENT_BALANCE")
        account.wallet -= amount
        if figures(self.state, account, CROSS).liquidatable:
            raise Rejected("WITHDRAWAL_WOULD_LIQUIDATE")
        self.state.flow("deposits", amount)
        named.add(account.account_id)

    def _seed_insurance_fund(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        amount = number(c, "amount")
        self.state.fund += amount
        self.state.flow("insurance", -amount)

    def _isolated_slot(self, c: dict[str, Any], account: Acct) -> tuple[str, str]:
        symbol = self._symbol(c)
        if account.hedge and c.get("position_side") is None:
            raise Rejected("INVALID_COMMAND")
        key = (symbol, str(c["position_side"]) if account.hedge else BOTH)
        position = account.positions.get(key)
        if position is None:
            raise Rejected("NO_POSITION")
        if not position.isolated:
            raise Rejected("NOT_ISOLATED")
        return key

    def _add_isolated_margin(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        account = self._account(c)
        key = self._isolated_slot(c, account)
        amount = number(c, "amount")
        if amount > free_margin(self.state, account):
            raise Rejected("INSUFFICIENT_BALANCE")
        account.wallet -= amount
        account.move_margin(key, amount)
        named.add(account.account_id)

    def _remove_isolated_margin(
        self, c: dict[str, Any], events: list[Event], named: set[str]
    ) -> None:
        account = self._account(c)
        key = self._isolated_slot(c, account)
        amount = number(c, "amount")
        position = account.positions[key]
        mark = self.state.marks[key[0]]
        im = initial(position.qty, mark, position.leverage)
        if account.margin(key) - amount + min(ZERO, upnl(position, mark)) < im:
            raise Rejected("ISOLATED_BELOW_INITIAL_MARGIN")
        account.move_margin(key, -amount)
        account.wallet += amount
        named.add(account.account_id)

    # -- settings ------------------------------------------------------------------------

    def _set_leverage(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        account = self._account(c)
        symbol = self._symbol(c)
        leverage = number(c, "leverage")
        held = {k: p for k, p in account.positions.items() if k[0] == symbol}
        notional = sum((p.qty * self.state.marks[symbol] for p in held.values()), ZERO)
        brackets = self.state.brackets[symbol]
        if leverage > brackets[bracket_index(brackets, notional)].max_leverage:
            raise Rejected("LEVERAGE_ABOVE_MAX")
        account.leverage[symbol] = leverage
        for position in held.values():
            position.leverage = leverage
        orders = [o for o in account.orders.values() if o.symbol == symbol]
        for order in orders:
            if not order.reduce_only:
                order.reserved = self._reservation(account, order, leverage)
        if (held or orders) and free_margin(self.state, account) < 0:
            raise Rejected("INSUFFICIENT_MARGIN")
        mark = self.state.marks.get(symbol)
        for key, position in held.items():
            if position.isolated and mark is not None:
                needed = initial(position.qty, mark, leverage)
                if account.margin(key) + min(ZERO, upnl(position, mark)) < needed:
                    raise Rejected("INSUFFICIENT_MARGIN")
        named.add(account.account_id)

    def _reservation(self, account: Acct, order: Order, leverage: Decimal) -> Decimal:
        mark = self.state.marks[order.symbol]
        price = order.price if order.price is not None else mark
        inc = self._increasing(account, order.symbol, order.slot, order.side, order.qty)
        loss = inc * abs(min(ZERO, order.side * (mark - price)))
        return up(inc * price / leverage + loss + inc * price * TAKER)

    def _set_margin_mode(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        account = self._account(c)
        symbol = self._symbol(c)
        isolated = c["margin_mode"] == "isolated"
        if account.isolated_mode.get(symbol, False) == isolated:
            raise Rejected("MARGIN_MODE_UNCHANGED")
        if any(k[0] == symbol for k in account.positions):
            raise Rejected("MARGIN_MODE_SWITCH_WITH_OPEN_POSITION")
        if any(o.symbol == symbol for o in account.orders.values()):
            raise Rejected("MARGIN_MODE_SWITCH_WITH_OPEN_ORDERS")
        account.isolated_mode[symbol] = isolated
        named.add(account.account_id)

    def _set_position_mode(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        account = self._account(c)
        hedge = c["position_mode"] == "hedge"
        if account.hedge == hedge:
            raise Rejected("POSITION_MODE_UNCHANGED")
        if account.positions:
            raise Rejected("POSITION_MODE_SWITCH_WITH_OPEN_POSITION")
        if account.orders:
            raise Rejected("POSITION_MODE_SWITCH_WITH_OPEN_ORDERS")
        account.hedge = hedge
        named.add(account.account_id)

    # -- orders --------------------------------------------------------------------------

    def _increasing(
        self, account: Acct, symbol: str, slot: str, side: int, qty: Decimal
    ) -> Decimal:
        """The part of an order that opens or increases its slot's position."""
        position = account.positions.get((symbol, slot))
        if slot != BOTH:
            return qty if (slot == "long") == (side > 0) else ZERO
        if position is None or position.side == side:
            return qty
        return max(ZERO, qty - position.qty)

    @staticmethod
    def _reducible(account: Acct, symbol: str, slot: str, side: int) -> Decimal:
        position = account.positions.get((symbol, slot))
        return ZERO if position is None or position.side == side else position.qty

    def _place_order(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        account = self._account(c)
        symbol = self._symbol(c)
        order_id = str(c["order_id"])
        if order_id in account.orders:
            raise Rejected("DUPLICATE_ORDER_ID")
        if account.hedge != (c.get("position_side") is not None):
            raise Rejected("POSITION_SIDE_MISMATCH")
        side = 1 if c["side"] == "buy" else -1
        slot = str(c["position_side"]) if account.hedge else BOTH
        qty = number(c, "quantity")
        market = c["order_type"] == "market"
        limit = None if market else number(c, "price")
        mark = self.state.marks.get(symbol)
        if mark is None:
            raise Rejected("NO_MARK_PRICE")
        reduce_only = bool(c.get("reduce_only", False))
        inc = self._increasing(account, symbol, slot, side, qty)
        reducible = self._reducible(account, symbol, slot, side)
        if reduce_only and reducible == 0:
            raise Rejected("REDUCE_ONLY_WOULD_INCREASE")
        if slot != BOTH and inc == 0 and qty > reducible:
            raise Rejected("REDUCE_ONLY_WOULD_INCREASE")
        if reduce_only:
            inc = ZERO
        order_price = limit if limit is not None else mark
        immediate = not self.state.external_matching and (
            market or side * (order_price - mark) >= 0
        )
        fill_price = mark if immediate else order_price
        leverage = account.leverage_for(symbol)
        cost = ZERO
        if inc > 0:
            position = account.positions.get((symbol, slot))
            held = position.qty if position is not None and position.side == side else ZERO
            brackets = self.state.brackets[symbol]
            notional = (held + inc) * fill_price
            bracket = brackets[bracket_index(brackets, notional)]
            if notional > brackets[-1].cap or leverage > bracket.max_leverage:
                raise Rejected("LEVERAGE_ABOVE_MAX")
            exact = inc * fill_price / leverage + inc * abs(min(ZERO, side * (mark - order_price)))
            exact += inc * fill_price * TAKER  # the fee to open, reserved by resting orders too
            cost = up(exact)
            if cost > free_margin(self.state, account):
                raise Rejected("INSUFFICIENT_MARGIN")
        order = Order(
            order_id=order_id,
            account=account.account_id,
            symbol=symbol,
            side=side,
            slot=slot,
            market=market,
            qty=qty,
            price=limit,
            reduce_only=reduce_only,
            reserved=ZERO if immediate else cost,
        )
        named.add(account.account_id)
        if immediate:
            self._fill_order(events, order, qty, mark, TAKER, "taker", stored=False)
        else:
            account.orders[order_id] = order

    def _fill_order(
        self,
        events: list[Event],
        order: Order,
        qty: Decimal,
        price: Decimal,
        rate: Decimal,
        liquidity: str,
        *,
        stored: bool = True,
    ) -> None:
        account = self.state.accounts[order.account]
        requested = qty
        closing_only = order.reduce_only or (
            order.slot != BOTH and (order.slot == "long") != (order.side > 0)
        )
        if closing_only:  # never opens: clipped to what the slot holds, the remainder cancelled
            qty = min(qty, self._reducible(account, order.symbol, order.slot, order.side))
        if qty <= 0:
            if stored:
                del account.orders[order.order_id]
            events.append(
                {
                    "type": "OrderCancelled",
                    "account": order.account,
                    "order_id": order.order_id,
                    "reason": "nothing left to reduce",
                }
            )
            return
        fill = book_fill(
            self.state, account, order.symbol, order.slot, order.side, qty, price, rate
        )
        events.append(
            {
                "type": "OrderFilled",
                "account": order.account,
                "order_id": order.order_id,
                "symbol": order.symbol,
                "slot": order.slot,
                "quantity": qty,
                "price": price,
                "liquidity": liquidity,
                "fee": fill.fee,
                "realized_pnl": fill.realized,
                "flip": fill.before is not None
                and fill.closed == fill.before.qty
                and fill.opened > 0,
            }
        )
        paid, unpaid = fill.covered
        scope = {"account": order.account, "scope": f"isolated:{order.symbol}:{order.slot}"}
        if paid > 0:
            events.append({"type": "InsuranceFundPaid", **scope, "amount": paid})
        if unpaid > 0:
            events.append({"type": "BadDebtRecorded", **scope, "amount": unpaid})
        if not stored:
            return
        left = order.qty - requested
        if left > 0 and qty == requested:
            order.reserved = up(order.reserved * left / order.qty)
            order.qty = left
        else:
            del account.orders[order.order_id]

    def _cancel_order(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        account = self._account(c)
        if c["order_id"] not in account.orders:
            raise Rejected("UNKNOWN_ORDER")
        del account.orders[c["order_id"]]
        named.add(account.account_id)

    def _report_fill(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        if not self.state.external_matching:
            raise Rejected("EXTERNAL_MATCHING_ONLY")
        account = self._account(c)
        if c["order_id"] not in account.orders:
            raise Rejected("UNKNOWN_ORDER")
        order = account.orders[c["order_id"]]
        qty = number(c, "quantity")
        price = number(c, "price")
        if qty > order.qty:
            raise Rejected("FILL_EXCEEDS_ORDER")
        if order.price is not None and order.side * (price - order.price) > 0:
            raise Rejected("FILL_PRICE_BEYOND_LIMIT")
        maker = c.get("liquidity", "taker") == "maker"
        self._fill_order(
            events, order, qty, price, MAKER if maker else TAKER, "maker" if maker else "taker"
        )
        named.add(order.account)

    # -- market data ---------------------------------------------------------------------

    def _update_mark(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        symbol = self._symbol(c)
        mark = number(c, "price")
        self.state.marks[symbol] = mark
        self._fill_resting_at(symbol, mark, events, named)
        named |= self._holders(symbol)

    def _fill_resting_at(
        self, symbol: str, mark: Decimal, events: list[Event], named: set[str]
    ) -> None:
        """Simulated matching: the resting limits ``mark`` reached fill whole at their limit, as
        makers, in (order id, account) order."""
        if self.state.external_matching:
            return
        resting = sorted(
            (o.order_id, o.account)
            for a in self.state.accounts.values()
            for o in a.orders.values()
            if o.symbol == symbol and o.price is not None
        )
        for order_id, account_id in resting:
            order = self.state.accounts[account_id].orders.get(order_id)
            if order is None or order.price is None or order.side * (order.price - mark) < 0:
                continue
            self._fill_order(events, order, order.qty, order.price, MAKER, "maker")
            named.add(account_id)

    def _update_marks(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        """One instant: every mark first, then each symbol's resting limits, then one examination
        of the holders of all of them (the examination runs after the command)."""
        marks = [
            (self._symbol({"symbol": s}), Decimal(str(c["prices"][s]))) for s in sorted(c["prices"])
        ]
        for symbol, mark in marks:
            self.state.marks[symbol] = mark
        for symbol, mark in marks:
            self._fill_resting_at(symbol, mark, events, named)
            named |= self._holders(symbol)

    def _holders(self, symbol: str) -> set[str]:
        return {
            a
            for a, acct in self.state.accounts.items()
            if any(k[0] == symbol for k in acct.positions)
        }

    def _settle_funding(self, c: dict[str, Any], events: list[Event], named: set[str]) -> None:
        symbol = self._symbol(c)
        rate = number(c, "rate")
        mark = self.state.marks.get(symbol)
        if mark is None:
            raise Rejected("NO_MARK_PRICE")
        for account_id in sorted(self._holders(symbol)):
            account = self.state.accounts[account_id]
            for key, position in sorted(account.positions.items()):
                if key[0] != symbol:
                    continue
                owed = position.side * position.qty * mark * rate
                paid = up(owed) if owed > 0 else -down(-owed)
                if paid == 0:
                    continue
                if position.isolated:
                    account.move_margin(key, -paid)
                else:
                    account.wallet -= paid
                self.state.flow("funding", paid)
                named.add(account_id)
        named |= self._holders(symbol)
        events.append({"type": "FundingSettled", "symbol": symbol, "rate": rate})
