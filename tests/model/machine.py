"""The Hypothesis state machine: random command streams through the engine and the model at once.

Six accounts cover the position and margin modes (one-way and hedge, cross and isolated) on
three symbols at realistic prices, with an empty or a funded insurance fund. Every command type
is drawn: deposits, withdrawals, isolated margin moves, leverage and mode switches, fund seeding,
market, limit, reduce-only, hedge and flipping orders, cancels, small mark moves, violent gaps
(-40%..+60%), marks aimed at a scope's margin-call, partial-liquidation or bankruptcy zone, and
funding. Orders are sized from the model's free margin, so they are mostly accepted and leave
the accounts thin; leverage is high; accounts take opposite sides. That is what makes
bankruptcies, fund takeovers, ADL and bad debt common. After every command the harness checks
everything it lists (tests/model/harness.py); at teardown the log replays to the live state
hash and the audit check passes.
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from crossmargin.app.audit import check, replay
from tests.model.harness import SYMBOLS, UNMARKED, Harness
from tests.model.order_rules import OrderRules
from tests.model.ref_figures import BOTH, CROSS, Order, Pos, State, free_margin, scope_name
from tests.model.streams import (
    ACCOUNTS,
    ALPHAS,
    COVERAGE,
    HEDGE,
    ISOLATED,
    LEVERAGES,
    START,
    STEP,
    TOTALS,
    WALLETS,
    WHALE,
    accounts,
    aimed_price,
    price,
    quantity,
    symbols,
    text,
)


class EngineVersusModel(OrderRules, RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.harness = Harness()
        self.sequence = 0
        self.orders = 0
        self.keys: set[tuple[str, str]] = set()  # (principal, command id) already sent
        # logged commands: (command, principal, the engine's first answer)
        self.logged: list[tuple[dict[str, Any], str, dict[str, Any]]] = []

    # -- plumbing ------------------------------------------------------------------------

    @property
    def model(self) -> State:
        return self.harness.model.state

    def order_id(self) -> str:
        self.orders += 1
        return f"o{self.orders}"

    def command(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.sequence += 1
        return {"type": kind, "command_id": f"c{self.sequence}", **fields}

    def run(self, kind: str, **fields: Any) -> bool:
        return self.submit([self.command(kind, **fields)], ["operator"])[0]

    def submit(self, commands: list[dict[str, Any]], principals: list[str]) -> list[bool]:
        self.keys |= {(p, c["command_id"]) for p, c in zip(principals, commands, strict=True)}
        outcomes = self.harness.run_batch(commands, principals)
        for index, outcome in enumerate(outcomes):
            if outcome.reason != "INVALID_COMMAND" and self.harness.with_engine:
                result = self.harness.results[index]
                self.logged.append((commands[index], principals[index], result))
        return [outcome.accepted for outcome in outcomes]

    def teardown(self) -> None:
        TOTALS.update(self.harness.counters)
        COVERAGE.update(self.harness.coverage)
        if self.harness.commands == 0:
            return
        report = replay(self.harness.store)
        assert report.state_hash == self.harness.engine.state_hash(), "replay differs from live"
        audit = check(self.harness.store)
        assert audit.ok, audit.violations

    # -- setup ---------------------------------------------------------------------------

    @initialize(
        fund=st.sampled_from(["0", "0", "0", "0", "40", "500", "5000", "200000"]),
        wallets=st.tuples(*(st.sampled_from(WALLETS[a]) for a in ACCOUNTS)),
        leverages=st.lists(st.sampled_from(LEVERAGES[3:]), min_size=18, max_size=18),
        drift=st.tuples(*(st.integers(-50, 50) for _ in SYMBOLS)),
    )
    def setup(
        self, fund: str, wallets: tuple[str, ...], leverages: list[str], drift: tuple[int, ...]
    ) -> None:
        if fund != "0":
            self.run("seed_insurance_fund", amount=fund)
        for index, account in enumerate(ACCOUNTS):
            self.run("open_account", account=account)
            self.run("deposit", account=account, amount=wallets[index])
            if account in HEDGE:
                self.run("set_position_mode", account=account, position_mode="hedge")
            for symbol in ISOLATED.get(account, ()):
                self.run("set_margin_mode", account=account, symbol=symbol, margin_mode="isolated")
            for number, symbol in enumerate(SYMBOLS):
                # the whale stays at 20x, which the large brackets (MMR above the clearance fee,
                # where a partial liquidation can restore the margin) admit
                leverage = "20" if account == WHALE else leverages[index * 3 + number]
                self.run("set_leverage", account=account, symbol=symbol, leverage=leverage)
        for symbol, move in zip(SYMBOLS, drift, strict=True):
            self.run(
                "update_mark",
                symbol=symbol,
                price=text(price(symbol, START[symbol] * (1 + Decimal(move) / 1000))),
            )

    # -- market data ---------------------------------------------------------------------

    @rule(symbol=symbols, move=st.integers(-300, 300))
    def small_move(self, symbol: str, move: int) -> None:
        mark = self.model.marks[symbol]
        self.run(
            "update_mark",
            symbol=symbol,
            price=text(price(symbol, mark * (1 + Decimal(move) / 10000))),
        )

    @rule(symbol=symbols, move=st.sampled_from([-40, -30, -20, -12, -8, -5, 5, 8, 12, 20, 35, 60]))
    def gap(self, symbol: str, move: int) -> None:
        mark = self.model.marks[symbol]
        self.run(
            "update_mark",
            symbol=symbol,
            price=text(price(symbol, mark * (1 + Decimal(move) / 100))),
        )

    @rule(
        moves=st.tuples(*(st.integers(-2500, 2500) for _ in SYMBOLS)),
        count=st.integers(2, len(SYMBOLS)),
    )
    def joint_move(self, moves: tuple[int, ...], count: int) -> None:
        """One instant's marks for several symbols (a feed's tick), in one update_marks: the
        holders are examined once, at the new prices of every leg."""
        self.run(
            "update_marks",
            prices={
                symbol: text(price(symbol, self.model.marks[symbol] * (1 + Decimal(move) / 10000)))
                for symbol, move in list(zip(SYMBOLS, moves, strict=True))[:count]
            },
        )

    @rule(pick=st.integers(0, 20), alpha=st.sampled_from(ALPHAS))
    def aimed_move(self, pick: int, alpha: str) -> None:
        """A mark that puts one scope into its margin-call, liquidation or bankruptcy zone."""
        held = self._held()
        if held:
            self._aim(*held[pick % len(held)], Decimal(alpha))

    @rule(pick=st.integers(0, 20), alpha=st.sampled_from(ALPHAS[:5]))
    def aimed_whale_move(self, pick: int, alpha: str) -> None:
        """The whale's scope into its margin-call or partial-liquidation window."""
        held = self._held(WHALE)
        if held:
            self._aim(*held[pick % len(held)], Decimal(alpha))

    def _aim(self, account: str, key: tuple[str, str], position: Pos, alpha: Decimal) -> None:
        scope = scope_name(key) if position.isolated else CROSS
        target = aimed_price(self.model, account, scope, key[0], alpha)
        if target is not None:
            self.run("update_mark", symbol=key[0], price=text(price(key[0], target)))

    @rule(symbol=symbols, rate=st.integers(-500, 500), big=st.booleans())
    def funding(self, symbol: str, rate: int, big: bool) -> None:
        value = Decimal(rate) / (Decimal(1000) if big else Decimal(1000000))
        self.run("settle_funding", symbol=symbol, rate=text(value) if value else "0")

    # -- money and settings --------------------------------------------------------------

    @rule(account=accounts, amount=st.sampled_from(["1", "25", "100", "1000", "50000"]))
    def deposit(self, account: str, amount: str) -> None:
        self.run("deposit", account=account, amount=amount)

    @rule(account=accounts, share=st.integers(1, 120))
    def withdraw(self, account: str, share: int) -> None:
        free = free_margin(self.model, self.model.accounts[account])
        amount = (max(free, Decimal(1)) * share / 100).quantize(
            Decimal("0.01"), rounding=ROUND_DOWN
        )
        self.run("withdraw", account=account, amount=text(max(amount, Decimal("0.01"))))

    @rule(
        account=accounts,
        pick=st.integers(0, 20),
        share=st.integers(1, 120),
        add=st.booleans(),
        any_slot=st.booleans(),
    )
    def isolated_margin(
        self, account: str, pick: int, share: int, add: bool, any_slot: bool
    ) -> None:
        """Move margin into or out of an isolated position (or, sometimes, a slot that is not
        one: NO_POSITION, NOT_ISOLATED)."""
        isolated = [row for row in self._held() if row[2].isolated]
        if isolated and not any_slot:
            account, (symbol, slot), _ = isolated[pick % len(isolated)]
        else:
            held = [(key, p) for _, key, p in self._held(account)]
            (symbol, slot), _ = (held or [((SYMBOLS[pick % 3], BOTH), None)])[
                pick % max(1, len(held))
            ]
        acct = self.model.accounts[account]
        base = free_margin(self.model, acct) if add else acct.margin((symbol, slot))
        amount = (max(base, Decimal(1)) * share / 100).quantize(
            Decimal("0.01"), rounding=ROUND_DOWN
        )
        fields: dict[str, Any] = {
            "account": account,
            "symbol": symbol,
            "amount": text(max(amount, Decimal("0.01"))),
        }
        if acct.hedge:
            fields["position_side"] = slot if slot != BOTH else "long"
        self.run("add_isolated_margin" if add else "remove_isolated_margin", **fields)

    @rule(kind=st.sampled_from(range(7)), account=accounts, buy=st.booleans())
    def odd_command(self, kind: int, account: str, buy: bool) -> None:
        """Well-formed commands the engine must refuse by business rule."""
        side = "buy" if buy else "sell"
        order = {"order_id": self.order_id(), "side": side, "order_type": "market", "quantity": "1"}
        if kind == 0:  # a symbol the engine trades but has no mark for yet
            self.run("place_order", account=account, symbol=UNMARKED, **order)
        elif kind == 1:
            self.run("settle_funding", symbol=UNMARKED, rate="0.0001")
        elif kind == 2:  # a symbol the engine does not trade
            self.run("update_mark", symbol="BNBUSDT", price="600")
        elif kind == 3:
            self.run("deposit", account="zed", amount="10")
        elif kind == 4:  # reduce-only with nothing (or the wrong side) to reduce
            extra = {"position_side": "long" if buy else "short"} if account in HEDGE else {}
            self.run(
                "place_order", account=account, symbol="ETHUSDT", reduce_only=True, **order, **extra
            )
        elif kind == 5:  # position_side in one-way mode, or missing in hedge mode
            extra = {} if self.model.accounts[account].hedge else {"position_side": "long"}
            self.run("place_order", account=account, symbol="ETHUSDT", **order, **extra)
        else:  # a hedge-mode close larger than the slot
            extra = {"position_side": "short" if buy else "long"} if account in HEDGE else {}
            self.run(
                "place_order",
                account=account,
                symbol="BTCUSDT",
                **{**order, "quantity": "1000"},
                **extra,
            )

    @rule(account=accounts, symbol=symbols, leverage=st.sampled_from(LEVERAGES))
    def set_leverage(self, account: str, symbol: str, leverage: str) -> None:
        self.run("set_leverage", account=account, symbol=symbol, leverage=leverage)

    @rule(account=accounts, symbol=symbols, isolated=st.booleans())
    def set_margin_mode(self, account: str, symbol: str, isolated: bool) -> None:
        self.run(
            "set_margin_mode",
            account=account,
            symbol=symbol,
            margin_mode="isolated" if isolated else "cross",
        )

    @rule(account=accounts, hedge=st.booleans())
    def set_position_mode(self, account: str, hedge: bool) -> None:
        self.run(
            "set_position_mode", account=account, position_mode="hedge" if hedge else "one-way"
        )

    @rule(amount=st.sampled_from(["0.5", "20", "300", "5000"]))
    def seed_fund(self, amount: str) -> None:
        self.run("seed_insurance_fund", amount=amount)

    # -- retries and malformed commands --------------------------------------------------

    @precondition(lambda self: bool(self.logged))
    @rule(pick=st.integers(0, 10000))
    def retry(self, pick: int) -> None:
        """A client retry: the first answer again, marked duplicate, and nothing applied."""
        command, principal, first = self.logged[pick % len(self.logged)]
        before = self.harness.engine.state_hash()
        result = self.harness.engine.execute(command, principal)
        assert result == {**first, "duplicate": True}, (command, principal, first, result)
        assert self.harness.engine.state_hash() == before

    @precondition(lambda self: bool(self.logged))
    @rule(pick=st.integers(0, 10000), account=accounts, feed=st.booleans())
    def same_id_other_principal(self, pick: int, account: str, feed: bool) -> None:
        """Command ids are per principal: another principal's identical id is a new command."""
        command, _, _ = self.logged[pick % len(self.logged)]
        other = "feed" if feed else f"account:{account}"
        if (other, command["command_id"]) not in self.keys:
            self.submit([dict(command)], [other])

    @rule(
        kinds=st.lists(
            st.sampled_from(["deposit", "order", "mark", "withdraw"]), min_size=2, max_size=5
        ),
        account=accounts,
        symbol=symbols,
        move=st.integers(-1500, 1500),
    )
    def batch(self, kinds: list[str], account: str, symbol: str, move: int) -> None:
        """A group commit: several commands decided in order and appended at once."""
        mark = self.model.marks[symbol]
        commands = []
        for kind in kinds:
            if kind == "deposit":
                commands.append(self.command("deposit", account=account, amount="50"))
            elif kind == "withdraw":
                commands.append(self.command("withdraw", account=account, amount="30"))
            elif kind == "mark":
                at = price(symbol, mark * (1 + Decimal(move) / 10000))
                commands.append(self.command("update_mark", symbol=symbol, price=text(at)))
            else:
                order = {
                    "account": account,
                    "order_id": self.order_id(),
                    "symbol": symbol,
                    "side": "buy" if move > 0 else "sell",
                    "order_type": "market",
                    "quantity": text(
                        max(STEP[symbol], self._affordable(account, symbol, Decimal("0.3")))
                    ),
                }
                if self.model.accounts[account].hedge:
                    order["position_side"] = "long" if move > 0 else "short"
                commands.append(self.command("place_order", **order))
        self.submit(commands, ["operator"] * len(commands))

    @rule(kind=st.sampled_from(range(11)), account=accounts)
    def malformed(self, kind: int, account: str) -> None:
        cases: list[tuple[str, dict[str, Any]]] = [
            ("deposit", {"account": account, "amount": "0.000000001"}),
            ("deposit", {"account": account, "amount": "1000000000001"}),
            ("withdraw", {"account": account, "amount": "-5"}),
            ("set_leverage", {"account": account, "symbol": "BTCUSDT", "leverage": "1.005"}),
            ("set_leverage", {"account": account, "symbol": "BTCUSDT", "leverage": "1001"}),
            ("settle_funding", {"symbol": "BTCUSDT", "rate": "0.0000000000001"}),
            ("open_account", {"account": "-no"}),
            (
                "place_order",
                {
                    "account": account,
                    "order_id": "x" * 65,
                    "symbol": "BTCUSDT",
                    "side": "buy",
                    "order_type": "market",
                    "quantity": "1",
                },
            ),
            ("update_marks", {"prices": {}}),
            ("update_marks", {"prices": {"BTCUSDT": "40000", "ETHUSDT": "0.000000001"}}),
            # well-formed, but one symbol is not traded: refused whole, no mark moves
            ("update_marks", {"prices": {"BTCUSDT": "1", "NOPEUSDT": "1"}}),
        ]
        name, fields = cases[kind]
        self.run(name, **fields)

    @invariant()
    def agree(self) -> None:
        """The harness already checked after each command; keep Hypothesis honest about it."""
        assert not self.harness.failures


class ExternalEngineVersusModel(EngineVersusModel):
    """The same machine on an engine with external matching: orders rest until report_fill.
    A market order is reported filled at the mark right after it is placed (most of the time),
    so that positions exist to liquidate; limits wait for the report_fill rule."""

    def __init__(self) -> None:
        super().__init__()
        self.harness = Harness(matching="external")

    def _order(self, account: str, symbol: str, side: int, qty: Decimal, **extra: Any) -> None:
        market = extra.get("order_type", "market") == "market"
        super()._order(account, symbol, side, qty, **extra)
        order = self.model.accounts[account].orders.get(f"o{self.orders}")
        if market and order is not None and self.orders % 4 != 0:
            self._report(order, order.qty, self.model.marks[symbol], maker=False)

    @rule(
        symbol=symbols,
        buy=st.booleans(),
        size=st.integers(0, 100),
        alpha=st.sampled_from(ALPHAS[:5]),
    )
    def whale_squeeze(self, symbol: str, buy: bool, size: int, alpha: str) -> None:
        """The whale opens (filled at once) and the mark goes straight into its margin-call or
        partial-liquidation window: with fills that wait for a report, the separate whale rules
        line up too rarely for partial liquidations to happen in a short run."""
        self.whale_order(symbol, buy, size)
        order = self.model.accounts[WHALE].orders.get(f"o{self.orders}")
        if order is not None:  # the one market order in four left resting
            self._report(order, order.qty, self.model.marks[symbol], maker=False)
        held = [entry for entry in self._held(WHALE) if entry[1][0] == symbol]
        if held:
            self._aim(*held[0], Decimal(alpha))

    def _report(self, order: Order, qty: Decimal, at: Decimal, *, maker: bool) -> None:
        self.run(
            "report_fill",
            account=order.account,
            order_id=order.order_id,
            quantity=text(qty),
            price=text(at),
            liquidity="maker" if maker else "taker",
        )

    @rule(
        pick=st.integers(0, 30),
        share=st.integers(1, 110),
        offset=st.integers(-30, 10),
        maker=st.booleans(),
    )
    def report_fill(self, pick: int, share: int, offset: int, maker: bool) -> None:
        """A fill from the outside venue: partial or whole, at or better than the limit (and
        sometimes worse, or larger than the order, which must be refused)."""
        orders = [
            o
            for a in sorted(self.model.accounts)
            for _, o in sorted(self.model.accounts[a].orders.items())
        ]
        if not orders:
            return
        order = orders[pick % len(orders)]
        qty = max(STEP[order.symbol], quantity(order.symbol, order.qty * share / 100))
        base = order.price if order.price is not None else self.model.marks[order.symbol]
        self._report(
            order,
            qty,
            price(order.symbol, base * (1 - Decimal(order.side * offset) / 1000)),
            maker=maker,
        )
