"""Security headers on every HTTP response: a Content-Security-Policy, no framing, no sniffing.

The dashboard is plain files under ``/static`` with no inline script or style, so its policy
allows only this origin: scripts, styles, images (plus the ``data:`` favicon), and fetch and
WebSocket connections (``connect-src 'self'`` covers ``ws://`` and ``wss://`` to the same host).
One exception, by hash: the vendored lightweight-charts 4.2.3 adds a ``<style>`` element for
its TradingView attribution logo (TradingView's NOTICE asks for that attribution); ``CHART_LOGO_STYLE`` is
the SHA-256 of exactly that text, so a library upgrade that changes it shows up as a CSP
violation in the browser tests.
The same strict policy goes on the API's JSON responses, where it costs nothing.

FastAPI's interactive docs (``/docs``) are a page FastAPI writes with an inline script that
starts Swagger UI (its files are served from this origin, ``/docs-assets``, so the page works
offline); it gets a policy of its own that allows that inline script and nothing from another
origin, still with ``frame-ancestors 'none'``. Every response, whatever its policy, carries
``X-Frame-Options: DENY`` (the pre-CSP way to refuse framing, against clickjacking),
``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` (a page's address
never leaves in a Referer header). A header the route set itself is left as it is.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``: it only rewrites the
``http.response.start`` message, so streamed responses and WebSockets pass through untouched.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CHART_LOGO_STYLE = "'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='"
DASHBOARD_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        f"style-src 'self' {CHART_LOGO_STYLE}",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
DOCS_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
DOCS_PATHS = ("/docs",)
COMMON = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


def policy_for(path: str) -> str:
    """The Content-Security-Policy for a request path."""
    if any(path == docs or path.startswith(docs + "/") for docs in DOCS_PATHS):
        return DOCS_POLICY
    return DASHBOARD_POLICY


class SecurityHeaders:
    """ASGI middleware adding the headers above to every HTTP response of ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = (
            (b"content-security-policy", policy_for(str(scope.get("path", ""))).encode()),
            *COMMON,
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {bytes(name).lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    app.add_middleware(SecurityHeaders)
