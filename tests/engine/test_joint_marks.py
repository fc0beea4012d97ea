"""One instant's marks move together: ``update_marks`` examines a hedged cross book at the new
prices of both legs, never at one leg's new price beside the other's old one.

The book is the brief's hedge: long ETH and short BTC of the same notional in one cross wallet.
When both prices rise 12%, the short loses what the long gains, so the account stays healthy.
Fed one symbol at a time (BTC sorts first), the short's loss lands alone on a thin wallet and the
account is liquidated at a price vector that never stood in the market; fed as one
``update_marks`` it is not. Both logs replay to their live state, and refusals change nothing.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from crossmargin.app.audit import check, replay
from crossmargin.app.writer import Engine
from crossmargin.ledger import open_store

SYMBOLS = ("BTCUSDT", "ETHUSDT")


def hedged_book(path: Path) -> Engine:
    engine = Engine(open_store(str(path)), symbols=SYMBOLS)
    commands: list[dict[str, Any]] = [
        {"type": "update_marks", "prices": {"ETHUSDT": "2000", "BTCUSDT": "40000"}},
        {"type": "open_account", "account": "hedge"},
        {"type": "deposit", "account": "hedge", "amount": "2300"},
        {"type": "open_account", "account": "street"},
        {"type": "deposit", "account": "street", "amount": "1000000"},
        {"type": "seed_insurance_fund", "amount": "100000"},
    ]
    for account in ("hedge", "street"):
        for symbol in SYMBOLS:
            commands.append(
                {"type": "set_leverage", "account": account, "symbol": symbol, "leverage": "20"}
            )
    for account, eth, btc in (("hedge", "buy", "sell"), ("street", "sell", "buy")):
        commands += [
            {
                "type": "place_order",
                "account": account,
                "order_id": f"{account}-eth",
                "symbol": "ETHUSDT",
                "side": eth,
                "order_type": "market",
                "quantity": "10",
            },
            {
                "type": "place_order",
                "account": account,
                "order_id": f"{account}-btc",
                "symbol": "BTCUSDT",
                "side": btc,
                "order_type": "market",
                "quantity": "0.5",
            },
        ]
    for number, command in enumerate(commands):
        result = engine.execute({**command, "command_id": f"setup-{number}"})
        assert result["status"] == "accepted", (command, result)
    return engine


def liquidations(engine: Engine) -> list[dict[str, Any]]:
    return [
        event
        for entry in engine.store.read(0)
        for event in entry.events
        if event["type"] in ("PositionLiquidated", "ScopeBankrupt")
    ]


def test_a_joint_rise_leaves_the_hedge_alone_where_one_leg_at_a_time_liquidates_it(
    tmp_path: Path,
) -> None:
    risen = {"BTCUSDT": "44800", "ETHUSDT": "2240"}

    apart = hedged_book(tmp_path / "apart.db")
    for symbol, price in sorted(risen.items()):
        apart.execute(
            {
                "type": "update_mark",
                "command_id": f"tick-{symbol}",
                "symbol": symbol,
                "price": price,
            }
        )
    assert liquidations(apart), "one leg at a time: the short's loss alone liquidates the hedge"

    together = hedged_book(tmp_path / "together.db")
    result = together.execute({"type": "update_marks", "command_id": "tick", "prices": risen})
    assert result["status"] == "accepted", result
    assert liquidations(together) == []
    assert together.state.marks == {s: Decimal(p) for s, p in risen.items()}
    hedge = together.state.accounts["hedge"]
    assert {key[0] for key in hedge.positions} == set(SYMBOLS)

    for engine in (apart, together):
        assert replay(engine.store).state_hash == engine.state_hash()
        assert check(engine.store).ok


def test_a_joint_fall_through_the_hedge_liquidates_it_once_at_the_new_prices(
    tmp_path: Path,
) -> None:
    engine = hedged_book(tmp_path / "crash.db")
    # ETH falls 15% while BTC rises 5%: both legs lose, and the cross book as a whole is past
    # maintenance at the new prices of both
    result = engine.execute(
        {
            "type": "update_marks",
            "command_id": "crash",
            "prices": {"ETHUSDT": "1700", "BTCUSDT": "42000"},
        }
    )
    assert result["status"] == "accepted", result
    entry = engine.store.lookup_command("operator/crash")
    assert entry is not None
    kinds = [event["type"] for event in entry.events]
    assert kinds[:2] == ["MarkPriceUpdated", "MarkPriceUpdated"]  # both marks before any close
    assert "PositionLiquidated" in kinds
    assert engine.state.accounts["hedge"].positions == {}
    assert replay(engine.store).state_hash == engine.state_hash()
    assert check(engine.store).ok


def test_a_bad_joint_tick_is_refused_whole(tmp_path: Path) -> None:
    engine = hedged_book(tmp_path / "refused.db")
    before, last = engine.state_hash(), engine.store.last_seq()
    for prices, words in (
        ({}, "at least one"),
        ({"ETHUSDT": "2100", "BTCUSDT": "-1"}, "prices.BTCUSDT"),
        ({"ETHUSDT": "2100", "BTCUSDT": "1e-9"}, "prices.BTCUSDT"),
        ([["ETHUSDT", "2100"]], "expected an object"),
    ):
        result = engine.execute({"type": "update_marks", "command_id": "bad", "prices": prices})
        assert result["status"] == "rejected" and result["reason"] == "INVALID_COMMAND", result
        assert words in result["message"], result
    unknown = engine.execute(
        {
            "type": "update_marks",
            "command_id": "nope",
            "prices": {"ETHUSDT": "2100", "XRPUSDT": "1"},
        }
    )
    assert unknown["status"] == "rejected" and unknown["reason"] == "UNKNOWN_SYMBOL", unknown
    assert engine.state.marks["ETHUSDT"] == Decimal("2000")  # the known symbol did not move
    assert engine.state_hash() == before
    assert engine.store.last_seq() == last + 1  # the engine's refusal is logged, with no event
