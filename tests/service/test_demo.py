"""The demo behind ``make run``: the worked example opened at real prices, then a real crash."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from crossmargin.cli.serve import _shown
from crossmargin.service import demo
from crossmargin.service.context import ServiceContext
from crossmargin.service.feeds import ReplayFeed
from tests.helpers import run_cli
from tests.service.server import serve


def test_the_demo_replays_a_crash_through_both_books(tmp_path: Path) -> None:
    feed = ReplayFeed(demo.EPISODE, demo.SYMBOLS, speed=1e9, start=demo.DEMO_START)
    opened: dict[str, Any] = {}
    prices = feed.first_prices()

    async def setup(context: ServiceContext) -> None:
        opened.update(await demo.open_demo(context, prices, feed.first_time()))
        opened["cross"] = await context.host.read(
            lambda engine: engine.state.accounts["demo-cross"]
        )
        opened["isolated"] = await context.host.read(
            lambda engine: engine.state.accounts["demo-isolated"]
        )

    with serve(str(tmp_path / "demo.db"), feed=feed, setup=setup, symbols=demo.SYMBOLS) as server:
        deadline = time.monotonic() + 120
        while not feed.status()["done"]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        with server.client(opened["demo-isolated"]) as isolated:
            events = isolated.get("/v1/accounts/demo-isolated/events?limit=200").json()["events"]
        with server.client(opened["demo-cross"]) as cross:
            assert cross.get("/v1/accounts/demo-isolated").status_code == 403
    cross_account, isolated_account = opened["cross"], opened["isolated"]
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
        item["event"]["scope"] for item in events if item["event"]["type"] == "LiquidationTriggered"
    ]
    assert "isolated:ETHUSDT:both" in liquidated  # the 10x long ETH leg does not survive May 19


def test_the_demo_refuses_a_database_and_prints_no_password(tmp_path: Path) -> None:
    code, _, err = run_cli("serve", "--demo", "--database", "x.db", "--var", str(tmp_path))
    assert code == 2 and "--database" in err
    assert _shown("postgresql://user:secret@host:5432/db") == "postgresql://user:***@host:5432/db"
    assert _shown("var/crossmargin.db") == "var/crossmargin.db"
