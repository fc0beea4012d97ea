"""The worked example: one $1,000 book run in cross and in isolated margin along two price paths.

Book: a long of 2 ETH at 2,000 (10x, $400 of margin in isolated mode) and a short of 0.075 BTC at
40,000 (5x, $600 in isolated mode); the cross version holds the same positions against one $1,000
wallet. Paths: (a) both prices fall by the same percentage, (b) ETH falls while BTC rises.

Along a path every scope (the cross account, each isolated position) is valued with the exact core
at each step; the first move at which a scope becomes liquidatable is found by bisection. A
liquidated scope is closed and keeps nothing: for positions in the first bracket Binance closes the
whole position and the margin left above bankruptcy goes to the insurance fund as clearance.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from crossmargin.core.numbers import ZERO
from crossmargin.core.position import MarginMode, Position, Side
from crossmargin.core.risk import Book, is_liquidatable, margin_ratio, total_risk
from crossmargin.core.venues import BINANCE_USDM
from crossmargin.sim.spec import BacktestSpec
from crossmargin.sim.spec_load import parse_spec

ETH, BTC = "ETHUSDT", "BTCUSDT"
START = {ETH: Decimal(2000), BTC: Decimal(40000)}
WALLET = Decimal(1000)
MARGINS = {ETH: Decimal(400), BTC: Decimal(600)}
LEVERAGES = {ETH: Decimal(10), BTC: Decimal(5)}
# The backtest opens the book with market orders whose taker fees come out of the wallet: $10 of
# room above the $1,000 of margin pays them (as examples/backtest/worked-example.yaml does).
BACKTEST_FEE_ROOM = Decimal(10)
BACKTEST_SWEEP = ("1", "2", "3", "5", "8", "10", "15", "20")
STEPS = tuple(Decimal(x) for x in ("0", "0.05", "0.10", "0.15", "0.20", "0.30"))

Path = Callable[[Decimal], dict[str, Decimal]]


def both_fall(move: Decimal) -> dict[str, Decimal]:
    return {ETH: START[ETH] * (1 - move), BTC: START[BTC] * (1 - move)}


def eth_falls_btc_rises(move: Decimal) -> dict[str, Decimal]:
    return {ETH: START[ETH] * (1 - move), BTC: START[BTC] * (1 + move)}


PATHS: dict[str, tuple[str, Path]] = {
    "a": ("both prices fall", both_fall),
    "b": ("ETH falls while BTC rises", eth_falls_btc_rises),
}


def demo_book(mode: MarginMode) -> Book:
    """The worked example's book in one margin mode."""
    isolated = mode is MarginMode.ISOLATED

    def position(symbol: str, side: Side, quantity: str) -> Position:
        qty = Decimal(quantity)
        return Position(
            symbol=symbol,
            side=side,
            quantity=qty,
            entry_notional=qty * START[symbol],
            leverage=LEVERAGES[symbol],
            margin_mode=mode,
            isolated_margin=MARGINS[symbol] if isolated else None,
        )

    instruments = {}
    for symbol in (ETH, BTC):
        found = BINANCE_USDM.instrument(symbol)
        if found is None:  # the bundled table always has both; guard for a damaged install
            raise LookupError(symbol)
        instruments[symbol] = found
    return Book(
        rules=BINANCE_USDM,
        instruments=instruments,
        marks=dict(START),
        positions=(position(ETH, Side.LONG, "2"), position(BTC, Side.SHORT, "0.075")),
        wallet_balance=ZERO if isolated else WALLET,
    )


def backtest_spec(episode: str = "may-2021") -> BacktestSpec:
    """The worked example as a backtest SPEC (what ``crossmargin backtest`` runs without one):
    the same margins and leverages, sized by margin at the first candle's prices, in cross and
    isolated, held through ``episode``. The same book as examples/backtest/worked-example.yaml."""
    return parse_spec(
        {
            "name": "worked-example",
            "venue": BINANCE_USDM.name,
            "wallet": str(WALLET + BACKTEST_FEE_ROOM),
            "modes": ["cross", "isolated"],
            "episode": episode,
            "funding": {"rate": "0.0001"},
            "positions": [
                {
                    "symbol": symbol,
                    "side": side.value,
                    "leverage": str(LEVERAGES[symbol]),
                    "margin": str(MARGINS[symbol]),
                }
                for symbol, side in ((ETH, Side.LONG), (BTC, Side.SHORT))
            ],
            "sweep": {"leverage": list(BACKTEST_SWEEP)},
        }
    )


def describe_backtest_book() -> str:
    """One line naming the default backtest book, for the CLI's output."""
    return (
        f"the worked example book (${WALLET:,} of margin: long ETH {LEVERAGES[ETH]}x with "
        f"${MARGINS[ETH]}, short BTC {LEVERAGES[BTC]}x with ${MARGINS[BTC]}; "
        f"${BACKTEST_FEE_ROOM} more in the wallet for the opening fees), in cross and in isolated"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """A unit that is liquidated as a whole: the cross account or one isolated position."""

    name: str
    positions: tuple[Position, ...]
    collateral: Decimal


def scopes(book: Book) -> tuple[Scope, ...]:
    cross = book.cross_positions()
    result = (
        [Scope(name="cross account", positions=cross, collateral=book.wallet_balance)]
        if cross
        else []
    )
    for position in book.positions:
        if position.is_isolated and position.isolated_margin is not None:
            leg = position.symbol.removesuffix("USDT") + " leg"
            result.append(
                Scope(name=leg, positions=(position,), collateral=position.isolated_margin)
            )
    return tuple(result)


def scope_state(
    book: Book, scope: Scope, marks: dict[str, Decimal]
) -> tuple[Decimal, Decimal | None, bool]:
    """Margin balance, margin ratio and liquidatable flag of ``scope`` at ``marks``."""
    priced = dataclasses.replace(book, marks=marks)
    risk = total_risk(priced, scope.positions)
    return (
        scope.collateral + risk.unrealized_pnl,
        margin_ratio(scope.collateral, risk),
        is_liquidatable(scope.collateral, risk),
    )


def liquidation_move(book: Book, scope: Scope, path: Path, low: Decimal, high: Decimal) -> Decimal:
    """Smallest move in (low, high] at which ``scope`` is liquidatable, to 1e-6 (bisection)."""
    tolerance = Decimal("1e-6")
    while high - low > tolerance:
        middle = (low + high) / 2
        if scope_state(book, scope, path(middle))[2]:
            high = middle
        else:
            low = middle
    return high


@dataclass(frozen=True, slots=True, kw_only=True)
class StepRow:
    move: Decimal
    marks: dict[str, Decimal]
    balances: dict[str, Decimal | None]  # scope -> margin balance, None once liquidated
    ratios: dict[str, Decimal | None]

    @property
    def equity(self) -> Decimal:
        return sum((b for b in self.balances.values() if b is not None), ZERO)


@dataclass(frozen=True, slots=True, kw_only=True)
class ModeRun:
    mode: MarginMode
    rows: tuple[StepRow, ...]
    liquidations: tuple[tuple[str, Decimal, dict[str, Decimal]], ...]  # scope, move, marks
    kept_after_recovery: Decimal


def run_path(mode: MarginMode, path: Path) -> ModeRun:
    """Walk ``path`` through STEPS in ``mode``; find each scope's exact liquidation move."""
    book = demo_book(mode)
    alive = list(scopes(book))
    names = [s.name for s in alive]
    liquidations: list[tuple[str, Decimal, dict[str, Decimal]]] = []
    rows: list[StepRow] = []
    previous = ZERO
    for move in STEPS:
        marks = path(move)
        for scope in list(alive):
            if scope_state(book, scope, marks)[2]:
                at = liquidation_move(book, scope, path, previous, move) if move > 0 else move
                liquidations.append((scope.name, at, path(at)))
                alive.remove(scope)
        balances: dict[str, Decimal | None] = dict.fromkeys(names)
        ratios: dict[str, Decimal | None] = dict.fromkeys(names)
        for scope in alive:
            balance, ratio, _ = scope_state(book, scope, marks)
            balances[scope.name], ratios[scope.name] = balance, ratio
        rows.append(StepRow(move=move, marks=marks, balances=balances, ratios=ratios))
        previous = move
    kept = sum((scope_state(book, s, dict(START))[0] for s in alive), ZERO)
    return ModeRun(
        mode=mode, rows=tuple(rows), liquidations=tuple(liquidations), kept_after_recovery=kept
    )
