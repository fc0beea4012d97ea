"""``crossmargin serve``: the HTTP/WebSocket service and its dashboard.

Defaults are embedded: the event log is ``./var/crossmargin.db`` (SQLite) unless
``--database``/``CROSSMARGIN_DATABASE_URL`` names another (``postgresql://...`` uses PostgreSQL);
keys are kept hashed in ``./var/keys.json``. A restart replays the log and resumes.

``--demo`` starts from a fresh ``./var/demo.db``, opens the worked example in cross and in
isolated, replays the May 2021 crash, and prints the dashboard's URL and the demo keys.
"""

from __future__ import annotations

import argparse
import gc
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crossmargin.cli.engine_cmd import MATCHING_HELP
from crossmargin.cli.instance import DemoLock, bind_port
from crossmargin.core.errors import InvalidInput

if TYPE_CHECKING:  # the service needs the ``service`` extra; import it only when serving
    from crossmargin.service.context import Feed, ServiceContext

DATABASE_ENV = "CROSSMARGIN_DATABASE_URL"
OPERATOR_KEY_ENV = "CROSSMARGIN_OPERATOR_KEY"
# The serving process's collector thresholds (Python's defaults are 700, 10, 10); see tune_collector.
GC_THRESHOLDS = (20_000, 20, 20)


def tune_collector() -> None:
    """Once the engine is loaded: what start-up built (modules, bracket tables, the replayed
    state) lives as long as the process, so it is frozen out of every collection; and collections
    come less often. A full collection walks every object the process keeps (the log's indexes
    grow with it) and paused every request for 60-130 ms, many times a minute under load: the
    service benchmark's p99. Reference counting still frees acyclic objects at once, and cycles
    wait at most 20,000 allocations. The serving process owns this; ``create_app`` does not touch
    the collector of a process that embeds it."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def after_start(
    setup: Callable[[ServiceContext], Awaitable[None]] | None,
) -> Callable[[ServiceContext], Awaitable[None]]:
    """The app's start-up hook for ``serve``: the collector, then the demo's ``setup`` (if any),
    which prints the dashboard's URL as the last thing before the server accepts connections."""

    async def started(context: ServiceContext) -> None:
        tune_collector()
        if setup is not None:
            await setup(context)

    return started


def _symbols(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def _start(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("--replay-from", f"not an ISO date-time: {text!r}") from None
    return stamp if stamp.utcoffset() is not None else stamp.replace(tzinfo=UTC)


def _feed(args: argparse.Namespace, symbols: tuple[str, ...]) -> Feed | None:
    from crossmargin.service.feeds import LiveFeed, ReplayFeed
    from crossmargin.sim.feed import ccxt_exchange

    if args.feed == "replay":
        return ReplayFeed(args.episode, symbols, speed=args.speed, start=_start(args.replay_from))
    if args.feed == "live":
        if not args.exchange:
            raise InvalidInput("--exchange", "the live feed needs a ccxt exchange id")
        mapping = {s: f"{s.removesuffix('USDT')}/USDT:USDT" for s in symbols}
        return LiveFeed(ccxt_exchange(args.exchange), mapping, poll_seconds=args.poll_seconds)
    return None


def _shown(database: str) -> str:
    """The database URL without its password, for printing."""
    scheme, separator, rest = database.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not separator or not at or ":" not in credentials:
        return database
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def _fresh(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            candidate.unlink()


def cmd_serve(args: argparse.Namespace) -> str:
    try:
        import uvicorn
    except ImportError:
        raise InvalidInput(
            "serve", "the service needs its extra: pip install 'crossmargin[service]'"
        ) from None

    from crossmargin.app.writer import DEFAULT_SYMBOLS
    from crossmargin.service import demo

    var = Path(args.var)
    symbols = _symbols(args.symbols) if args.symbols else DEFAULT_SYMBOLS
    database = args.database or os.environ.get(DATABASE_ENV, "").strip()
    lock = DemoLock(var)
    if args.demo:
        if args.database:
            raise InvalidInput("--database", "the demo always runs on a fresh ./var/demo.db")
        holder = lock.holder()
        if holder is not None:
            raise lock.refusal(holder)
        symbols = demo.SYMBOLS
        args.feed, args.episode = "replay", demo.EPISODE
        args.replay_from = args.replay_from or demo.DEMO_START.isoformat()
    feed = _feed(args, symbols)
    # Claim the port before anything is written: a key "shown once" must never be printed by a
    # server that then cannot start.
    sock = bind_port(args.host, args.port)
    port = int(sock.getsockname()[1])  # the one chosen when --port is 0
    try:
        try:
            var.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InvalidInput("--var", f"cannot create {var}: {error.strerror}") from None
        if args.demo:
            lock.acquire()  # held until this process ends; a second demo here is refused
        app = _prepare(args, var, database, symbols, feed, port=port)
        from crossmargin.service.app import WS_MAX_MESSAGE_BYTES

        config = uvicorn.Config(
            app,
            host=args.host,
            port=port,
            log_level=args.log_level,
            ws_max_size=WS_MAX_MESSAGE_BYTES,
        )
        server = uvicorn.Server(config)
        server.run(sockets=[sock])
        if not server.started:
            raise SystemExit(3)  # as uvicorn.run: the app failed to start (its error is logged)
    finally:
        sock.close()
        lock.release()
    return ""


def _prepare(
    args: argparse.Namespace,
    var: Path,
    database: str,
    symbols: tuple[str, ...],
    feed: Feed | None,
    *,
    port: int,
) -> Any:
    """Everything that writes (the demo's fresh log, the key file) and the app; runs only once
    the port is ours (and, for the demo, the folder)."""
    from crossmargin.service import demo
    from crossmargin.service.app import create_app
    from crossmargin.service.binance.credentials import MASTER_ENV, ExchangeCredentials
    from crossmargin.service.host import EngineSettings
    from crossmargin.service.keys import KeyRing

    key_file = var / "keys.json"
    exchange_keys = var / "exchange-keys.json"  # Binance facade credentials (hashes only)
    setup: Any = None
    printed: list[str] = []
    if args.demo:
        database = str(var / "demo.db")
        key_file = var / "demo-keys.json"
        exchange_keys = var / "demo-exchange-keys.json"
        _fresh(Path(database))
        _fresh(key_file)
        _fresh(exchange_keys)
    database = database or str(var / "crossmargin.db")
    keys = KeyRing(key_file)
    operator_key = keys.ensure_operator(os.environ.get(OPERATOR_KEY_ENV) or None)
    url = f"http://{args.host}:{port}/"
    if operator_key is not None:
        printed.append(f"operator key (shown once; stored hashed in {key_file}): {operator_key}")
    if args.demo:
        from crossmargin.service.feeds import ReplayFeed

        if not isinstance(feed, ReplayFeed):
            raise InvalidInput("--feed", "the demo replays a crash")
        prices = feed.first_prices()

        async def setup(context: ServiceContext) -> None:
            demo_keys = await demo.open_demo(context, prices, feed.first_time())
            lines = [
                "",
                f"crossmargin demo: the worked example at {demo.describe_prices(prices)}",
                f"replaying {feed.episode.title} at {args.speed:g}x from {args.replay_from}",
                f"dashboard: {url}#key={operator_key or '<your operator key>'}",
                *printed,
                *(f"key of {account}: {key}" for account, key in demo_keys.items()),
                f"API docs: {url}docs",
                "",
            ]
            print("\n".join(lines), flush=True)

    else:
        print("\n".join([f"crossmargin serving {_shown(database)} on {url}", *printed]), flush=True)
    settings = EngineSettings(
        database=database,
        schema=args.schema or None,
        venue=args.venue,
        symbols=symbols,
        matching=args.matching,
    )
    credentials = ExchangeCredentials.open(var, os.environ.get(MASTER_ENV), exchange_keys.name)
    return create_app(
        settings, keys, feed=feed, setup=after_start(setup), exchange_credentials=credentials
    )


def register(commands: Any) -> None:
    from crossmargin.core.venues import VENUES
    from crossmargin.sim.episodes import episode_names

    serve = commands.add_parser(
        "serve",
        help="HTTP + WebSocket API and dashboard",
        description="Serve the HTTP and WebSocket API and the dashboard. The log is "
        "./var/crossmargin.db unless --database names another; --demo starts the worked "
        "example on a fresh ./var/demo.db and replays a crash.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=8000,
        help="TCP port to listen on (default %(default)s; 0 picks a free one)",
    )
    serve.add_argument(
        "--database", default="", help=f"SQLite path or postgresql:// URL (or ${DATABASE_ENV})"
    )
    serve.add_argument("--schema", default="", help="PostgreSQL schema of the log (default public)")
    serve.add_argument("--var", default="var", help="folder for the default log and keys")
    serve.add_argument(
        "--venue",
        default="binance-usdm",
        help=f"venue rules: {', '.join(sorted(VENUES))} (default %(default)s; first start only)",
    )
    serve.add_argument("--symbols", default="", help="comma-separated (first start only)")
    serve.add_argument(
        "--matching",
        default="simulated",
        choices=["simulated", "external"],
        help=MATCHING_HELP,
    )
    serve.add_argument(
        "--feed",
        default="none",
        choices=["none", "replay", "live"],
        help="where marks come from besides POST /v1/marks: a bundled crash or a live exchange",
    )
    serve.add_argument(
        "--episode",
        default="may-2021",
        help=f"bundled crash for --feed replay: {', '.join(episode_names())} (default %(default)s)",
    )
    serve.add_argument("--speed", type=float, default=1800.0, help="replay speed x real time")
    serve.add_argument("--replay-from", default=None, help="ISO UTC time to start the replay at")
    serve.add_argument("--exchange", default="", help="ccxt exchange id for --feed live")
    serve.add_argument(
        "--poll-seconds",
        type=float,
        default=5.0,
        help="seconds between two polls of the live feed (default %(default)s)",
    )
    serve.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug", "trace"],
        help="uvicorn's log level (default %(default)s)",
    )
    serve.add_argument("--demo", action="store_true", help="the worked example through a crash")
    serve.set_defaults(run=cmd_serve)
