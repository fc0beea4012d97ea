"""The HTTP routes (``/v1``): thin handlers that parse, call the engine host and render.

Who may call what (the key goes in ``Authorization: Bearer KEY``):

* operator only: open accounts and issue their keys, post marks, settle funding, seed the
  insurance fund, report fills (external matching), list accounts, engine status;
* the operator or the account's own key: everything under ``/v1/accounts/{account}/``;
* any valid key: marks and their history, the stateless risk and scenario queries.

Commands are validated at the edge by the engine's own validator (a bad field is a 422 and
nothing is logged), then queued to the single writer; the response is the engine's result.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from crossmargin.app.writer import Engine
from crossmargin.core.errors import InvalidInput, NotFound
from crossmargin.core.numbers import parse_positive
from crossmargin.core.portfolio import parse_portfolio, report_json
from crossmargin.core.risk import account_report
from crossmargin.service import schemas
from crossmargin.service.context import Anyone, Context, Operator, Owned
from crossmargin.service.errors import rejection_status, with_field
from crossmargin.service.handlers import (
    REFUSALS,
    command_from,
    parse_shocks,
    run_command,
    scenario_report,
)
from crossmargin.service.wire import parse_body, parse_object, plain

MAX_PORTFOLIOS = 100
MAX_POSITIONS = 200
router = APIRouter(prefix="/v1", responses=REFUSALS)


# -- operator ---------------------------------------------------------------------------------


@router.get("/engine", tags=["operator"], summary="engine status: log position, state hash, feed")
async def engine_status(context: Context, _: Operator) -> dict[str, Any]:
    def read(engine: Engine) -> dict[str, Any]:
        return {
            "venue": engine.config["venue"],
            "symbols": list(engine.config["symbols"]),
            "matching": engine.matching,
            "last_seq": engine.last_seq,
            "state_hash": engine.state_hash(),
            "accounts": len(engine.state.accounts),
            "insurance_fund": engine.state.ledgers.insurance_fund,
        }

    status = await context.host.read(read)
    status["feed"] = context.feed.status() if context.feed is not None else None
    return plain(status)  # type: ignore[no-any-return]


@router.get("/accounts", tags=["operator"], summary="every account id")
async def list_accounts(context: Context, _: Operator) -> dict[str, Any]:
    accounts = await context.host.read(lambda engine: sorted(engine.state.accounts))
    return {"accounts": accounts}


@router.post(
    "/accounts",
    tags=["operator"],
    summary="open an account; the response carries its key (shown once)",
    openapi_extra=schemas.body(schemas.OPEN_ACCOUNT),
)
async def open_account(request: Request, context: Context, _: Operator) -> JSONResponse:
    body = parse_object(await request.body())
    account = body.get("account")
    if not isinstance(account, str) or not _valid_account(account):
        raise InvalidInput(
            "account", "1-64 letters, digits, '_', '.' or '-', starting alphanumeric"
        )
    command = command_from(body, "open_account")
    result = await context.host.submit(command)
    status = rejection_status(result)
    if status == 200 and not result.get("duplicate"):
        result = {**result, "account": account, "key": context.keys.issue(account)}
    return JSONResponse(with_field(result), status_code=status)


def _valid_account(account: str) -> bool:

    return re.fullmatch(schemas.ACCOUNT_PATTERN, account) is not None


@router.post(
    "/accounts/{account}/keys",
    tags=["operator"],
    summary="issue a new key for an account (its previous key stops working)",
)
async def issue_key(account: Owned, context: Context, who: Operator) -> dict[str, Any]:
    exists = await context.host.read(lambda engine: account in engine.state.accounts)
    if not exists:
        raise NotFound("account", account)
    return {"account": account, "key": context.keys.issue(account)}


@router.post(
    "/marks",
    tags=["operator"],
    summary="post mark prices (liquidations and margin calls run after each)",
    openapi_extra=schemas.body(schemas.MARKS),
)
async def post_marks(request: Request, context: Context, _: Operator) -> JSONResponse:
    body = parse_object(await request.body())
    unknown = sorted(set(body) - {"prices", "command_id"})
    if unknown:
        raise InvalidInput(unknown[0], "unknown field")
    prices = body.get("prices")
    if not isinstance(prices, dict) or not prices:
        raise InvalidInput("prices", "expected an object of symbol: price, with at least one")
    base = body["command_id"] if "command_id" in body else f"http-{uuid.uuid4().hex}"
    if not isinstance(base, str) or not base or len(base) > 100:
        raise InvalidInput("command_id", "a non-empty string of at most 100 characters")
    commands = []
    for symbol, price in sorted(prices.items()):
        if symbol not in context.symbols:
            raise InvalidInput(f"prices.{symbol}", "is not traded on this engine")
        parse_positive(price, f"prices.{symbol}")
        commands.append(
            {
                "type": "update_mark",
                "command_id": f"{base}.{symbol}",
                "symbol": symbol,
                "price": price,
            }
        )
    results = await context.host.submit_many(commands)
    by_symbol = {c["symbol"]: r for c, r in zip(commands, results, strict=True)}
    status = max((rejection_status(r) for r in results), default=200)
    return JSONResponse({"results": by_symbol}, status_code=status)


@router.post(
    "/funding",
    tags=["operator"],
    summary="settle a funding rate on a symbol",
    openapi_extra=schemas.body(schemas.FUNDING),
)
async def settle_funding(request: Request, context: Context, _: Operator) -> JSONResponse:
    return await run_command(
        context, command_from(parse_object(await request.body()), "settle_funding")
    )


@router.post(
    "/insurance-fund",
    tags=["operator"],
    summary="pay money into the insurance fund",
    openapi_extra=schemas.body(schemas.AMOUNT),
)
async def seed_insurance_fund(request: Request, context: Context, _: Operator) -> JSONResponse:
    body = parse_object(await request.body())
    return await run_command(context, command_from(body, "seed_insurance_fund"))


@router.post(
    "/fills",
    tags=["operator"],
    summary="report a fill of a resting order (external matching only)",
    openapi_extra=schemas.body(schemas.FILL),
)
async def report_fill(request: Request, context: Context, _: Operator) -> JSONResponse:
    return await run_command(
        context, command_from(parse_object(await request.body()), "report_fill")
    )


# -- anyone with a key ------------------------------------------------------------------------


@router.get("/me", tags=["market"], summary="who this key is: the operator or one account")
async def whoami(who: Anyone) -> dict[str, Any]:
    return {"operator": who.operator, "account": who.account}


@router.get("/marks", tags=["market"], summary="the latest mark of every symbol")
async def get_marks(context: Context, _: Anyone) -> dict[str, Any]:
    return {"symbols": list(context.symbols), "marks": context.host.prices.latest()}


@router.get("/marks/{symbol}/history", tags=["market"], summary="a symbol's recent marks")
async def mark_history(
    symbol: Annotated[str, PathParam(min_length=1, max_length=32)],
    context: Context,
    _: Anyone,
    limit: Annotated[int, Query(ge=1, le=20_000)] = 5_000,
) -> dict[str, Any]:
    if symbol not in context.symbols:
        raise NotFound("symbol", symbol)
    points = list(context.host.prices.history.get(symbol, ()))[-limit:]
    return {"symbol": symbol, "points": [{"time": t, "price": p} for t, p in points]}


@router.post(
    "/risk",
    tags=["risk"],
    summary="the `crossmargin risk` contract: a portfolio (or a list) in, its report out",
    openapi_extra=schemas.body(schemas.PORTFOLIO),
)
async def risk(request: Request, _: Anyone) -> Any:
    document = parse_body(await request.body())
    return await asyncio.to_thread(_each, document, _report)


@router.post(
    "/scenario",
    tags=["risk"],
    summary="the `crossmargin scenario` contract: a portfolio and shocks in, both reports out",
    openapi_extra=schemas.body(schemas.PORTFOLIO_SCENARIO),
)
async def scenario(request: Request, _: Anyone) -> dict[str, Any]:
    body = parse_object(await request.body())
    shocks = parse_shocks({k: v for k, v in body.items() if k != "portfolio"}, allowed={"shocks"})
    if "portfolio" not in body:
        raise InvalidInput("portfolio", "is required")

    def run() -> dict[str, Any]:
        try:
            book = parse_portfolio(_bounded(body["portfolio"]))
        except InvalidInput as error:
            raise InvalidInput(_prefixed("portfolio", error.field), error.problem) from None
        return scenario_report(book, shocks)

    return await asyncio.to_thread(run)


def _bounded(item: Any) -> Any:
    positions = item.get("positions") if isinstance(item, dict) else None
    if isinstance(positions, list) and len(positions) > MAX_POSITIONS:
        raise InvalidInput("positions", f"at most {MAX_POSITIONS} positions per portfolio")
    return item


def _report(item: Any) -> dict[str, Any]:
    return report_json(account_report(parse_portfolio(_bounded(item))))


def _prefixed(prefix: str, field: str) -> str:
    if not field:
        return prefix
    return f"{prefix}{field}" if field.startswith("[") else f"{prefix}.{field}"


def _each(document: Any, build: Callable[[Any], dict[str, Any]]) -> Any:
    """One portfolio, or each of a list (errors prefixed with the index), like the CLI."""
    if not isinstance(document, list):
        return build(document)
    if len(document) > MAX_PORTFOLIOS:
        raise InvalidInput("body", f"at most {MAX_PORTFOLIOS} portfolios per request")
    results = []
    for index, item in enumerate(document):
        try:
            results.append(build(item))
        except InvalidInput as error:
            raise InvalidInput(_prefixed(f"[{index}]", error.field), error.problem) from None
    return results
