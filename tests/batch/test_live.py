"""The engine's live book stays equal to a book built from scratch, however accounts change."""

from __future__ import annotations

import random

import numpy as np
import pytest

from crossmargin.batch.convert import assemble, instrument_tables
from crossmargin.batch.live import LiveBook, Row
from crossmargin.batch.risk import revalue
from crossmargin.core.errors import InvalidInput
from crossmargin.core.venues import BYBIT_LINEAR

SYMBOLS = ("BTCUSDT", "ETHUSDT", "DOGEUSDT")
START = {"BTCUSDT": 50000.0, "ETHUSDT": 3000.0, "DOGEUSDT": 0.1}
ACCOUNT_FIELDS = (
    "margin_balance",
    "maintenance",
    "cross_positions",
    "margin_ratio",
    "cross_liquidatable",
    "isolated_any_liquidatable",
    "cross_notional",
)


def random_rows(rng: random.Random) -> list[Row]:
    rows: list[Row] = []
    for symbol in rng.sample(SYMBOLS, rng.randint(0, 3)):
        for slot in rng.sample(["long", "short", "both"], rng.randint(1, 2)):
            quantity = round(rng.uniform(-2, 2) * 1000 / START[symbol], 6) or 1.0
            entry = quantity * START[symbol] * rng.uniform(0.9, 1.1)
            margin = abs(entry) / rng.choice([5, 10, 20]) if rng.random() < 0.3 else None
            rows.append((symbol, slot, quantity, entry, margin))
    if rows and rng.random() < 0.2:
        rows.append((rows[0][0], "closed", 0.0, 0.0, None))  # quantity 0: left out
    return rows


def from_scratch(live: LiveBook, state: dict[str, tuple[float, list[Row]]]) -> object:
    """A BookArrays of the same accounts (in the live book's order) and positions."""
    slots = {symbol: index for index, symbol in enumerate(live.symbols)}
    owner, symbol, side, quantity, entry, collateral, isolated = [], [], [], [], [], [], []
    starts = [0]
    for index, account in enumerate(live.account_ids):
        for row_symbol, _, row_quantity, row_entry, margin in state[account][1]:
            if row_quantity == 0:
                continue
            owner.append(index)
            symbol.append(slots[row_symbol])
            side.append(1.0 if row_quantity > 0 else -1.0)
            quantity.append(abs(row_quantity))
            entry.append(abs(row_entry))
            collateral.append(0.0 if margin is None else margin)
            isolated.append(margin is not None)
        starts.append(len(owner))
    count = len(owner)
    flags = np.array(isolated, dtype=np.bool_)
    return assemble(
        symbols=live.symbols,
        marks=live.prices.copy(),
        tables=instrument_tables(BYBIT_LINEAR, [BYBIT_LINEAR.instrument(s) for s in live.symbols]),
        account=np.array(owner, dtype=np.int32),
        symbol=np.array(symbol, dtype=np.int32),
        instrument=np.array(symbol, dtype=np.int32),
        columns={
            "side": np.array(side),
            "quantity": np.array(quantity),
            "entry_notional": np.array(entry),
            "inverse_leverage": np.zeros(count),
            "collateral": np.array(collateral),
            "close_fee": np.zeros(count),
        },
        isolated=flags,
        maintenance_at_entry=flags & BYBIT_LINEAR.isolated_maintenance_at_entry,
        partner=np.full(count, -1, dtype=np.int32),
        wallet=np.array([state[a][0] for a in live.account_ids]),
        account_start=np.array(starts, dtype=np.int64),
    )


def test_a_live_book_kept_in_step_values_like_a_book_built_from_scratch(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accounts gain and lose positions at random (outgrowing their segments, which moves them
    and eventually compacts the arrays), marks move, and after each move every account's values
    are the bits of a fresh revaluation of the same positions."""
    compactions = []
    compact = LiveBook._compact

    def counting(book: LiveBook) -> None:
        compactions.append(book.used)
        compact(book)

    monkeypatch.setattr(LiveBook, "_compact", counting)
    rng = random.Random(2024)
    instruments = {s: BYBIT_LINEAR.instrument(s) for s in SYMBOLS}
    live = LiveBook(BYBIT_LINEAR, instruments, backend=backend)
    live.marks.update(START)
    state = {f"a{i}": (rng.uniform(0, 5000), random_rows(rng)) for i in range(40)}
    live.load(
        {account: wallet for account, (wallet, _) in state.items()},
        [(account, *row) for account, (_, rows) in state.items() for row in rows],
    )
    for step in range(400):
        account = f"a{rng.randrange(60)}"
        state[account] = (rng.uniform(-100, 5000), random_rows(rng))
        live.sync_account(account, *state[account])
        if step % 25 == 24:
            symbol = rng.choice(SYMBOLS)
            holders = live.move(symbol, START[symbol] * rng.uniform(0.7, 1.3))
            holding = {
                index
                for index, name in enumerate(live.account_ids)
                if any(row[0] == symbol and row[2] != 0 for row in state[name][1])
            }
            assert set(holders.tolist()) == holding
            fresh = revalue(from_scratch(live, state), backend=backend)
            for field in ACCOUNT_FIELDS:
                kept = getattr(live.valuation, field)[: live.account_count]
                assert np.array_equal(kept, getattr(fresh, field), equal_nan=True), field
    assert compactions, "the test should outgrow the arrays at least once"


def test_a_symbol_outside_the_instruments_is_refused() -> None:
    live = LiveBook(BYBIT_LINEAR, {"BTCUSDT": BYBIT_LINEAR.instrument("BTCUSDT")})
    live.sync_account("a", 100.0, [("BTCUSDT", "both", 0.1, 5000.0, None)])
    with pytest.raises(InvalidInput, match="ETHUSDT"):
        live.sync_account(
            "a", 900.0, [("BTCUSDT", "both", 1.0, 5e4, None), ("ETHUSDT", "b", 1, 3e3, None)]
        )
    assert live.keys[0] == [("BTCUSDT", "both")]  # the refused update changed nothing
    assert live.arrays.wallet[0] == 100.0 and live.arrays.quantity[0] == 0.1
    with pytest.raises(InvalidInput, match="ETHUSDT"):
        live.sync_account("b", 100.0, [("ETHUSDT", "both", 1.0, 3000.0, None)])
    assert live.account_ids == ["a"]
    with pytest.raises(InvalidInput, match="ETHUSDT"):
        live.move("ETHUSDT", 3000.0)
