"""The engine and the reference model side by side: one command to both, then every check.

``Harness.run(command)`` executes the command on the real engine (``crossmargin.app.writer.Engine``
over the in-memory event store) and on :class:`tests.model.reference.ReferenceModel`, then checks
(each failure is a line naming the command, the account and the field):

* the engine and the model accept or reject alike, with the same reason code;
* the whole money state agrees exactly: every account's wallet, isolated margins, positions
  (side, quantity, entry notional, leverage, margin mode), open orders and their reservations,
  leverage and modes, open margin calls; the insurance fund, fee income, bad debt and external
  flows;
* the engine's LiquidationTriggered scopes are the model's, in order;
* conservation: every ledger sums to exactly zero, in the engine and in the model;
* on both: no scope is left liquidatable, no scope without a position holds negative
  collateral, the fund is not negative; a bankrupt scope is settled to exactly zero (in the
  engine: its collateral ledger, folded through the postings, is 0 when the examination moves
  on; in the model: asserted where it settles);
* every engine ADL fill is at the bankrupt position's bankruptcy price (the price its
  ScopeBankrupt event names), between the mark and that position's entry price, on the bankrupt
  position's own symbol, and the counterparty's fill mirrors it.

The engine's state is read through ``crossmargin.app.snapshot.state_to_data`` (the snapshot
format) into the model's own state classes, so the invariants are judged by the model's figures.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from crossmargin.app.snapshot import money_total, state_to_data
from crossmargin.app.writer import Engine
from crossmargin.sim.memory_store import MemoryEventStore
from tests.model.ref_figures import (
    ZERO,
    Acct,
    Order,
    Pos,
    State,
    collateral,
    figures,
    load_brackets,
    scope_key,
    scopes,
)
from tests.model.reference import Outcome, ReferenceModel

SYMBOLS = ("BTCUSDT", "ETHUSDT", "DOGEUSDT")
UNMARKED = "LINKUSDT"  # traded, but never given a mark: NO_MARK_PRICE
RARE = (
    "bankruptcies",
    "isolated bankruptcies",
    "fund takeovers",
    "ADL fills",
    "bad debt",
    "flips",
    "partial liquidations",
    "margin calls",
    "liquidations on a joint tick",
)


class Mismatch(AssertionError):
    pass


def engine_state(engine: Engine, brackets: dict[str, Any]) -> State:
    """The engine's live state, read from its snapshot form into the model's classes."""
    data = state_to_data(engine.state)
    state = State(brackets=brackets, external_matching=engine.matching == "external")
    state.marks = {k: Decimal(v) for k, v in data["marks"].items()}
    state.fund = Decimal(data["insurance_fund"])
    state.fee_income = Decimal(data["fee_income"])
    state.bad_debt = Decimal(data.get("bad_debt", ZERO))
    external = {k: Decimal(v) for k, v in data["external"].items()}
    state.bad_debt += external.pop("bad_debt", ZERO)
    state.external = external
    for account_id, raw in data["accounts"].items():
        account = Acct(account_id=account_id, wallet=Decimal(raw["wallet"]))
        account.hedge = raw["position_mode"] == "hedge"
        account.leverage = {k: Decimal(v) for k, v in raw["leverage"].items()}
        account.isolated_mode = {k: v == "isolated" for k, v in raw["margin_mode"].items()}
        for slot_text, p in raw["positions"].items():
            symbol, _, slot = slot_text.rpartition(":")
            account.positions[(symbol, slot)] = Pos(
                side=1 if p["side"] == "long" else -1,
                qty=Decimal(p["quantity"]),
                entry=Decimal(p["entry_notional"]),
                leverage=Decimal(p["leverage"]),
                isolated=p["margin_mode"] == "isolated",
            )
        for slot_text, margin in raw["isolated"].items():
            symbol, _, slot = slot_text.rpartition(":")
            account.move_margin((symbol, slot), Decimal(margin))
        for order_id, o in raw["orders"].items():
            account.orders[order_id] = Order(
                order_id=order_id,
                account=account_id,
                symbol=o["symbol"],
                side=1 if o["side"] == "long" else -1,
                slot=o["position_side"],
                market=o["order_type"] == "market",
                qty=Decimal(o["quantity"]),
                price=None if o["price"] is None else Decimal(o["price"]),
                reduce_only=bool(o["reduce_only"]),
                reserved=Decimal(o["reserved"]),
            )
        account.calls = set(raw["margin_calls"])
        state.accounts[account_id] = account
    return state


def normal_form(state: State) -> dict[str, Any]:
    """Everything the two implementations must agree on, as comparable plain values."""
    accounts = {}
    for account_id, a in sorted(state.accounts.items()):
        accounts[account_id] = {
            "wallet": a.wallet,
            "hedge": a.hedge,
            "leverage": {s: a.leverage_for(s) for s in sorted(state.brackets)},
            "isolated_mode": {s: a.isolated_mode.get(s, False) for s in sorted(state.brackets)},
            "positions": {
                f"{k[0]}:{k[1]}": (p.side, p.qty, p.entry, p.leverage, p.isolated)
                for k, p in sorted(a.positions.items())
            },
            "margins": {f"{k[0]}:{k[1]}": v for k, v in sorted(a.margins.items()) if v != 0},
            "orders": {
                i: (o.symbol, o.side, o.slot, o.qty, o.price, o.reduce_only, o.reserved)
                for i, o in sorted(a.orders.items())
            },
            "margin_calls": sorted(a.calls),
        }
    return {
        "accounts": accounts,
        "insurance_fund": state.fund,
        "fee_income": state.fee_income,
        "bad_debt": state.bad_debt,
        "external": {k: v for k, v in sorted(state.external.items()) if v != 0},
    }


def differences(engine: Any, model: Any, path: str = "") -> list[str]:
    if isinstance(engine, dict) and isinstance(model, dict):
        lines = []
        for key in sorted(set(engine) | set(model), key=str):
            if key not in engine:
                lines.append(f"{path}{key}: engine has none, model {model[key]}")
            elif key not in model:
                lines.append(f"{path}{key}: engine {engine[key]}, model has none")
            else:
                lines += differences(engine[key], model[key], f"{path}{key}.")
        return lines
    if engine != model:
        return [f"{path.rstrip('.')}: engine {engine}, model {model}"]
    return []


def invariant_breaches(state: State, label: str) -> list[str]:
    lines = []
    if state.money_total() != 0:
        lines.append(f"{label}: money sums to {state.money_total()}")
    if state.fund < 0:
        lines.append(f"{label}: insurance fund {state.fund} < 0")
    for account_id, account in sorted(state.accounts.items()):
        for scope in scopes(account):
            current = figures(state, account, scope)
            if current.liquidatable:
                lines.append(f"{label}: {account_id} {scope} left liquidatable {current}")
            if not current.has_position and collateral(account, scope) < 0:
                lines.append(f"{label}: {account_id} {scope} negative without a position")
    return lines


def bankrupt_breaches(entries: list[list[Any]], before: State) -> list[str]:
    """A scope that goes bankrupt is settled to exactly zero: its collateral ledger, folded
    through the engine's postings from the state before, is 0 when the examination moves on
    (the next LiquidationTriggered or margin call, or the end of the command)."""
    balances: dict[str, Decimal] = {}
    for account_id, account in before.accounts.items():
        balances[f"wallet:{account_id}"] = account.wallet
        for (symbol, slot), margin in account.margins.items():
            balances[f"isolated:{account_id}:{symbol}:{slot}"] = margin
    lines = []
    for events in entries:
        pending: str | None = None
        for event in events:
            moving_on = event["type"] in MOVING_ON
            if pending is not None and moving_on and balances.get(pending, ZERO) != 0:
                lines.append(f"engine: bankrupt {pending} settled at {balances[pending]}")
            if moving_on:
                pending = None
            for ledger, amount in event.get("postings") or []:
                balances[ledger] = balances.get(ledger, ZERO) + Decimal(amount)
            if event["type"] == "ScopeBankrupt":
                key = scope_key(event["scope"])
                account_id = event["account"]
                pending = (
                    f"wallet:{account_id}"
                    if key is None
                    else f"isolated:{account_id}:{key[0]}:{key[1]}"
                )
        if pending is not None and balances.get(pending, ZERO) != 0:
            lines.append(f"engine: bankrupt {pending} settled at {balances[pending]}")
    return lines


MOVING_ON = {"LiquidationTriggered", "MarginCallIssued", "MarginCallCleared"}


def liquidation_scopes(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["account"], e["scope"]) for e in events if e["type"] == "LiquidationTriggered"]


def adl_breaches(events: list[Any], before: State) -> list[str]:
    """Every engine ADL fill against the bankrupt position it closes (state folded event by event)."""
    positions = {
        (a, k): p for a, acct in before.accounts.items() for k, p in acct.positions.items()
    }
    marks = dict(before.marks)
    prices: dict[tuple[str, str], Decimal] = {}
    pending: dict[str, Any] | None = None
    lines = []
    for event in events:
        kind = event["type"]
        if kind == "MarkPriceUpdated":
            marks[event["symbol"]] = Decimal(event["price"])
        if kind == "ScopeBankrupt":
            for name, price in event.get("prices", {}).items():
                symbol, _, slot = name.rpartition(":")
                prices[(event["account"], f"{symbol}:{slot}")] = Decimal(price)
        if kind == "PositionAutoDeleveraged":
            pending = event
        if kind == "PositionLiquidated" and event.get("liquidity") == "adl":
            key = (event["account"], (event["symbol"], event["slot"]))
            held = positions.get(key)
            price = Decimal(event["price"])
            mark = marks[event["symbol"]]
            where = f"ADL of {event['account']} {event['symbol']}:{event['slot']} at {price}"
            if held is None:
                lines.append(f"{where}: no such position")
            else:
                entry = held.entry / held.qty
                low, high = (mark, entry) if held.side > 0 else (entry, mark)
                if not low <= price <= high:
                    lines.append(f"{where}: outside [{low}, {high}] (mark {mark}, entry {entry})")
            named = prices.get((event["account"], f"{event['symbol']}:{event['slot']}"))
            if named is not None and named != price:
                lines.append(f"{where}: ScopeBankrupt named {named}")
            if pending is None:
                lines.append(f"{where}: no counterparty fill before it")
            elif (pending["symbol"], Decimal(pending["price"]), Decimal(pending["quantity"])) != (
                event["symbol"],
                price,
                Decimal(event["quantity"]),
            ):
                lines.append(
                    f"{where}: counterparty fill {pending['symbol']} {pending['quantity']} at {pending['price']}"
                )
            pending = None
        change = event.get("position") if isinstance(event, dict) else None
        if isinstance(change, dict) and "after" in change:
            key = (change["account"], (change["symbol"], change["slot"]))
            after = change["after"]
            if after is None:
                positions.pop(key, None)
            else:
                positions[key] = Pos(
                    side=1 if after["side"] == "long" else -1,
                    qty=Decimal(after["quantity"]),
                    entry=Decimal(after["entry_notional"]),
                    leverage=Decimal(after["leverage"]),
                    isolated=after["margin_mode"] == "isolated",
                )
    return lines


def count_rare(counters: Counter[str], events: list[dict[str, Any]]) -> None:
    for e in events:
        kind = e["type"]
        if kind == "ScopeBankrupt":
            counters["bankruptcies"] += 1
            if e["scope"] != "cross":
                counters["isolated bankruptcies"] += 1
        elif kind == "PositionLiquidated":
            counters["liquidation fills"] += 1
            if e.get("taken_over_by"):
                counters["fund takeovers"] += 1
            if e.get("partial"):
                counters["partial liquidations"] += 1
        elif kind == "PositionAutoDeleveraged":
            counters["ADL fills"] += 1
        elif kind == "BadDebtRecorded":
            counters["bad debt"] += 1
        elif kind == "InsuranceFundPaid":
            counters["fund payments"] += 1
        elif kind == "OrderFilled" and e.get("flip"):
            counters["flips"] += 1
        elif kind == "MarginCallIssued":
            counters["margin calls"] += 1
        elif kind == "LiquidationTriggered":
            counters["liquidations"] += 1


class Harness:
    """One engine and one model fed the same commands; ``run`` checks them after each."""

    def __init__(
        self, *, matching: str = "simulated", strict: bool = True, with_engine: bool = True
    ) -> None:
        self.with_engine = with_engine
        self.resync = False
        self.known: set[str] = set()
        self.store = MemoryEventStore()
        symbols = (*SYMBOLS, UNMARKED)
        self.engine = Engine(self.store, symbols=symbols, matching=matching, snapshot_every=0)
        self.model = ReferenceModel(symbols, external_matching=matching == "external")
        self.brackets = load_brackets(symbols)
        self.strict = strict
        self.counters: Counter[str] = Counter()
        self.coverage: Counter[str] = Counter()  # command type and outcome
        self.failures: list[str] = []
        self.commands = 0
        self.engine_view = engine_state(self.engine, self.brackets)
        self.results: list[dict[str, Any]] = []  # the engine's answers to the last run
        self.history: list[tuple[list[dict[str, Any]], list[str]]] = []  # to replay a failure

    def run(self, command: dict[str, Any], principal: str = "operator") -> Outcome:
        return self.run_batch([command], [principal])[0]

    def run_batch(self, commands: list[dict[str, Any]], principals: list[str]) -> list[Outcome]:
        """One engine batch (one group commit); the model takes the commands one by one."""
        self.commands += len(commands)
        self.history.append((commands, principals))
        if not self.with_engine:  # the model alone, judged by its own invariants
            outcomes = [self.model.execute(command) for command in commands]
            events = [e for outcome in outcomes for e in outcome.events]
            count_rare(self.counters, events)
            lines = invariant_breaches(self.model.state, "model")
            self._report(commands, lines)
            return outcomes
        last = self.store.last_seq()
        self.results = self.engine.execute_batch(commands, principals)
        entries = [
            [e for e in entry.events if isinstance(e, dict)] for entry in self.store.read(last)
        ]
        engine_events = [e for events in entries for e in events]
        outcomes = [self.model.execute(command) for command in commands]
        events = [e for outcome in outcomes for e in outcome.events]
        count_rare(self.counters, events)
        for command, outcome in zip(commands, outcomes, strict=True):
            self.coverage[f"{command['type']} {outcome.reason or 'accepted'}"] += 1
            if command["type"] == "update_marks":
                triggered = [e for e in outcome.events if e["type"] == "LiquidationTriggered"]
                self.counters["liquidations on a joint tick"] += len(triggered)
        lines: list[str] = []
        for result, outcome in zip(self.results, outcomes, strict=True):
            if (result["status"], result.get("reason")) != (outcome.status, outcome.reason):
                lines.append(
                    f"result: engine {result['status']} {result.get('reason')} "
                    f"({result.get('message')}), model {outcome.status} {outcome.reason}"
                )
        before = self.engine_view
        self.engine_view = engine_state(self.engine, self.brackets)
        lines += differences(normal_form(self.engine_view), normal_form(self.model.state))
        if liquidation_scopes(engine_events) != liquidation_scopes(events):
            lines.append(
                f"liquidations: engine {liquidation_scopes(engine_events)}, "
                f"model {liquidation_scopes(events)}"
            )
        total = money_total(self.engine.state)
        if total not in (ZERO, -self.engine_view.bad_debt):  # bad debt: in money_total or beside it
            lines.append(f"engine: money_total {total}")
        lines += bankrupt_breaches(entries, before)
        breaches = invariant_breaches(self.engine_view, "engine")
        breaches += invariant_breaches(self.model.state, "model")
        if self.resync:  # triage: only what this command broke
            breaches, self.known = [b for b in breaches if b not in self.known], set(breaches)
        lines += breaches
        lines += adl_breaches(engine_events, before)
        self._report(commands, lines)
        return outcomes

    def _report(self, commands: list[dict[str, Any]], lines: list[str]) -> None:
        if not lines:
            return
        shown = commands[0] if len(commands) == 1 else commands
        report = f"after {shown}:\n  " + "\n  ".join(lines)
        self.failures.append(report)
        if self.strict:
            raise Mismatch(report)
        if self.resync:  # triage: judge the next command from the engine's state
            self.model.state = engine_state(self.engine, self.brackets)
