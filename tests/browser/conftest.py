"""What the browser tests share: the system Chromium, pages that fail on errors and CSP
violations, and screenshots in artifacts/browser/ (kept by CI as test artifacts)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.contract.backends import in_ci

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
DESKTOP = {"width": 1440, "height": 1000}
PHONE = {"width": 390, "height": 844}

# Recorded in the page before any of its own scripts run: every CSP violation it reports.
WATCH_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${e.sourceFile}:${e.lineNumber})`);
});
"""

sync_api = pytest.importorskip("playwright.sync_api")


# Module scope, not session: sync Playwright keeps an event loop running in this thread while it
# is open, and later tests that call asyncio.run() would fail.
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


class Pages:
    """Opens pages; at teardown each is screenshotted, and none may have had a script error,
    a console error or a CSP violation."""

    def __init__(self, browser: Any, name: str) -> None:
        self.browser = browser
        self.name = name
        self.opened: list[tuple[Any, Any, str, list[str]]] = []

    def open(self, viewport: dict[str, int] = DESKTOP, label: str = "") -> Any:
        context = self.browser.new_context(viewport=viewport)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.add_init_script(WATCH_CSP)
        problems: list[str] = []
        page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        page.on("console", lambda message: _console(message, problems))
        suffix = label or f"{viewport['width']}px"
        self.opened.append((context, page, f"{self.name}-{suffix}", problems))
        return page

    def forgive(self, page: Any, fragment: str) -> None:
        """Drop the problems so far that mention ``fragment``: ones the test caused on purpose."""
        for _, opened, _, problems in self.opened:
            if opened is page:
                problems[:] = [p for p in problems if fragment not in p]
        page.evaluate("() => { window.__csp = []; }")

    def close(self) -> list[str]:
        found = []
        for context, page, name, problems in self.opened:
            try:
                violations = page.evaluate("window.__csp || []")
                page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
            finally:
                context.close()
            found += problems + [f"CSP: {v}" for v in violations]
        return found


def _console(message: Any, problems: list[str]) -> None:
    # a refusal the page shows (a 409 for a mode switch, say) is logged by Chromium as a failed
    # resource load; that is the API answering, not the page failing
    refused = message.text.startswith(
        "Failed to load resource: the server responded with a status of 4"
    )
    if message.type == "error" and not refused:
        problems.append(f"console error: {message.text}")


@pytest.fixture
def pages(browser: Any, request: pytest.FixtureRequest) -> Iterator[Pages]:
    opened = Pages(browser, request.node.name)
    yield opened
    problems = opened.close()
    assert problems == [], problems


def slide(page: Any, symbol: str, percent: int) -> None:
    """Move a what-if slider as a person would (the input event fires)."""
    page.get_by_test_id(f"shock-{symbol}").evaluate(
        "(input, value) => { input.value = String(value); input.dispatchEvent(new Event('input')); }",
        percent,
    )


OpenPage = Callable[..., Any]


# Run in the page: what a reader would see as broken. Every panel and card on screen and apart
# from the others; no sideways scrolling; no text cut off (ellipsis, or sticking out of its
# panel); no table that needs a sideways scroll; no number smaller than 11px.
LAYOUT_PROBLEMS = """() => {
  const problems = [];
  const width = window.innerWidth;
  const name = (node) => node.dataset.testid || node.className || node.tagName;
  const page = document.documentElement.scrollWidth;
  if (page > width) problems.push(`the page scrolls sideways: ${page}px wide in ${width}px`);
  const shown = (node) => node.getClientRects().length > 0 && getComputedStyle(node).visibility !== "hidden";
  const boxes = [...document.querySelectorAll(".panel, .card")].filter(shown)
    .map((node) => [node, node.getBoundingClientRect()]);
  for (const [node, r] of boxes) {
    if (r.left < -0.5 || r.right > width + 0.5) problems.push(`${name(node)} leaves the screen`);
  }
  for (let i = 0; i < boxes.length; i += 1) {
    for (let j = i + 1; j < boxes.length; j += 1) {
      const [a, ra] = boxes[i], [b, rb] = boxes[j];
      if (a.contains(b) || b.contains(a)) continue;
      const across = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
      const down = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
      if (across > 1 && down > 1) problems.push(`${name(a)} overlaps ${name(b)}`);
    }
  }
  for (const scroller of document.querySelectorAll(".table-scroll")) {
    if (shown(scroller) && scroller.scrollWidth > scroller.clientWidth + 1) {
      problems.push(`a table needs a sideways scroll: ${scroller.scrollWidth} in ${scroller.clientWidth}`);
    }
  }
  for (const node of document.querySelectorAll("header *, .panel *, .card *")) {
    if (!shown(node) || node.closest("#chart") || !node.textContent.trim()) continue;
    const own = [...node.childNodes].some((c) => c.nodeType === 3 && c.textContent.trim());
    if (!own) continue;
    const text = node.textContent.trim().slice(0, 40);
    const style = getComputedStyle(node);
    if (style.overflow !== "visible" && node.scrollWidth > node.clientWidth + 1 && style.display !== "inline") {
      problems.push(`cut off: "${text}"`);
    }
    const box = node.closest(".panel, .card, header").getBoundingClientRect();
    for (const r of node.getClientRects()) {
      if (r.left < box.left - 1 || r.right > box.right + 1) { problems.push(`sticks out of its panel: "${text}"`); break; }
    }
    if (/[0-9]/.test(text) && parseFloat(style.fontSize) < 11) problems.push(`too small to read: "${text}"`);
  }
  return problems;
}"""


def layout_problems(page: Any) -> list[str]:
    problems: list[str] = page.evaluate(LAYOUT_PROBLEMS)
    return problems


def fully_shown(locator: Any) -> bool:
    """The element is entirely on screen and inside its list's scrolled view: readable as is."""
    return bool(
        locator.evaluate(
            """(node) => {
              const r = node.getBoundingClientRect();
              const list = node.closest("ol, ul") || document.body;
              const box = list.getBoundingClientRect();
              return r.height > 0 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1
                && r.top >= 0 && r.bottom <= window.innerHeight;
            }"""
        )
    )
