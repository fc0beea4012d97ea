"""The dashboard under its security headers, in a real browser: it works with the policy on
(every page of the browser tests fails on a CSP violation), the policy stops injected inline
script, and another site cannot frame it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, Pages, slide, sync_api
from tests.browser.test_dashboard import WORKED_EXAMPLE, book
from tests.service.server import OPERATOR_KEY, Running, serve

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with serve(str(tmp_path_factory.mktemp("security") / "log.db")) as server:
        server.post_marks(ETHUSDT="2000", BTCUSDT="40000", BNBUSDT="500")
        book(server, "trader", WORKED_EXAMPLE, "cross")
        yield server


def test_the_page_works_under_its_policy_and_the_policy_blocks_inline_script(
    pages: Pages, live: Running
) -> None:
    page = pages.open(DESKTOP)
    response = page.goto(f"{live.url}/#key={OPERATOR_KEY}")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_test_id("card-trader").click()
    slide(page, "ETHUSDT", -20)  # fetch, WebSocket, chart, what-if: all under the policy
    sync_api.expect(page.get_by_test_id("whatif-verdict")).to_have_text("Survives")
    page.get_by_test_id("tab-BTCUSDT").click()
    live.post_marks(BTCUSDT="40100")
    sync_api.expect(page.get_by_test_id("chart")).to_have_attribute("data-symbol", "BTCUSDT")
    assert page.evaluate("window.__csp") == []

    # markup injected into the page cannot run script: the handler is refused, and reported
    page.evaluate(
        """() => document.body.insertAdjacentHTML(
             "beforeend", '<img src="data:," onload="window.__ran = true">')"""
    )
    page.wait_for_function("() => window.__csp.length > 0")
    assert page.evaluate("window.__ran") is None
    assert any("script-src" in v for v in page.evaluate("window.__csp"))
    pages.forgive(page, "inline event handler")  # caused on purpose: not a failure of the page
    live.post_marks(BTCUSDT="40000")


def test_another_site_cannot_frame_the_dashboard(browser: Any, live: Running) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content(f'<iframe src="{live.url}/" width="600" height="400"></iframe>')
        page.wait_for_timeout(1000)
        frame = page.frames[1]
        assert frame.url != f"{live.url}/"  # the browser refused to show it
        assert frame.locator("#accounts").count() == 0
    finally:
        context.close()
