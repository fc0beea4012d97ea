"""The dashboard in a real browser (Playwright driving the system Chromium; .ci/run installs it).

Screenshots go to artifacts/browser/ (kept by CI as test artifacts).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.contract.backends import in_ci
from tests.service.server import OPERATOR_KEY, Running, serve

CHROMIUM = os.environ.get("CROSSMARGIN_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "browser"
TIMEOUT_MS = 15_000
pytestmark = pytest.mark.slow

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if in_ci():
            pytest.fail(f"CI=true but there is no Chromium at {CHROMIUM} (.ci/run installs it)")
        pytest.skip(f"no Chromium at {CHROMIUM}; run .ci/run or set CROSSMARGIN_CHROMIUM")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


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


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """trader: the worked example in cross (long 2 ETH 10x, short 0.075 BTC 5x, $1,000)."""
    folder = tmp_path_factory.mktemp("browser")
    with serve(str(folder / "log.db")) as server:
        server.post_marks(ETHUSDT="2000", BTCUSDT="40000", BNBUSDT="500")
        key = server.open_account("trader", "1004")
        with server.client(key) as trader:
            trader.put("/v1/accounts/trader/leverage", json={"symbol": "ETHUSDT", "leverage": "10"})
            trader.put("/v1/accounts/trader/leverage", json={"symbol": "BTCUSDT", "leverage": "5"})
            order(trader, "trader", "ETHUSDT", "buy", "2")
            order(trader, "trader", "BTCUSDT", "sell", "0.075")
        yield server


@pytest.fixture
def page(browser: Any, live: Running, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
        assert errors == [], errors
    finally:
        opened.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        context.close()


def open_dashboard(page: Any, live: Running, key: str = OPERATOR_KEY) -> None:
    page.goto(f"{live.url}/#key={key}")
    page.get_by_test_id("gauge-trader").wait_for()
    page.get_by_test_id("card-trader").click()


def attribute(page: Any, test_id: str, name: str) -> str:
    value = page.get_by_test_id(test_id).get_attribute(name)
    assert value is not None
    return str(value)


def test_the_page_loads_with_accounts_positions_chart_and_gauge(page: Any, live: Running) -> None:
    open_dashboard(page, live)
    assert "#key=" not in page.url  # the key leaves the address bar
    assert page.get_by_test_id("position-trader-ETHUSDT").is_visible()
    assert page.get_by_test_id("position-trader-BTCUSDT").is_visible()
    page.get_by_test_id("tab-ETHUSDT").click()
    page.get_by_test_id("liq-trader-ETHUSDT").wait_for()
    assert page.locator("#chart canvas").count() > 0
    ratio = Decimal(attribute(page, "gauge-trader", "data-ratio"))
    assert 0 < ratio < Decimal("0.8")


def test_gauge_and_liquidation_line_move_when_a_price_is_posted(page: Any, live: Running) -> None:
    open_dashboard(page, live)
    page.get_by_test_id("tab-ETHUSDT").click()
    page.get_by_test_id("liq-trader-ETHUSDT").wait_for()
    ratio = attribute(page, "gauge-trader", "data-ratio")
    line = attribute(page, "liq-trader-ETHUSDT", "data-price")
    live.post_marks(BTCUSDT="44000")  # the short loses: less cross margin for the ETH long
    page.wait_for_function(
        "([r, l]) => document.querySelector('[data-testid=gauge-trader]').dataset.ratio !== r"
        " && document.querySelector('[data-testid=liq-trader-ETHUSDT]').dataset.price !== l",
        arg=[ratio, line],
    )
    assert Decimal(attribute(page, "gauge-trader", "data-ratio")) > Decimal(ratio)
    assert Decimal(attribute(page, "liq-trader-ETHUSDT", "data-price")) > Decimal(line)
    live.post_marks(BTCUSDT="40000")


def test_the_mode_switch_works_and_a_refusal_is_explained(page: Any, live: Running) -> None:
    open_dashboard(page, live)
    message = page.get_by_test_id("mode-message")
    page.get_by_test_id("mode-BNBUSDT-isolated").click()
    sync_api.expect(message).to_have_text("BNBUSDT is now isolated margined.")
    sync_api.expect(page.get_by_test_id("mode-BNBUSDT-isolated")).to_have_class("active")
    page.get_by_test_id("mode-ETHUSDT-isolated").click()
    sync_api.expect(message).to_contain_text("Refused")
    sync_api.expect(message).to_contain_text("refuses a margin-mode switch with an open position")
    sync_api.expect(page.get_by_test_id("mode-ETHUSDT-cross")).to_have_class("active")


def test_the_what_if_slider_calls_the_scenario_query(page: Any, live: Running) -> None:
    open_dashboard(page, live)
    page.get_by_test_id("shock-ETHUSDT").evaluate(
        "(input) => { input.value = '-40'; input.dispatchEvent(new Event('input')); }"
    )
    sync_api.expect(page.get_by_test_id("whatif-verdict")).to_have_text("Would be liquidated")
    page.get_by_test_id("shock-ETHUSDT").evaluate(
        "(input) => { input.value = '-2'; input.dispatchEvent(new Event('input')); }"
    )
    sync_api.expect(page.get_by_test_id("whatif-verdict")).to_have_text("Survives")


def test_a_liquidation_shows_up_highlighted_in_the_feed(page: Any, live: Running) -> None:
    key = live.open_account("gambler", "100")
    with live.client(key) as gambler:
        gambler.put("/v1/accounts/gambler/leverage", json={"symbol": "BNBUSDT", "leverage": "20"})
        order(gambler, "gambler", "BNBUSDT", "buy", "3")
    page.goto(f"{live.url}/#key={key}")
    page.get_by_test_id("gauge-gambler").wait_for()
    assert page.get_by_test_id("card-trader").count() == 0  # an account key sees its account only
    live.post_marks(BNBUSDT="400")
    highlighted = page.locator("#events li.liquidation").first
    sync_api.expect(highlighted).to_be_visible()
    sync_api.expect(
        page.locator("#events li.liquidation", has_text="Liquidation triggered")
    ).to_have_count(1)
    sync_api.expect(page.get_by_test_id("liquidated-gambler")).to_have_text("liquidated ×1")
    assert "trader" not in page.content()


def test_the_operator_page_picks_up_an_account_opened_after_it_loaded(
    page: Any, live: Running
) -> None:
    open_dashboard(page, live)
    assert page.get_by_test_id("card-latecomer").count() == 0
    live.open_account("latecomer", "250")
    sync_api.expect(page.get_by_test_id("card-latecomer")).to_be_visible()
    sync_api.expect(page.get_by_test_id("card-latecomer")).to_contain_text("250.00")
