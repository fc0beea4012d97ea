"""The stateless calculators (``crossmargin risk`` / ``scenario``) in a separate process.

Risk over a client's portfolio is pure CPU on Decimals. Run on the engine thread it would delay
every order; run on the event loop or another thread of the server it would still hold the GIL
against them. So it runs in a worker process (:class:`Calculators`, ``spawn``ed on first use),
the request body parsed there too: the server only moves bytes. The worker runs at a lower
scheduling priority (``WORKER_NICENESS``), so where cores are short the orders come first.
(``spawn`` starts a fresh
interpreter, which imports the main module again: a script that embeds the app must keep its
start under ``if __name__ == "__main__":``, as any multiprocessing program must.)

Limits keep the worst admitted request well under a second of one core (the body limit of
``service.limits`` bounds the rest): ``MAX_PORTFOLIOS`` per request, ``MAX_POSITIONS`` per
portfolio, ``MAX_INSTRUMENTS`` custom instruments per portfolio with at most ``MAX_BRACKETS``
brackets each, ``MAX_MARKS`` marks, ``MAX_SHOCKS`` shocks.

A job returns ``("ok", JSON text)`` or ``("invalid", field, problem)``: an ``InvalidInput`` does
not cross a process boundary intact (its pickle replays ``__init__`` with one argument).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from crossmargin.contract.portfolio import parse_portfolio, report_json
from crossmargin.core.errors import InvalidInput, StorageError
from crossmargin.core.json_input import load_json
from crossmargin.core.risk import Book, account_report
from crossmargin.core.scenario import Shock, apply_shocks, parse_shock
from crossmargin.service.wire import dumps

LOG = logging.getLogger("crossmargin.service")
MAX_PORTFOLIOS = 20
MAX_POSITIONS = 50
MAX_INSTRUMENTS = 50
MAX_BRACKETS = 32
MAX_MARKS = 100
MAX_SHOCKS = 64
MAX_RISK_BODY_BYTES = 256 * 1024
ARITHMETIC_PROBLEM = "these numbers cannot be valued together"
Outcome = tuple[str, ...]


# -- the jobs (run in the worker) ----------------------------------------------------------------


def _prefixed(prefix: str, field: str) -> str:
    if not field:
        return prefix
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"


def _at_most(value: object, limit: int, field: str, what: str) -> None:
    if isinstance(value, (list, dict)) and len(value) > limit:
        raise InvalidInput(field, f"at most {limit} {what}")


def bounded_portfolio(item: Any) -> Book:
    """``parse_portfolio`` after the size limits, checked on the raw document first."""
    if isinstance(item, dict):
        _at_most(item.get("positions"), MAX_POSITIONS, "positions", "positions per portfolio")
        _at_most(item.get("mark_prices"), MAX_MARKS, "mark_prices", "marks per portfolio")
        instruments = item.get("instruments")
        _at_most(instruments, MAX_INSTRUMENTS, "instruments", "instruments per portfolio")
        if isinstance(instruments, dict):
            for symbol, spec in instruments.items():
                if isinstance(spec, dict):
                    _at_most(
                        spec.get("brackets"),
                        MAX_BRACKETS,
                        f"instruments.{symbol}.brackets",
                        "brackets per instrument",
                    )
    return parse_portfolio(item)


def parse_shocks(body: dict[str, Any], *, allowed: set[str]) -> list[Shock]:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidInput(unknown[0], "unknown field")
    raw = body.get("shocks")
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("shocks", "a list of at least one shock like ETHUSDT=-20%")
    if len(raw) > MAX_SHOCKS:
        raise InvalidInput("shocks", f"at most {MAX_SHOCKS} shocks")
    shocks = []
    for index, text in enumerate(raw):
        if not isinstance(text, str):
            raise InvalidInput(f"shocks[{index}]", "expected a string like ETHUSDT=-20%")
        shocks.append(parse_shock(text, f"shocks[{index}]"))
    return shocks


def scenario_report(book: Book, shocks: list[Shock]) -> dict[str, Any]:
    for index, shock in enumerate(shocks):
        if shock.symbol not in book.marks:
            raise InvalidInput(f"shocks[{index}]", f"no {shock.symbol} position to shock")
    shocked = apply_shocks(book, shocks)
    return {
        "shocks": [shock.describe() for shock in shocks],
        "current": report_json(account_report(book)),
        "shocked": report_json(account_report(shocked)),
    }


def _risk(raw: bytes) -> Any:
    document = load_json(raw, max_bytes=MAX_RISK_BODY_BYTES)
    if not isinstance(document, list):
        return report_json(account_report(bounded_portfolio(document)))
    if len(document) > MAX_PORTFOLIOS:
        raise InvalidInput("body", f"at most {MAX_PORTFOLIOS} portfolios per request")
    results = []
    for index, item in enumerate(document):
        try:
            results.append(report_json(account_report(bounded_portfolio(item))))
        except InvalidInput as error:
            raise InvalidInput(_prefixed(f"[{index}]", error.field), error.problem) from None
    return results


def _scenario(raw: bytes) -> Any:
    body = load_json(raw, max_bytes=MAX_RISK_BODY_BYTES)
    if not isinstance(body, dict):
        raise InvalidInput("body", "expected a JSON object")
    shocks = parse_shocks({k: v for k, v in body.items() if k != "portfolio"}, allowed={"shocks"})
    if "portfolio" not in body:
        raise InvalidInput("portfolio", "is required")
    try:
        book = bounded_portfolio(body["portfolio"])
    except InvalidInput as error:
        raise InvalidInput(_prefixed("portfolio", error.field), error.problem) from None
    return scenario_report(book, shocks)


def _outcome(job: Callable[..., Any], *args: Any) -> Outcome:
    try:
        return ("ok", dumps(job(*args)))
    except InvalidInput as error:
        return ("invalid", error.field, error.problem)
    except ArithmeticError as error:
        # the limits on every input make this unreachable as far as we know; should a
        # combination of numbers still overflow, the caller hears so, not a 500
        return ("invalid", "body", f"{ARITHMETIC_PROBLEM} ({type(error).__name__})")


def risk_job(raw: bytes) -> Outcome:
    return _outcome(_risk, raw)


def scenario_job(raw: bytes) -> Outcome:
    return _outcome(_scenario, raw)


def account_scenario_job(book: Book, shocks: list[Shock]) -> Outcome:
    return _outcome(scenario_report, book, shocks)


# -- the pool (in the server) -------------------------------------------------------------------

WORKER_NICENESS = 10


def _lower_priority() -> None:
    """In each worker: where cores are short, the scheduler serves the server (orders) first."""
    if hasattr(os, "nice"):
        os.nice(WORKER_NICENESS)


class Calculators:
    """A process pool for the jobs above, started on first use, replaced if it breaks."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _running(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_lower_priority,
            )
        return self._pool

    async def run(self, job: Callable[..., Outcome], *args: Any) -> str:
        """The job's JSON text; its InvalidInput re-raised here."""
        loop = asyncio.get_running_loop()
        try:
            outcome = await loop.run_in_executor(self._running(), job, *args)
        except BrokenProcessPool:
            LOG.error("a risk calculator process died; starting another")
            broken, self._pool = self._pool, None
            if broken is not None:
                broken.shutdown(wait=False, cancel_futures=True)
            raise StorageError("the risk calculator stopped; retry the request") from None
        if outcome[0] == "invalid":
            if outcome[2].startswith(ARITHMETIC_PROBLEM):
                LOG.warning("a risk request was refused on an arithmetic error: %s", outcome[2])
            raise InvalidInput(outcome[1], outcome[2])
        return outcome[1]

    def stop(self) -> None:
        """Stop the workers (blocking: call it from a thread)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
