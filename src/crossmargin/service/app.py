"""The ASGI application: routes, WebSocket streams, the dashboard, and the engine's lifecycle.

``create_app`` wires an :class:`EngineHost` (opened on startup: the log is replayed, so a restart
resumes where it stopped), the key ring, an optional background price feed and an optional
``setup`` coroutine (the demo opens its accounts there) into one FastAPI app, behind the body
limit (``service.limits.BodyLimit``). OpenAPI at ``/openapi.json``; the interactive docs at
``/docs`` are Swagger UI served from the ``swagger-ui-bundle`` package (``/docs-assets``), so
they work offline and the page loads nothing from another host. The dashboard is at ``/``.

A key that is replaced or revoked closes the WebSockets that authenticated with it (the key
ring's revocation listener marks their subscribers; see ``service.ws``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from crossmargin import __version__
from crossmargin.service import accounts, api, binance, errors, headers, ws
from crossmargin.service.context import Feed, ServiceContext
from crossmargin.service.host import EngineHost, EngineSettings
from crossmargin.service.keys import KeyRing
from crossmargin.service.limits import BodyLimit

LOG = logging.getLogger("crossmargin.service")
Setup = Callable[[ServiceContext], Awaitable[None]]
DOCS_ASSETS = "/docs-assets"
# For uvicorn (``uvicorn.run(app, **SERVER_OPTIONS)``): a WebSocket message is at most 64 KiB
# (the first one, the key, is read before anything is known about the client).
WS_MAX_MESSAGE_BYTES = 64 * 1024
SERVER_OPTIONS = {"ws_max_size": WS_MAX_MESSAGE_BYTES}


def static_folder() -> Path:
    return Path(str(resources.files("crossmargin.service").joinpath("static")))


def swagger_folder() -> Path | None:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return Path(str(swagger_ui_path))


def _install_docs(app: FastAPI) -> None:
    folder = swagger_folder()
    if folder is None:
        return  # without the package there are no docs to serve; /openapi.json remains
    app.mount(DOCS_ASSETS, StaticFiles(directory=folder), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="crossmargin API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            swagger_ui_parameters={"validatorUrl": None},
        )


def create_app(
    settings: EngineSettings,
    keys: KeyRing,
    *,
    feed: Feed | None = None,
    setup: Setup | None = None,
    exchange_credentials: binance.ExchangeCredentials | None = None,
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        host = EngineHost(settings)
        await host.start()
        symbols = await host.read(lambda model: tuple(sorted(model.instruments)))
        context = ServiceContext(host=host, keys=keys, symbols=symbols, feed=feed)
        app.state.service = context
        loop = asyncio.get_running_loop()

        def revoked(hashes: frozenset[str]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: no socket is left
                loop.call_soon_threadsafe(host.hub.revoke, hashes)

        stop_listening = keys.on_revoke(revoked)
        task: asyncio.Task[None] | None = None
        try:
            await facade.start(context)
            if setup is not None:
                await setup(context)
            if feed is not None:
                task = asyncio.create_task(feed.run(host), name="price-feed")
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await facade.stop()
            stop_listening()
            await asyncio.to_thread(context.calculators.stop)
            await host.stop()

    app = FastAPI(
        title="crossmargin",
        version=__version__,
        summary="Margin and liquidation engine: cross and isolated margin, venue-accurate.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    app.add_middleware(BodyLimit)
    headers.install(app)
    app.include_router(api.router)
    app.include_router(accounts.router)
    app.include_router(ws.router)
    facade = binance.install(app, exchange_credentials)  # /fapi: docs/binance-api.md
    _install_docs(app)
    folder = static_folder()
    app.mount("/static", StaticFiles(directory=folder), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(folder / "index.html", media_type="text/html")

    return app
