"""What the state machine draws from: accounts and their settings, sizes, prices, aimed marks.

Six accounts cover one-way and hedge, cross and isolated; the whale trades in the brackets where
a partial liquidation can restore the margin. Quantities and prices sit on each symbol's step
and tick. ``aimed_price`` finds (with the model's own figures) a mark that puts a scope at a chosen
multiple of its maintenance margin: inside the margin-call band, the partial-liquidation window,
or a bankruptcy of a chosen depth.
"""

from __future__ import annotations

from collections import Counter
from decimal import ROUND_DOWN, Decimal

from hypothesis import strategies as st

from tests.model.harness import SYMBOLS
from tests.model.ref_figures import State, figures

ACCOUNTS = ("ann", "ben", "cat", "dan", "eve", "fay")
WHALE = "eve"
HEDGE = {"cat", "dan"}
ISOLATED = {"ben": ("BTCUSDT", "DOGEUSDT"), "dan": ("BTCUSDT", "ETHUSDT"), "fay": ("DOGEUSDT",)}
START = {"BTCUSDT": Decimal(60000), "ETHUSDT": Decimal(3000), "DOGEUSDT": Decimal("0.12")}
STEP = {"BTCUSDT": Decimal("0.001"), "ETHUSDT": Decimal("0.01"), "DOGEUSDT": Decimal(1)}
TICK = {"BTCUSDT": Decimal("0.1"), "ETHUSDT": Decimal("0.01"), "DOGEUSDT": Decimal("0.00001")}
LEVERAGES = ("1", "5", "10", "20", "25", "50", "75", "100", "125")
WALLETS = {
    "ann": ("150", "400", "1500"),
    "ben": ("200", "800", "3000"),
    "cat": ("300", "1000", "5000"),
    "dan": ("250", "900", "2500"),
    "eve": ("80000", "1000000", "3000000"),
    "fay": ("500", "2000", "20000"),
}
# aimed marks: MB = alpha x MM (margin call, partial-liquidation window, liquidation, bankruptcy)
ALPHAS = (
    "1.15",
    "1.05",
    "0.995",
    "0.97",
    "0.9",
    "0.5",
    "-0.5",
    "-3",
    "-10",
    "-40",
    "1.25",
    "1.245",
)
# notionals where a bracket's MMR exceeds the 1.25% clearance fee and 20x is still allowed
WHALE_NOTIONAL = {
    "BTCUSDT": (Decimal(12_500_000), Decimal(60_000_000)),
    "ETHUSDT": (Decimal(12_500_000), Decimal(45_000_000)),
    "DOGEUSDT": (Decimal(760_000), Decimal(1_550_000)),
}
TOTALS: Counter[str] = Counter()  # rare paths over every example of a run
COVERAGE: Counter[str] = Counter()  # commands by type and outcome over a run

accounts = st.sampled_from(ACCOUNTS)
symbols = st.sampled_from(SYMBOLS)
percent = st.integers(min_value=1, max_value=100).map(lambda n: Decimal(n) / 100)


def text(value: Decimal) -> str:
    return f"{value.normalize():f}"


def quantity(symbol: str, value: Decimal) -> Decimal:
    return value.quantize(STEP[symbol], rounding=ROUND_DOWN)


def price(symbol: str, value: Decimal) -> Decimal:
    return max(TICK[symbol], value.quantize(TICK[symbol], rounding=ROUND_DOWN))


def aimed_price(
    state: State, account_id: str, scope: str, symbol: str, alpha: Decimal
) -> Decimal | None:
    """A mark for ``symbol`` at which the scope's MB is about ``alpha`` x its MM (bisection)."""
    account = state.accounts[account_id]
    exposure = sum(
        (p.side * p.qty for k, p in account.positions.items() if k[0] == symbol), Decimal(0)
    )
    if exposure == 0:
        return None
    original = state.marks[symbol]

    def gap(mark: Decimal) -> Decimal:
        state.marks[symbol] = mark
        current = figures(state, account, scope)
        return current.balance - alpha * current.maintenance

    try:
        near, far = original, original * (Decimal("0.02") if exposure > 0 else Decimal(8))
        if gap(near) <= 0 or gap(far) > 0:
            return None
        for _ in range(48):
            middle = (near + far) / 2
            if gap(middle) > 0:
                near = middle
            else:
                far = middle
        return far
    finally:
        state.marks[symbol] = original
