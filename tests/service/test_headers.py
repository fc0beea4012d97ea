"""Security headers on every kind of response: the dashboard, its files, the API, the docs."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from crossmargin.service.app import static_folder
from crossmargin.service.headers import DASHBOARD_POLICY, DOCS_POLICY, policy_for
from tests.service.server import OPERATOR_KEY, Running, serve


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with serve(str(tmp_path_factory.mktemp("headers") / "log.db")) as server:
        yield server


@pytest.mark.parametrize(
    ("path", "key", "status"),
    [
        ("/", None, 200),
        ("/static/app.js", None, 200),
        ("/static/vendor/lightweight-charts.standalone.production.js", None, 200),
        ("/v1/me", OPERATOR_KEY, 200),
        ("/v1/me", None, 401),
        ("/v1/accounts/nobody", OPERATOR_KEY, 404),
        ("/openapi.json", None, 200),
        ("/no/such/page", None, 404),
    ],
)
def test_every_response_carries_the_security_headers(
    live: Running, path: str, key: str | None, status: int
) -> None:
    with live.client(key) as client:
        response = client.get(path)
    assert response.status_code == status
    assert response.headers["content-security-policy"] == DASHBOARD_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_the_dashboard_policy_allows_this_origin_only_and_no_framing() -> None:
    directives = dict(d.split(" ", 1) for d in DASHBOARD_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["style-src"].startswith("'self' 'sha256-")  # one hashed chart stylesheet
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in DASHBOARD_POLICY


def test_the_hashed_stylesheet_is_the_one_the_vendored_chart_library_adds() -> None:
    library = Path(static_folder() / "vendor" / "lightweight-charts.standalone.production.js")
    styles = re.findall(r'innerText="(a#tv-attr-logo[^"]*)"', library.read_text())
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert f"'sha256-{digest}'" in DASHBOARD_POLICY


def test_the_docs_pages_get_their_own_policy_still_without_framing(live: Running) -> None:
    with live.client(None) as client:
        response = client.get("/docs")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == DOCS_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in DOCS_POLICY
    assert "http" not in DOCS_POLICY  # nothing from another origin: the docs work offline
    assert policy_for("/docs-and-more") == DASHBOARD_POLICY  # a prefix is not a docs page


def test_websockets_pass_through_untouched(live: Running) -> None:
    with connect(f"{live.ws_url}/v1/ws/prices") as socket:
        socket.send(json.dumps({"key": OPERATOR_KEY}))
        assert '"ready"' in socket.recv(timeout=10)
