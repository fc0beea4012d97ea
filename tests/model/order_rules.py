"""The order rules of the state machine (a mixin of tests/model/machine.py's machines).

Orders are sized from the model's free margin (a drawn share of what the account can afford),
so most are accepted and leave the account thin; a whale trades in the brackets where partial
liquidation applies; a duel opens a position, puts another account on the other side and gaps
the mark through the first one's margin (bankruptcy with an ADL counterparty); closes, flips,
reduce-only and hedge-mode orders, cancels, and order ids reused across accounts.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import rule

from tests.model.harness import Harness
from tests.model.ref_figures import BOTH, TAKER, Pos, State, free_margin
from tests.model.streams import (
    ACCOUNTS,
    STEP,
    WHALE,
    WHALE_NOTIONAL,
    accounts,
    percent,
    price,
    quantity,
    symbols,
    text,
)


class OrderRules:
    harness: Harness
    model: State

    def order_id(self) -> str:
        raise NotImplementedError

    def run(self, kind: str, **fields: Any) -> bool:
        raise NotImplementedError

    def _order(self, account: str, symbol: str, side: int, qty: Decimal, **extra: Any) -> None:
        fields: dict[str, Any] = {
            "account": account,
            "order_id": self.order_id(),
            "symbol": symbol,
            "side": "buy" if side > 0 else "sell",
            "order_type": "market",
            "quantity": text(max(qty, STEP[symbol])),
        }
        slot = extra.pop("slot", None)
        fields.update(extra)
        if self.model.accounts[account].hedge:
            fields["position_side"] = slot or ("long" if side > 0 else "short")
        self.run("place_order", **fields)

    def _affordable(self, account: str, symbol: str, share: Decimal) -> Decimal:
        acct = self.model.accounts[account]
        mark = self.model.marks[symbol]
        leverage = acct.leverage_for(symbol)
        free = max(free_margin(self.model, acct), Decimal(5))
        return quantity(symbol, free * share * leverage / mark / (1 + leverage * TAKER))

    @rule(account=accounts, symbol=symbols, buy=st.booleans(), share=percent)
    def market_order(self, account: str, symbol: str, buy: bool, share: Decimal) -> None:
        side = 1 if buy else -1
        self._order(account, symbol, side, self._affordable(account, symbol, share))

    @rule(
        account=accounts,
        symbol=symbols,
        buy=st.booleans(),
        share=percent,
        offset=st.integers(-80, 80),
    )
    def limit_order(
        self, account: str, symbol: str, buy: bool, share: Decimal, offset: int
    ) -> None:
        side = 1 if buy else -1
        limit = price(symbol, self.model.marks[symbol] * (1 + Decimal(offset) / 1000))
        qty = self._affordable(account, symbol, share)
        self._order(account, symbol, side, qty, order_type="limit", price=text(limit))

    @rule(symbol=symbols, buy=st.booleans(), size=st.integers(0, 100))
    def whale_order(self, symbol: str, buy: bool, size: int) -> None:
        """A position in a bracket whose MMR exceeds the clearance fee (partial liquidation)."""
        low, high = WHALE_NOTIONAL[symbol]
        notional = low + (high - low) * size / 100
        qty = min(
            quantity(symbol, notional / self.model.marks[symbol]),
            self._affordable(WHALE, symbol, Decimal(1)),
        )
        self._order(WHALE, symbol, 1 if buy else -1, qty)

    @rule(
        pair=st.permutations(ACCOUNTS).map(lambda p: p[:2]),
        symbol=symbols,
        buy=st.booleans(),
        depth=st.sampled_from([2, 3, 5, 10]),
    )
    def duel(self, pair: tuple[str, ...], symbol: str, buy: bool, depth: int) -> None:
        """One account opens, another takes the other side, then the mark gaps ``depth`` times
        the first one's margin fraction against it: a bankruptcy with an ADL counterparty."""
        first, second = pair
        side = 1 if buy else -1
        qty = self._affordable(first, symbol, Decimal("0.9"))
        self._order(first, symbol, side, qty)
        self._order(second, symbol, -side, min(qty, self._affordable(second, symbol, Decimal(1))))
        leverage = self.model.accounts[first].leverage_for(symbol)
        move = min(Decimal("0.6"), depth / leverage)
        mark = self.model.marks[symbol]
        self.run("update_mark", symbol=symbol, price=text(price(symbol, mark * (1 - side * move))))

    def _held(self, account: str | None = None) -> list[tuple[str, tuple[str, str], Pos]]:
        """Held positions (of one account, or of all), in a stable order."""
        names = [account] if account is not None else sorted(self.model.accounts)
        return [
            (name, key, position)
            for name in names
            for key, position in sorted(self.model.accounts[name].positions.items())
        ]

    @rule(account=accounts, pick=st.integers(0, 20), share=percent)
    def take_other_side(self, account: str, pick: int, share: Decimal) -> None:
        """Open against another account's position: the counterparties ADL needs."""
        held = [row for row in self._held() if row[0] != account]
        if not held:
            return
        _, (symbol, _), position = held[pick % len(held)]
        qty = min(
            quantity(symbol, position.qty * 2 * share),
            self._affordable(account, symbol, Decimal(1)),
        )
        self._order(account, symbol, -position.side, qty)

    @rule(
        pick=st.integers(0, 20),
        share=st.integers(1, 130),
        limit=st.booleans(),
        reduce_only=st.booleans(),
    )
    def close_order(self, pick: int, share: int, limit: bool, reduce_only: bool) -> None:
        """Reduce or close a held position (market or resting limit, reduce-only or not)."""
        held = self._held()
        if not held:
            return
        account, (symbol, slot), position = held[pick % len(held)]
        side = -position.side
        qty = quantity(symbol, position.qty * share / 100)
        extra: dict[str, Any] = {"slot": slot} if slot != BOTH else {}
        if slot != BOTH:
            qty = min(qty, position.qty)
        if reduce_only:
            extra["reduce_only"] = True
        if limit:
            mark = self.model.marks[symbol]
            away = price(symbol, mark * (1 - Decimal(side) * 2 / 100))
            extra.update(order_type="limit", price=text(away))
        self._order(account, symbol, side, qty, **extra)

    @rule(pick=st.integers(0, 20), share=st.integers(101, 250))
    def flip(self, pick: int, share: int) -> None:
        """A one-way order larger than the position: closes it and opens the other side."""
        held = [row for row in self._held() if row[1][1] == BOTH]
        if held:
            account, (symbol, _), position = held[pick % len(held)]
            qty = quantity(symbol, position.qty * share / 100)
            self._order(account, symbol, -position.side, qty)

    @rule(account=accounts, pick=st.integers(0, 30), share=percent, offset=st.integers(-50, 50))
    def reuse_order_id(self, account: str, pick: int, share: Decimal, offset: int) -> None:
        """An order id another account (or this one) has open: ids are unique per account."""
        open_orders = [
            o for a in sorted(self.model.accounts) for o in self.model.accounts[a].orders.values()
        ]
        if not open_orders:
            return
        taken = open_orders[pick % len(open_orders)]
        mark = self.model.marks[taken.symbol]
        limit = price(taken.symbol, mark * (1 + Decimal(offset) / 1000))
        side = 1 if offset < 0 else -1
        fields: dict[str, Any] = {
            "account": account,
            "order_id": taken.order_id,
            "symbol": taken.symbol,
            "side": "buy" if side > 0 else "sell",
            "order_type": "limit",
            "price": text(limit),
            "quantity": text(
                max(STEP[taken.symbol], self._affordable(account, taken.symbol, share))
            ),
        }
        if self.model.accounts[account].hedge:
            fields["position_side"] = "long" if side > 0 else "short"
        self.run("place_order", **fields)

    @rule(account=accounts, pick=st.integers(0, 30), mine=st.booleans())
    def cancel_order(self, account: str, pick: int, mine: bool) -> None:
        """Cancel an open order (or, with ``mine``, pick among this account's ids only: often
        none, UNKNOWN_ORDER, or another account's id)."""
        open_orders = [
            (a, i)
            for a in sorted(self.model.accounts)
            for i in sorted(self.model.accounts[a].orders)
        ]
        if open_orders and not mine:
            account, order_id = open_orders[pick % len(open_orders)]
        else:
            order_id = open_orders[pick % len(open_orders)][1] if open_orders else f"o{pick}"
        self.run("cancel_order", account=account, order_id=order_id)
