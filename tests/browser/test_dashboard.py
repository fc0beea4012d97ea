"""The dashboard in a real browser (Playwright driving the system Chromium; .ci/run installs it).

One server for the module, holding the worked example three ways: ``trader`` in cross,
``iso`` with both legs isolated, and ``shorty`` with a single BNB short. Tests that move a mark
put it back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

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
INTERNAL_SCOPE = re.compile(r"isolated:[A-Z]+:")


def order(client: Any, account: str, symbol: str, side: str, quantity: str) -> None:
    response = client.post(
        f"/v1/accounts/{account}/orders",
        json={
            "order_id": f"{account}-{symbol}",
            "symbol": symbol,
            "side": side,
            "order_type": "market",
            "quantity": quantity,
        },
    )
    response.raise_for_status()


def book(server: Running, account: str, legs: dict[str, tuple[str, str, str]], mode: str) -> None:
    """Open ``account`` holding ``legs`` (symbol: side, quantity, leverage) in ``mode``."""
    key = server.open_account(account, "1004")
    with server.client(key) as client:
        for symbol, (side, quantity, leverage) in legs.items():
            if mode == "isolated":
                client.put(
                    f"/v1/accounts/{account}/margin-mode",
                    json={"symbol": symbol, "margin_mode": "isolated"},
                ).raise_for_status()
            client.put(
                f"/v1/accounts/{account}/leverage", json={"symbol": symbol, "leverage": leverage}
            ).raise_for_status()
            order(client, account, symbol, side, quantity)


WORKED_EXAMPLE = {"ETHUSDT": ("buy", "2", "10"), "BTCUSDT": ("sell", "0.075", "5")}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    folder = tmp_path_factory.mktemp("browser")
    with serve(str(folder / "log.db")) as server:
        server.post_marks(ETHUSDT="2000", BTCUSDT="40000", BNBUSDT="500")
        book(server, "trader", WORKED_EXAMPLE, "cross")
        book(server, "iso", WORKED_EXAMPLE, "isolated")
        book(server, "shorty", {"BNBUSDT": ("sell", "1", "2")}, "cross")
        yield server


def open_dashboard(page: Any, live: Running, account: str = "trader") -> None:
    page.goto(f"{live.url}/#key={OPERATOR_KEY}")
    page.get_by_test_id(f"gauge-{account}").wait_for()
    page.get_by_test_id(f"card-{account}").click()
    sync_api.expect(page.get_by_test_id(f"card-{account}")).to_have_class(re.compile("selected"))


def attribute(page: Any, test_id: str, name: str) -> str:
    value = page.get_by_test_id(test_id).get_attribute(name)
    assert value is not None
    return str(value)


def shown_money(text: str) -> str:
    return f"{Decimal(text).quantize(Decimal('0.01'), ROUND_HALF_UP):,}"


def shown_percent(text: str) -> str:
    return f"{(Decimal(text) * 100).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


def report(live: Running, account: str) -> dict[str, Any]:
    with live.client() as operator:
        view: dict[str, Any] = operator.get(f"/v1/accounts/{account}").json()
        return view


def scenario(live: Running, account: str, *shocks: str) -> dict[str, Any]:
    with live.client() as operator:
        response = operator.post(f"/v1/accounts/{account}/scenario", json={"shocks": list(shocks)})
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


# -- the page, the gauge, the mode switch ------------------------------------------------------


def test_the_page_loads_with_accounts_positions_chart_and_gauge(
    pages: Pages, live: Running
) -> None:
    page = pages.open()
    open_dashboard(page, live)
    assert "#key=" not in page.url  # the key leaves the address bar
    assert page.get_by_test_id("position-trader-ETHUSDT").is_visible()
    assert page.get_by_test_id("position-trader-BTCUSDT").is_visible()
    page.get_by_test_id("tab-ETHUSDT").click()
    page.get_by_test_id("liq-trader-ETHUSDT").wait_for()
    assert page.locator("#chart canvas").count() > 0
    ratio = Decimal(attribute(page, "gauge-trader", "data-ratio"))
    assert 0 < ratio < Decimal("0.8")


def test_gauge_and_liquidation_line_move_when_a_price_is_posted(
    pages: Pages, live: Running
) -> None:
    page = pages.open()
    open_dashboard(page, live)
    page.get_by_test_id("tab-ETHUSDT").click()
    page.get_by_test_id("liq-trader-ETHUSDT").wait_for()
    ratio = attribute(page, "gauge-trader", "data-ratio")
    line = attribute(page, "liq-trader-ETHUSDT", "data-price")
    live.post_marks(BTCUSDT="44000")  # the short loses: less cross margin for the ETH long
    try:
        page.wait_for_function(
            "([r, l]) => document.querySelector('[data-testid=gauge-trader]').dataset.ratio !== r"
            " && document.querySelector('[data-testid=liq-trader-ETHUSDT]').dataset.price !== l",
            arg=[ratio, line],
        )
        assert Decimal(attribute(page, "gauge-trader", "data-ratio")) > Decimal(ratio)
        assert Decimal(attribute(page, "liq-trader-ETHUSDT", "data-price")) > Decimal(line)
    finally:
        live.post_marks(BTCUSDT="40000")


def test_the_mode_switch_works_and_a_refusal_is_explained(pages: Pages, live: Running) -> None:
    page = pages.open()
    open_dashboard(page, live)
    message = page.get_by_test_id("mode-message")
    page.get_by_test_id("mode-BNBUSDT-isolated").click()
    sync_api.expect(message).to_have_text("BNBUSDT is now isolated margined.")
    sync_api.expect(page.get_by_test_id("mode-BNBUSDT-isolated")).to_have_class("active")
    page.get_by_test_id("mode-ETHUSDT-isolated").click()
    sync_api.expect(message).to_contain_text("Refused")
    sync_api.expect(message).to_contain_text("refuses a margin-mode switch with an open position")
    sync_api.expect(page.get_by_test_id("mode-ETHUSDT-cross")).to_have_class("active")


# -- what-if -----------------------------------------------------------------------------------


def test_the_what_if_slider_calls_the_scenario_query(pages: Pages, live: Running) -> None:
    page = pages.open()
    open_dashboard(page, live)
    slide(page, "ETHUSDT", -40)
    sync_api.expect(page.get_by_test_id("whatif-verdict")).to_have_text("Would be liquidated")
    sync_api.expect(page.get_by_test_id("whatif-lost")).to_have_text("Cross margin")
    slide(page, "ETHUSDT", -2)
    sync_api.expect(page.get_by_test_id("whatif-verdict")).to_have_text("Survives")


def test_what_if_shows_each_isolated_leg_and_no_cross_ratio_for_an_isolated_book(
    pages: Pages, live: Running
) -> None:
    page = pages.open()
    open_dashboard(page, live, "iso")
    result = page.get_by_test_id("whatif-result")
    rows = page.get_by_test_id("whatif-scope")
    sync_api.expect(rows).to_have_count(2)
    sync_api.expect(rows.nth(0)).to_contain_text("ETH long, isolated")
    sync_api.expect(rows.nth(1)).to_contain_text("BTC short, isolated")
    for row, position in zip(
        (rows.nth(0), rows.nth(1)), report(live, "iso")["report"]["positions"], strict=True
    ):
        sync_api.expect(row).to_contain_text(shown_percent(position["margin_ratio"]))
        sync_api.expect(row).to_contain_text(shown_money(position["liquidation_price"]))
    slide(page, "ETHUSDT", -12)
    sync_api.expect(page.get_by_test_id("whatif-verdict")).to_have_text("Would be liquidated")
    sync_api.expect(page.get_by_test_id("whatif-lost")).to_have_text("ETH long, isolated")
    sync_api.expect(rows.nth(0)).to_contain_text("liquidated")
    sync_api.expect(rows.nth(1)).to_contain_text("ok")  # the BTC leg is not sheltered, not hit
    text = result.inner_text().lower()
    assert "cross" not in text  # no cross scope, so no cross ratio (it used to say 0.0%)
    assert not INTERNAL_SCOPE.search(page.locator("body").inner_text())


def test_what_if_shows_the_cross_scope_with_each_legs_liquidation_price(
    pages: Pages, live: Running
) -> None:
    page = pages.open()
    open_dashboard(page, live)
    rows = page.get_by_test_id("whatif-scope")
    sync_api.expect(rows).to_have_count(1)
    sync_api.expect(rows.nth(0)).to_contain_text("Cross margin")
    legs = page.get_by_test_id("whatif-leg")
    sync_api.expect(legs).to_have_count(2)
    for leg, position in zip(
        (legs.nth(0), legs.nth(1)), report(live, "trader")["report"]["positions"], strict=True
    ):
        sync_api.expect(leg).to_contain_text(shown_money(position["liquidation_price"]))


def test_what_if_is_recomputed_when_marks_move(pages: Pages, live: Running) -> None:
    page = pages.open()
    open_dashboard(page, live)
    value = page.get_by_test_id("shock-value-ETHUSDT")
    sync_api.expect(value).to_have_text("0% · 2,000.00")
    live.post_marks(ETHUSDT="1950")
    sync_api.expect(value).to_have_text("0% · 1,950.00")  # unshocked, it shows the live mark
    live.post_marks(ETHUSDT="2000")
    slide(page, "ETHUSDT", -10)
    sync_api.expect(value).to_have_text("-10% · 1,800.00")
    cross = page.get_by_test_id("whatif-scope").nth(0)
    before = scenario(live, "trader", "ETHUSDT=-10%")["shocked"]["margin_ratio"]
    sync_api.expect(cross).to_have_attribute("data-ratio", before)
    live.post_marks(ETHUSDT="1900")
    try:
        sync_api.expect(value).to_have_text("-10% · 1,710.00")  # the shock follows the mark
        after = scenario(live, "trader", "ETHUSDT=-10%")["shocked"]["margin_ratio"]
        assert after != before
        sync_api.expect(cross).to_have_attribute("data-ratio", after)
        sync_api.expect(cross).to_contain_text(shown_percent(after))
    finally:
        live.post_marks(ETHUSDT="2000")


# -- the chart ---------------------------------------------------------------------------------


def test_the_chart_follows_the_selected_accounts_symbols(pages: Pages, live: Running) -> None:
    page = pages.open()
    open_dashboard(page, live, "shorty")
    chart = page.get_by_test_id("chart")
    sync_api.expect(chart).to_have_attribute("data-symbol", "BNBUSDT")
    sync_api.expect(page.get_by_test_id("chart-symbol")).to_have_text("BNBUSDT")
    assert page.get_by_test_id("symbol-tabs").locator("button").count() == 0  # one symbol
    sync_api.expect(page.get_by_test_id("entry-shorty-BNBUSDT")).to_have_text("entry 500.00")
    page.get_by_test_id("liq-shorty-BNBUSDT").wait_for()

    page.get_by_test_id("card-trader").click()
    tabs = page.get_by_test_id("symbol-tabs").locator("button")
    sync_api.expect(tabs).to_have_text(["ETHUSDT", "BTCUSDT"])  # what trader holds, no BNB
    sync_api.expect(chart).to_have_attribute("data-symbol", "ETHUSDT")
    sync_api.expect(page.get_by_test_id("entry-trader-ETHUSDT")).to_have_text("entry 2,000.00")
    assert page.get_by_test_id("liq-shorty-BNBUSDT").count() == 0
    page.get_by_test_id("tab-BTCUSDT").click()
    sync_api.expect(chart).to_have_attribute("data-symbol", "BTCUSDT")
    sync_api.expect(page.get_by_test_id("entry-trader-BTCUSDT")).to_have_text("entry 40,000.00")
    line = page.get_by_test_id("liq-trader-BTCUSDT")
    sync_api.expect(line).to_have_attribute(
        "data-price", report(live, "trader")["report"]["positions"][1]["liquidation_price"]
    )


def test_other_accounts_liquidation_lines_can_be_compared(pages: Pages, live: Running) -> None:
    page = pages.open()
    open_dashboard(page, live)
    page.get_by_test_id("liq-trader-ETHUSDT").wait_for()
    assert page.get_by_test_id("liq-iso-ETHUSDT").count() == 0
    page.get_by_test_id("chart-compare").check()
    iso_eth = report(live, "iso")["report"]["positions"][0]
    expected = "iso " + shown_money(iso_eth["liquidation_price"])
    sync_api.expect(page.get_by_test_id("liq-iso-ETHUSDT")).to_contain_text(expected)


def visible_range(page: Any) -> tuple[float, float, int]:
    data = page.get_by_test_id("chart").evaluate(
        "(c) => [c.dataset.visibleFrom, c.dataset.visibleTo, c.dataset.points]"
    )
    return float(data[0]), float(data[1]), int(data[2])


def post_spaced(live: Running, *values: str) -> None:
    """Post BNB marks a second apart (the price history dates operator marks by the clock, so
    faster posts would be pushed into the future and a later one would restart the history)."""
    for value in values:
        live.post_marks(BNBUSDT=value)
        time.sleep(1.05)


def test_the_chart_follows_new_marks_until_the_reader_zooms_and_fit_all_resumes(
    pages: Pages, live: Running
) -> None:
    page = pages.open()
    open_dashboard(page, live, "shorty")
    sync_api.expect(page.get_by_test_id("chart")).to_have_attribute("data-symbol", "BNBUSDT")
    page.wait_for_function("() => document.querySelector('#chart').dataset.visibleTo")
    _, _, start = visible_range(page)
    try:
        post_spaced(live, "450", "400")
        page.wait_for_function(
            "(n) => Number(document.querySelector('#chart').dataset.points) >= n", arg=start + 2
        )
        page.wait_for_timeout(300)
        low, high, points = visible_range(page)
        assert low <= 0 and high >= points - 1  # everything since the page opened is in view

        fit = page.get_by_test_id("chart-fit")
        assert not fit.is_visible()
        page.get_by_test_id("chart").hover()
        page.mouse.wheel(0, -600)
        sync_api.expect(fit).to_be_visible()
        post_spaced(live, "420")
        page.wait_for_function(
            "(n) => Number(document.querySelector('#chart').dataset.points) >= n", arg=points + 1
        )
        page.wait_for_timeout(300)
        assert visible_range(page)[0] > 0  # not refitted under the reader
        fit.click()
        sync_api.expect(fit).to_be_hidden()
        page.wait_for_timeout(300)
        low, high, points = visible_range(page)
        assert low <= 0 and high >= points - 1
    finally:
        live.post_marks(BNBUSDT="500")


# -- events ------------------------------------------------------------------------------------


def deposit(live: Running, key: str, count: int) -> None:
    with live.client(key) as client:
        for _ in range(count):
            client.post("/v1/accounts/gambler/deposits", json={"amount": "1"}).raise_for_status()


def wait_for_deposits(page: Any, count: int) -> None:
    page.wait_for_function(
        "(n) => document.querySelectorAll('#events li[data-type=FundsDeposited]').length >= n",
        arg=count,
    )


def test_a_liquidation_shows_up_highlighted_and_pinned(pages: Pages, live: Running) -> None:
    key = live.open_account("gambler", "100")
    with live.client(key) as gambler:
        gambler.put("/v1/accounts/gambler/leverage", json={"symbol": "BNBUSDT", "leverage": "20"})
        order(gambler, "gambler", "BNBUSDT", "buy", "3")
    page = pages.open()
    page.goto(f"{live.url}/#key={key}")
    page.get_by_test_id("gauge-gambler").wait_for()
    assert page.get_by_test_id("card-trader").count() == 0  # an account key sees its account only
    live.post_marks(BNBUSDT="400")
    try:
        sync_api.expect(
            page.locator("#events li.liquidation", has_text="Liquidation triggered")
        ).to_have_count(1)
        sync_api.expect(page.get_by_test_id("liquidated-gambler")).to_have_text("liquidated ×1")
        alert = page.get_by_test_id("alert")
        sync_api.expect(alert).to_have_count(1)
        sync_api.expect(alert).to_contain_text("Liquidated: cross margin")
        # the fund is empty: one BNB is closed against shorty's short at the bankruptcy price
        sync_api.expect(alert).to_contain_text(
            "Auto-deleveraged at the bankruptcy price: BNB long 1 at 466.9167"
        )
        sync_api.expect(alert).to_contain_text("Liquidated BNB long 2 at 400.00")
        sync_api.expect(alert).to_contain_text("Bad debt 133.83 left on cross margin")
        markers = page.get_by_test_id("chart")
        sync_api.expect(markers).to_have_attribute(
            "data-markers", re.compile(r"^(ADL,liq|liq,ADL)$")
        )

        # thirty events later the liquidation is still in view, and the feed did not jump
        deposit(live, key, 24)
        events = page.get_by_test_id("events")
        wait_for_deposits(page, 25)
        events.evaluate("(list) => { list.scrollTop = 200; }")  # the reader scrolls down
        assert events.evaluate("(list) => list.scrollTop") == 200
        reading = page.locator("#events li").nth(6)
        reading_seq = reading.get_attribute("data-seq")
        top = reading.bounding_box()["y"]
        deposit(live, key, 6)
        wait_for_deposits(page, 31)
        same = page.locator(f"#events li[data-seq='{reading_seq}']").first
        assert abs(same.bounding_box()["y"] - top) <= 1  # what they read stays put
        sync_api.expect(page.get_by_test_id("events-unread")).to_have_text("↑ 6 newer")
        assert fully_shown(alert)  # pinned: the whole liquidation, readable without scrolling
        page.get_by_test_id("events-unread").click()
        assert events.evaluate("(list) => list.scrollTop") == 0
        sync_api.expect(page.get_by_test_id("events-unread")).to_be_hidden()
        assert "trader" not in page.content()
    finally:
        live.post_marks(BNBUSDT="500")


def test_the_operator_page_picks_up_an_account_opened_after_it_loaded(
    pages: Pages, live: Running
) -> None:
    page = pages.open()
    open_dashboard(page, live)
    assert page.get_by_test_id("card-latecomer").count() == 0
    live.open_account("latecomer", "250")
    sync_api.expect(page.get_by_test_id("card-latecomer")).to_be_visible()
    sync_api.expect(page.get_by_test_id("card-latecomer")).to_contain_text("250.00")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["1440px", "390px"])
def test_the_layout_fits_a_phone_and_a_wide_screen(
    pages: Pages, live: Running, viewport: dict[str, int]
) -> None:
    page = pages.open(viewport)
    open_dashboard(page, live, "iso")
    slide(page, "ETHUSDT", -12)
    sync_api.expect(page.get_by_test_id("whatif-verdict")).to_have_text("Would be liquidated")
    assert layout_problems(page) == []
    feed = page.get_by_test_id("feed-panel").bounding_box()
    chart = page.get_by_test_id("chart-panel").bounding_box()
    if viewport is PHONE:  # one column, the alerts first
        alerts = page.get_by_test_id("alerts-panel").bounding_box()
        assert abs(chart["width"] - alerts["width"]) <= 1 and alerts["y"] < chart["y"]
    else:  # the feed beside the chart, the chart taking what is left
        assert feed["x"] > chart["x"] + chart["width"]
        assert chart["width"] + feed["width"] > 0.9 * (viewport["width"] - 60)
