"""``make run``'s demo in a real browser: the May 2021 replay watched live, at 1440 and 390 px.

The replay waits for the page: the desktop page is open (with ``demo-cross-topped-up``
selected) before the first mark, so it sees the crash arrive; the phone page opens afterwards
and builds the same story from the streams' snapshots.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from crossmargin.service import demo
from crossmargin.service.context import ServiceContext
from crossmargin.service.feeds import ReplayFeed
from crossmargin.service.host import EngineHost
from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    Pages,
    fully_shown,
    layout_problems,
    slide,
    sync_api,
)
from tests.service.server import OPERATOR_KEY, Running, serve

pytestmark = pytest.mark.slow
SPEED = 40_000.0  # the 5.5 days of the episode in about 12 s
INTERNAL_SCOPE = re.compile(r"isolated:[A-Z]+:")


class GatedReplay(ReplayFeed):
    """The demo's replay, held until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__(demo.EPISODE, demo.SYMBOLS, speed=SPEED, start=demo.DEMO_START)
        self.gate = threading.Event()

    async def run(self, host: EngineHost) -> None:
        while not self.gate.is_set():
            await asyncio.sleep(0.05)
        await super().run(host)


@dataclass
class Demo:
    server: Running
    feed: GatedReplay
    keys: dict[str, str] = field(default_factory=dict)

    def finish(self) -> None:
        self.feed.gate.set()
        deadline = time.monotonic() + 120
        while not self.feed.status()["done"]:
            assert time.monotonic() < deadline, "the replay did not finish"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def running_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    feed = GatedReplay()
    keys: dict[str, str] = {}

    async def setup(context: ServiceContext) -> None:
        keys.update(await demo.open_demo(context, feed.first_prices(), feed.first_time()))

    database = str(tmp_path_factory.mktemp("demo") / "demo.db")
    with serve(database, feed=feed, setup=setup, symbols=demo.SYMBOLS) as server:
        yield Demo(server=server, feed=feed, keys=keys)


def alert(page: Any, account: str, text: str) -> Any:
    return page.locator(f"[data-testid=alert][data-account='{account}']", has_text=text)


def test_the_demo_shows_the_liquidations_and_a_margin_call_survived_as_they_happen(
    pages: Pages, running_demo: Demo
) -> None:
    page = pages.open(DESKTOP)
    page.goto(f"{running_demo.server.url}/#key={OPERATOR_KEY}")
    for account in demo.ACCOUNTS:
        page.get_by_test_id(f"card-{account}").wait_for()
    page.get_by_test_id("card-demo-cross-topped-up").click()
    sync_api.expect(page.get_by_test_id("chart")).to_have_attribute("data-symbol", "ETHUSDT")
    running_demo.finish()

    call = alert(page, "demo-cross-topped-up", "Margin call on cross margin: margin ratio 88.0%")
    sync_api.expect(call).to_have_count(1)
    # dated by the replay's clock (inferred: a fast replay may group the next tick with it)
    sync_api.expect(call).to_contain_text(re.compile(r"05/19 13:[0-5]\d"))
    sync_api.expect(alert(page, "demo-isolated", "Liquidated: ETH long, isolated")).to_have_count(1)
    sync_api.expect(alert(page, "demo-cross", "Liquidated: cross margin")).to_have_count(1)
    # by the wick of 13:40 (ETH 1,400.73 with BTC 28,688, one tick), not by a mix of two ticks
    bankrupt = alert(page, "demo-cross", "Bankrupt (cross margin): deficit 315.20")
    sync_api.expect(bankrupt).to_have_count(1)
    sync_api.expect(bankrupt).to_contain_text("Taken over by the insurance fund")
    for account in ("demo-cross", "demo-isolated"):
        sync_api.expect(page.get_by_test_id(f"liquidated-{account}")).to_have_text("liquidated ×1")
    # the $331 top-up carries the book through the wick: called, then cleared, never liquidated
    cleared = alert(page, "demo-cross-topped-up", "Margin call cleared on cross margin")
    sync_api.expect(cleared).to_have_count(1)
    sync_api.expect(page.get_by_test_id("liquidated-demo-cross-topped-up")).to_have_count(0)
    assert fully_shown(call)  # the margin call is still readable after everything that followed
    assert not INTERNAL_SCOPE.search(page.locator("body").inner_text())

    # the chart: the selected account's symbols, with its margin call marked, and the
    # whole replay (the crash included) in view
    chart = page.get_by_test_id("chart")
    sync_api.expect(page.get_by_test_id("symbol-tabs").locator("button")).to_have_text(
        ["ETHUSDT", "BTCUSDT"]  # both legs, still held at the end of the replay
    )
    sync_api.expect(chart).to_have_attribute("data-markers", "call")
    low, high, points = chart.evaluate(
        "(c) => [c.dataset.visibleFrom, c.dataset.visibleTo, c.dataset.points].map(Number)"
    )
    assert points > 400 and low <= 0 and high >= points - 1

    # the isolated book: what-if per leg, the BTC short still open; its chart offers the ETH
    # leg it lost as well
    page.get_by_test_id("card-demo-isolated").click()
    sync_api.expect(page.get_by_test_id("symbol-tabs").locator("button")).to_have_text(
        ["BTCUSDT", "ETHUSDT"]
    )
    page.get_by_test_id("tab-ETHUSDT").click()
    sync_api.expect(page.get_by_test_id("chart-hint")).to_have_text("no open position")
    sync_api.expect(chart).to_have_attribute("data-markers", "liq")
    rows = page.get_by_test_id("whatif-scope")
    sync_api.expect(rows).to_have_count(1)
    sync_api.expect(rows.nth(0)).to_contain_text("BTC short, isolated")
    page.get_by_test_id("tab-BTCUSDT").click()
    slide(page, "BTCUSDT", 45)  # past its liquidation price, 41% above the mark
    sync_api.expect(page.get_by_test_id("whatif-verdict")).to_have_text("Would be liquidated")
    sync_api.expect(page.get_by_test_id("whatif-lost")).to_have_text("BTC short, isolated")
    assert "cross" not in page.get_by_test_id("whatif-result").inner_text().lower()
    assert layout_problems(page) == []


def test_the_demo_after_the_fact_on_a_phone(pages: Pages, running_demo: Demo) -> None:
    running_demo.finish()
    page = pages.open(PHONE)
    page.goto(f"{running_demo.server.url}/#key={OPERATOR_KEY}")
    page.get_by_test_id("card-demo-cross-topped-up").click()
    call = alert(page, "demo-cross-topped-up", "Margin call on cross margin: margin ratio 88.0%")
    sync_api.expect(call).to_have_count(1)
    sync_api.expect(alert(page, "demo-isolated", "Liquidated: ETH long, isolated")).to_have_count(1)
    # a call already past when the page opened has no time to be marked at (the stream's events
    # carry none); a close at the mark is found by its price: the cross book's BTC short closed
    # at the mark of the 13:40 wick (its ETH long went to the fund at the bankruptcy price)
    page.get_by_test_id("card-demo-cross").click()
    page.get_by_test_id("tab-BTCUSDT").click()
    chart = page.get_by_test_id("chart")
    sync_api.expect(chart).to_have_attribute("data-symbol", "BTCUSDT")
    sync_api.expect(chart).to_have_attribute("data-markers", re.compile("liq"))
    page.wait_for_timeout(300)
    low, high, points = chart.evaluate(
        "(c) => [c.dataset.visibleFrom, c.dataset.visibleTo, c.dataset.points].map(Number)"
    )
    assert points > 400 and low <= 0 and high >= points - 1  # the whole replay, on 390 px
    # one column: the alerts right under the cards, before the chart
    alerts = page.get_by_test_id("alerts-panel").bounding_box()
    chart = page.get_by_test_id("chart-panel").bounding_box()
    assert alerts["y"] < chart["y"] and abs(alerts["width"] - chart["width"]) <= 1
    assert not INTERNAL_SCOPE.search(page.locator("body").inner_text())
    assert layout_problems(page) == []
