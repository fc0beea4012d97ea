"""The ASGI application: routes, WebSocket streams, the dashboard, and the engine's lifecycle.

``create_app`` wires an :class:`EngineHost` (opened on startup: the log is replayed, so a restart
resumes where it stopped), the key ring, an optional background price feed and an optional
``setup`` coroutine (the demo opens its accounts there) into one FastAPI app. OpenAPI at
``/openapi.json`` and ``/docs``; the dashboard at ``/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from crossmargin import __version__
from crossmargin.service import accounts, api, errors, headers, ws
from crossmargin.service.context import Feed, ServiceContext
from crossmargin.service.host import EngineHost, EngineSettings
from crossmargin.service.keys import KeyRing

LOG = logging.getLogger("crossmargin.service")
Setup = Callable[[ServiceContext], Awaitable[None]]


def static_folder() -> Path:
    return Path(str(resources.files("crossmargin.service").joinpath("static")))


def create_app(
    settings: EngineSettings,
    keys: KeyRing,
    *,
    feed: Feed | None = None,
    setup: Setup | None = None,
) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        host = EngineHost(settings)
        await host.start()
        symbols = await host.read(lambda engine: tuple(sorted(engine.state.instruments)))
        context = ServiceContext(host=host, keys=keys, symbols=symbols, feed=feed)
        app.state.service = context
        task: asyncio.Task[None] | None = None
        try:
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
            await host.stop()

    app = FastAPI(
        title="crossmargin",
        version=__version__,
        summary="Margin and liquidation engine: cross and isolated margin, venue-accurate.",
        lifespan=lifespan,
    )
    errors.install(app)
    headers.install(app)
    app.include_router(api.router)
    app.include_router(accounts.router)
    app.include_router(ws.router)
    folder = static_folder()
    app.mount("/static", StaticFiles(directory=folder), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(folder / "index.html", media_type="text/html")

    return app
