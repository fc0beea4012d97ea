"""Reference model, part 1: numbers, bracket tables, state, and the per-scope figures.

Written from the engine specification (the money rules) and Binance USD-M's published rules, in
plain Decimal, without any crossmargin engine or core code: the second implementation of the
rules, the one a reviewer reads. The bracket table is read as data from the package's bundled
JSON file; the fee rates are Binance's (taker 0.05%, maker 0.02%, liquidation clearance 1.25%).

Rounding, as the specification pins it: ``up`` (ROUND_CEILING) and ``down`` (ROUND_FLOOR) to
1e-8, everything else in Python's default decimal context. Requirements (MM, IM, fees, funding
paid) round up, credits (realized PnL, funding received) round down: the venue keeps the dust.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_UP, Decimal
from importlib import resources

QUANTUM = Decimal("1e-8")
ZERO = Decimal(0)
TAKER = Decimal("0.0005")
MAKER = Decimal("0.0002")
LIQUIDATION_FEE = Decimal("0.0125")
DEFAULT_LEVERAGE = Decimal(20)
MARGIN_CALL = Decimal("0.8")
BOTH = "both"


def up(x: Decimal) -> Decimal:
    return x.quantize(QUANTUM, rounding=ROUND_CEILING)


def down(x: Decimal) -> Decimal:
    return x.quantize(QUANTUM, rounding=ROUND_FLOOR)


@dataclass(frozen=True)
class Bracket:
    floor: Decimal
    cap: Decimal
    mmr: Decimal
    cum: Decimal
    max_leverage: Decimal


def load_brackets(symbols: tuple[str, ...]) -> dict[str, tuple[Bracket, ...]]:
    """Each symbol's brackets from the bundled Binance table (data only)."""
    text = resources.files("crossmargin.data").joinpath("binance-usdm-2024-10.json").read_text()
    table = json.loads(text)["symbols"]
    result = {}
    for symbol in symbols:
        result[symbol] = tuple(
            Bracket(
                floor=Decimal(row["notional_floor"]),
                cap=Decimal(row["notional_cap"]),
                mmr=Decimal(row["maintenance_margin_rate"]),
                cum=Decimal(row["maintenance_amount"]),
                max_leverage=Decimal(row["max_leverage"]),
            )
            for row in table[symbol]["brackets"]
        )
    return result


def bracket_index(brackets: tuple[Bracket, ...], notional: Decimal) -> int:
    """floor < N <= cap; the first bracket also holds 0; past the last cap, the last one."""
    for index, bracket in enumerate(brackets):
        if notional <= bracket.cap:
            return index
    return len(brackets) - 1


@dataclass
class Pos:
    side: int  # +1 long, -1 short
    qty: Decimal
    entry: Decimal  # entry notional: sum of qty * price of the fills that opened it
    leverage: Decimal
    isolated: bool


@dataclass
class Order:
    order_id: str
    account: str
    symbol: str
    side: int  # +1 buy, -1 sell
    slot: str
    market: bool
    qty: Decimal  # remaining
    price: Decimal | None  # the limit; None for a market order (resting under external matching)
    reduce_only: bool
    reserved: Decimal


@dataclass
class Acct:
    account_id: str
    wallet: Decimal = ZERO
    hedge: bool = False
    leverage: dict[str, Decimal] = field(default_factory=dict)
    isolated_mode: dict[str, bool] = field(default_factory=dict)  # symbol -> isolated
    positions: dict[tuple[str, str], Pos] = field(default_factory=dict)
    margins: dict[tuple[str, str], Decimal] = field(default_factory=dict)  # isolated margins
    orders: dict[str, Order] = field(default_factory=dict)
    calls: set[str] = field(default_factory=set)

    def leverage_for(self, symbol: str) -> Decimal:
        return self.leverage.get(symbol, DEFAULT_LEVERAGE)

    def margin(self, key: tuple[str, str]) -> Decimal:
        return self.margins.get(key, ZERO)

    def move_margin(self, key: tuple[str, str], amount: Decimal) -> None:
        balance = self.margin(key) + amount
        if balance == 0:
            self.margins.pop(key, None)
        else:
            self.margins[key] = balance


@dataclass
class State:
    brackets: dict[str, tuple[Bracket, ...]]
    external_matching: bool = False
    accounts: dict[str, Acct] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)
    fund: Decimal = ZERO
    fee_income: Decimal = ZERO
    bad_debt: Decimal = ZERO  # negative: the venue's unrecovered loss
    external: dict[str, Decimal] = field(default_factory=dict)

    def flow(self, ledger: str, amount: Decimal) -> None:
        self.external[ledger] = self.external.get(ledger, ZERO) + amount

    def clone(self) -> State:
        """A copy to restore when a command is rejected (the bracket table is shared)."""
        copy = replace(self, accounts={}, marks=dict(self.marks), external=dict(self.external))
        for account_id, a in self.accounts.items():
            copy.accounts[account_id] = replace(
                a,
                leverage=dict(a.leverage),
                isolated_mode=dict(a.isolated_mode),
                positions={k: replace(p) for k, p in a.positions.items()},
                margins=dict(a.margins),
                orders={k: replace(o) for k, o in a.orders.items()},
                calls=set(a.calls),
            )
        return copy

    def money_total(self) -> Decimal:
        total = self.fund + self.fee_income + self.bad_debt + sum(self.external.values(), ZERO)
        for account in self.accounts.values():
            total += account.wallet + sum(account.margins.values(), ZERO)
        return total


# -- per position, at the mark ---------------------------------------------------------------


def upnl(position: Pos, mark: Decimal) -> Decimal:
    return position.side * (position.qty * mark - position.entry)


def maintenance(state: State, symbol: str, qty: Decimal, mark: Decimal) -> Decimal:
    brackets = state.brackets[symbol]
    bracket = brackets[bracket_index(brackets, qty * mark)]
    return up(qty * mark * bracket.mmr - bracket.cum)


def initial(qty: Decimal, mark: Decimal, leverage: Decimal) -> Decimal:
    return up(qty * mark / leverage)


# -- scopes ----------------------------------------------------------------------------------

CROSS = "cross"


def scope_name(key: tuple[str, str] | None) -> str:
    return CROSS if key is None else f"isolated:{key[0]}:{key[1]}"


def scope_key(scope: str) -> tuple[str, str] | None:
    if scope == CROSS:
        return None
    _, symbol, slot = scope.split(":")
    return symbol, slot


def scope_positions(account: Acct, scope: str) -> list[tuple[tuple[str, str], Pos]]:
    key = scope_key(scope)
    if key is None:
        return sorted((k, p) for k, p in account.positions.items() if not p.isolated)
    position = account.positions.get(key)
    return [] if position is None or not position.isolated else [(key, position)]


def collateral(account: Acct, scope: str) -> Decimal:
    key = scope_key(scope)
    return account.wallet if key is None else account.margin(key)


def move_collateral(account: Acct, scope: str, amount: Decimal) -> None:
    key = scope_key(scope)
    if key is None:
        account.wallet += amount
    else:
        account.move_margin(key, amount)


@dataclass(frozen=True)
class Figures:
    balance: Decimal  # MB = collateral + UPNL
    maintenance: Decimal  # MMs: sum of the positions' rounded MM
    has_position: bool

    @property
    def liquidatable(self) -> bool:
        return self.has_position and self.balance <= self.maintenance

    @property
    def ratio(self) -> Decimal | None:
        if self.maintenance == 0:
            return ZERO
        if self.balance <= 0:
            return None
        return (self.maintenance / self.balance).quantize(QUANTUM, rounding=ROUND_UP)


def figures(state: State, account: Acct, scope: str) -> Figures:
    positions = scope_positions(account, scope)
    balance = collateral(account, scope)
    mm = ZERO
    for (symbol, _), position in positions:
        mark = state.marks[symbol]
        balance += upnl(position, mark)
        mm += maintenance(state, symbol, position.qty, mark)
    return Figures(balance=balance, maintenance=mm, has_position=bool(positions))


def scopes(account: Acct) -> list[str]:
    """The account's scopes in examination order: cross, then isolated slots by (symbol, slot)."""
    isolated = {k for k, p in account.positions.items() if p.isolated} | set(account.margins)
    return [CROSS] + [scope_name(key) for key in sorted(isolated)]


def free_margin(state: State, account: Acct) -> Decimal:
    """min(W, W + cross UPNL) - sum cross IM - sum of open orders' reservations."""
    pnl = ZERO
    im = ZERO
    for (symbol, _), position in scope_positions(account, CROSS):
        mark = state.marks[symbol]
        pnl += upnl(position, mark)
        im += initial(position.qty, mark, position.leverage)
    reserved = sum((order.reserved for order in account.orders.values()), ZERO)
    return min(account.wallet, account.wallet + pnl) - im - reserved
