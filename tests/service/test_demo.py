"""The demo behind ``make run``: the worked example opened at real prices, then a real crash."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from crossmargin.app.model import Account
from crossmargin.cli.serve import _shown
from crossmargin.service import demo
from crossmargin.service.context import ServiceContext
from crossmargin.service.feeds import ReplayFeed
from tests.helpers import run_cli
from tests.service.server import serve


@dataclass(frozen=True)
class Replayed:
    prices: Mapping[str, Decimal]
    accounts: dict[str, Account]  # as opened, before the replay
    events: dict[str, list[dict[str, Any]]]  # each account's events after the replay


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Replayed:
    """The whole demo: opened at the first mark, the May 2021 replay run to its end."""
    feed = ReplayFeed(demo.EPISODE, demo.SYMBOLS, speed=1e9, start=demo.DEMO_START)
    keys: dict[str, str] = {}
    accounts: dict[str, Account] = {}

    async def setup(context: ServiceContext) -> None:
        keys.update(await demo.open_demo(context, feed.first_prices(), feed.first_time()))
        for account in demo.ACCOUNTS:
            accounts[account] = await context.host.read(
                lambda model, name=account: model.accounts[name]
            )

    database = str(tmp_path_factory.mktemp("demo") / "demo.db")
    events: dict[str, list[dict[str, Any]]] = {}
    with serve(database, feed=feed, setup=setup, symbols=demo.SYMBOLS) as server:
        deadline = time.monotonic() + 120
        while not feed.status()["done"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        for account in demo.ACCOUNTS:
            with server.client(keys[account]) as client:
                listed = client.get(f"/v1/accounts/{account}/events?limit=200").json()
                events[account] = [item["event"] for item in listed["events"]]
        with server.client(keys["demo-cross"]) as cross:
            assert cross.get("/v1/accounts/demo-isolated").status_code == 403
    return Replayed(prices=feed.first_prices(), accounts=accounts, events=events)


def test_the_demo_replays_a_crash_through_both_books(replayed: Replayed) -> None:
    prices = replayed.prices
    cross_account = replayed.accounts["demo-cross"]
    isolated_account = replayed.accounts["demo-isolated"]
    assert cross_account.wallet == Decimal(1000)  # the deposit covered the opening fees
    margins = {key[0]: value for key, value in isolated_account.isolated.items()}
    for symbol, (_, notional, leverage) in demo.LEGS.items():
        position = cross_account.positions[(symbol, "both")]
        assert abs(position.entry_notional - notional) < prices[symbol] * demo.QUANTITY_STEP
        # the isolated margin is exactly the initial margin (the opening fee came from the
        # wallet): the worked example's $400 and $600
        initial = position.entry_notional / leverage
        assert abs(margins[symbol] - initial) < Decimal("0.01")
    liquidated = [
        event["scope"]
        for event in replayed.events["demo-isolated"]
        if event["type"] == "LiquidationTriggered"
    ]
    assert "isolated:ETHUSDT:both" in liquidated  # the 10x long ETH leg does not survive May 19


def test_the_topped_up_cross_account_gets_a_margin_call_before_any_liquidation(
    replayed: Replayed,
) -> None:
    assert replayed.accounts["demo-cross-topped-up"].wallet == demo.WALLET + demo.TOP_UP
    events = replayed.events["demo-cross-topped-up"]
    kinds = [event["type"] for event in events]
    assert "MarginCallIssued" in kinds
    first_call = kinds.index("MarginCallIssued")
    assert "LiquidationTriggered" not in kinds[:first_call]  # warned before, not after
    call = events[first_call]
    assert call["scope"] == "cross"
    assert Decimal("0.8") <= Decimal(call["margin_ratio"]) < Decimal(1)
    assert "MarginCallCleared" in kinds[first_call:]


def test_the_demo_refuses_a_database_and_prints_no_password(tmp_path: Path) -> None:
    code, _, err = run_cli("serve", "--demo", "--database", "x.db", "--var", str(tmp_path))
    assert code == 2 and "--database" in err
    assert _shown("postgresql://user:secret@host:5432/db") == "postgresql://user:***@host:5432/db"
    assert _shown("var/crossmargin.db") == "var/crossmargin.db"
