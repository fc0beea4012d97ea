"""The engine's float screen flags every scope the Decimal core finds at or past the threshold."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from crossmargin.app import screening
from crossmargin.app.decide import decide
from crossmargin.app.evolve import apply_record
from crossmargin.app.records import position_to_dict
from crossmargin.app.views import account_scopes
from crossmargin.app.writer import build_state
from crossmargin.core.numbers import MONEY_QUANTUM
from crossmargin.core.position import MarginMode, Position, Side

SYMBOLS = ("BTCUSDT", "ETHUSDT", "DOGEUSDT")
START = {"BTCUSDT": Decimal(50000), "ETHUSDT": Decimal(3000), "DOGEUSDT": Decimal("0.1")}


def random_state(seed: int, accounts: int, venue: str = "binance-usdm"):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    state = build_state({"venue": venue, "symbols": list(SYMBOLS)})
    for symbol, price in START.items():
        apply_record(state, {"type": "MarkPriceUpdated", "symbol": symbol, "price": price})
    for index in range(accounts):
        account = f"a{index}"
        wallet = Decimal(rng.randint(0, 5000))
        apply_record(state, {"type": "AccountOpened", "account": account})
        apply_record(
            state,
            {
                "type": "FundsDeposited",
                "account": account,
                "amount": wallet,
                "postings": [[f"wallet:{account}", wallet], ["external:deposits", -wallet]],
            },
        )
        for symbol in rng.sample(SYMBOLS, rng.randint(1, 3)):
            entry = START[symbol] * Decimal(str(round(rng.uniform(0.9, 1.1), 4)))
            notional = Decimal(rng.choice([1000, 20000, 100000, 2_000_000]))
            quantity = (notional / entry).quantize(Decimal("0.001"))
            isolated = rng.random() < 0.3
            position = Position(
                symbol=symbol,
                side=rng.choice([Side.LONG, Side.SHORT]),
                quantity=quantity,
                entry_notional=quantity * entry,
                leverage=Decimal(10),
                margin_mode=MarginMode.ISOLATED if isolated else MarginMode.CROSS,
            )
            # a position placed directly (the event that sets a slot's position)
            apply_record(
                state,
                {
                    "type": "PositionLeverageChanged",
                    "account": account,
                    "position": {
                        "account": account,
                        "symbol": symbol,
                        "slot": "both",
                        "after": position_to_dict(position),
                    },
                },
            )
            if isolated:
                margin = (quantity * entry / 10).quantize(Decimal("0.01"))
                ledger = f"isolated:{account}:{symbol}:both"
                apply_record(
                    state,
                    {
                        "type": "IsolatedMarginAdded",
                        "account": account,
                        "symbol": symbol,
                        "slot": "both",
                        "amount": margin,
                        "postings": [[ledger, margin], ["external:deposits", -margin]],
                    },
                )
    screening.rebuild(state)
    return state


@pytest.mark.parametrize("venue", ["binance-usdm", "bybit-linear"])
@pytest.mark.parametrize("seed", range(4))
def test_screen_flags_every_scope_the_core_finds_at_or_past_the_threshold(
    seed: int, venue: str
) -> None:
    state = random_state(seed, 300, venue)
    rng = random.Random(seed + 100)
    checked: list[str] = []
    for _ in range(6):
        symbol = rng.choice(SYMBOLS)
        price = START[symbol] * Decimal(str(round(rng.uniform(0.8, 1.2), 4)))
        apply_record(state, {"type": "MarkPriceUpdated", "symbol": symbol, "price": price})
        assert state.screen is not None
        flagged = state.screen.tick(symbol, float(price), 0.8)
        for account_id in state.holders.members(symbol):
            account = state.accounts[account_id]
            # A tick can only move the scopes that hold the ticked symbol.
            cross_holds = any(
                p.symbol == symbol and not p.is_isolated for p in account.positions.values()
            )
            for scope in account_scopes(state, account):
                if not scope.positions:
                    continue
                ratio = scope.margin_ratio
                at_risk = scope.liquidatable or ratio is None or ratio >= Decimal("0.8")
                moved = cross_holds if scope.id.is_cross else scope.id.symbol == symbol
                if at_risk and moved:
                    assert account_id in flagged, (account_id, str(scope.id), ratio)
                    checked.append(scope)
    assert checked, "the fixture should put some scopes at risk"


def test_screen_stays_in_step_after_positions_change() -> None:
    state = random_state(7, 50)
    account = state.accounts["a0"]
    for symbol, slot in list(account.positions):
        apply_record(
            state,
            {
                "type": "PositionLeverageChanged",
                "account": "a0",
                "position": {"account": "a0", "symbol": symbol, "slot": slot, "after": None},
            },
        )
    screening.sync(state, ["a0"])
    assert state.screen is not None
    book = state.screen
    index = book.account_index["a0"]
    assert book.keys[index] == []
    assert book.arrays.stops[index] == book.arrays.starts[index]
    assert not book.holds[:, index].any()
    # valued at the next tick: an account with no position has nothing to flag
    assert "a0" not in state.screen.tick("BTCUSDT", 1.0, 0.8)
    assert book.valuation.maintenance[index] == 0.0
    assert book.valuation.margin_balance[index] == float(account.wallet)


def one_account_state(wallet: Decimal, quantity: Decimal, entry: Decimal):  # type: ignore[no-untyped-def]
    state = build_state({"venue": "binance-usdm", "symbols": ["BTCUSDT"]})
    apply_record(state, {"type": "MarkPriceUpdated", "symbol": "BTCUSDT", "price": entry})
    apply_record(state, {"type": "AccountOpened", "account": "a"})
    apply_record(
        state,
        {
            "type": "FundsDeposited",
            "account": "a",
            "amount": wallet,
            "postings": [["wallet:a", wallet], ["external:deposits", -wallet]],
        },
    )
    position = Position(
        symbol="BTCUSDT",
        side=Side.LONG,
        quantity=quantity,
        entry_notional=quantity * entry,
        leverage=Decimal(20),
        margin_mode=MarginMode.CROSS,
    )
    apply_record(
        state,
        {
            "type": "PositionLeverageChanged",
            "account": "a",
            "position": {
                "account": "a",
                "symbol": "BTCUSDT",
                "slot": "both",
                "after": position_to_dict(position),
            },
        },
    )
    return state


@pytest.mark.parametrize("k", range(12))
def test_a_margin_call_in_the_rounding_band_is_the_same_with_the_screen_on_and_off(k: int) -> None:
    """After the tick the account's exact margin ratio is about 0.8 - k x 1e-9. The core rounds MM
    up to 1e-8 and the ratio up to 1e-8, so it issues a margin call for the first several k; the
    screen must flag the account for each of them, so that the events (and the state hash) are
    those of a run without the screen. A guard of a relative 1e-9 skipped k >= 3 here."""
    quantity, entry, price = Decimal("0.01"), Decimal(50000), Decimal("49000.00000333")
    maintenance = quantity * price * Decimal("0.004")  # BTCUSDT's first bracket, no deduction
    balance = maintenance / (Decimal("0.8") - k * Decimal("1e-9"))
    wallet = (balance - quantity * (price - entry)).quantize(MONEY_QUANTUM)
    command = {"command_id": "t", "type": "update_mark", "symbol": "BTCUSDT", "price": str(price)}
    events = []
    for screened in (False, True):
        state = one_account_state(wallet, quantity, entry)
        if screened:
            screening.rebuild(state)
        events.append([type(event).__name__ for event in decide(state, command).events])
    assert events[0] == events[1]
    if k == 0:
        assert "MarginCallIssued" in events[0]
