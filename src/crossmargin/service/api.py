"""The HTTP routes (``/v1``): thin handlers that parse, call the engine host and render.

Who may call what (the key goes in ``Authorization: Bearer KEY``):

* operator only: open accounts, issue and revoke their keys, post marks, settle funding, seed
  the insurance fund, report fills (external matching), list accounts, engine status;
* the operator or the account's own key: everything under ``/v1/accounts/{account}/``;
* any valid key: marks and their history, the stateless risk and scenario queries.

Commands are validated at the edge by the engine's own validator (a bad field is a 422 and
nothing is logged), then queued to the single writer under the key's principal; the response is
the engine's result. The risk and scenario calculators run in a worker process behind a per-key
gate (``service.compute``, ``service.limits``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from crossmargin.app.queries import ReadModel
from crossmargin.core.errors import NotFound
from crossmargin.core.ids import parse_id
from crossmargin.service import schemas
from crossmargin.service.compute import risk_job, scenario_job
from crossmargin.service.context import Anyone, Context, Expensive, Operator, Owned
from crossmargin.service.errors import rejection_status, with_field
from crossmargin.service.handlers import BUSY, REFUSALS, command_from, run_command
from crossmargin.service.wire import parse_object, plain

router = APIRouter(prefix="/v1", responses=REFUSALS)


# -- operator ---------------------------------------------------------------------------------


@router.get("/engine", tags=["operator"], summary="engine status: log position, state hash, feed")
async def engine_status(context: Context, _: Operator) -> dict[str, Any]:
    def read(model: ReadModel) -> dict[str, Any]:
        return {
            "venue": model.venue,
            "symbols": list(model.symbols),
            "matching": model.matching,
            "last_seq": model.last_seq,
            "state_hash": model.state_hash(),
            "accounts": len(model.accounts),
            "insurance_fund": model.ledgers.insurance_fund,
        }

    status = await context.host.read(read)
    status["feed"] = context.feed.status() if context.feed is not None else None
    return plain(status)  # type: ignore[no-any-return]


@router.get("/accounts", tags=["operator"], summary="every account id")
async def list_accounts(context: Context, _: Operator) -> dict[str, Any]:
    accounts = await context.host.read(lambda model: sorted(model.accounts))
    return {"accounts": accounts}


@router.post(
    "/accounts",
    tags=["operator"],
    summary="open an account; the response carries its key (shown once)",
    openapi_extra=schemas.body(schemas.OPEN_ACCOUNT),
)
async def open_account(request: Request, context: Context, who: Operator) -> JSONResponse:
    body = parse_object(await request.body())
    account = parse_id(body.get("account"), "account")
    command = command_from(body, "open_account")
    result = await context.host.submit(command, principal=who.name)
    status = rejection_status(result)
    if status == 200 and not result.get("duplicate"):
        result = {**result, "account": account, "key": context.keys.issue(account)}
    return JSONResponse(with_field(result), status_code=status)


async def _existing(context: Context, account: str) -> None:
    exists = await context.host.read(lambda model: account in model.accounts)
    if not exists:
        raise NotFound("account", account)


@router.post(
    "/accounts/{account}/keys",
    tags=["operator"],
    summary="issue a new key for an account (its previous key stops working, its sockets close)",
)
async def issue_key(account: Owned, context: Context, _: Operator) -> dict[str, Any]:
    await _existing(context, account)
    return {"account": account, "key": context.keys.issue(account)}


@router.delete(
    "/accounts/{account}/keys",
    tags=["operator"],
    summary="revoke an account's key (it stops working, its sockets close)",
)
async def revoke_key(account: Owned, context: Context, _: Operator) -> dict[str, Any]:
    await _existing(context, account)
    return {"account": account, "revoked": context.keys.revoke(account)}


def _command_route(path: str, kind: str, summary: str, body: dict[str, Any]) -> None:
    """``POST <path>``, operator only: the body is one ``kind`` command (the route is named for
    its command)."""

    async def route(request: Request, context: Context, who: Operator) -> JSONResponse:
        command = command_from(parse_object(await request.body()), kind)
        return await run_command(context, command, who)

    router.add_api_route(
        path,
        route,
        methods=["POST"],
        name=kind,
        tags=["operator"],
        summary=summary,
        openapi_extra=schemas.body(body),
    )


_command_route(
    "/marks",
    "update_marks",
    "post one instant's mark prices (one update_marks: liquidations and margin calls run once, "
    "after every mark is set)",
    schemas.MARKS,
)
_command_route("/funding", "settle_funding", "settle a funding rate on a symbol", schemas.FUNDING)
_command_route(
    "/insurance-fund", "seed_insurance_fund", "pay money into the insurance fund", schemas.AMOUNT
)
_command_route(
    "/fills",
    "report_fill",
    "report a fill of a resting order (external matching only)",
    schemas.FILL,
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
    openapi_extra=schemas.body(schemas.RISK_DOCUMENT),
    responses=BUSY,
)
async def risk(request: Request, context: Context, _: Expensive) -> Response:
    text = await context.calculators.run(risk_job, await request.body())
    return Response(text, media_type="application/json")


@router.post(
    "/scenario",
    tags=["risk"],
    summary="the `crossmargin scenario` contract: a portfolio and shocks in, both reports out",
    openapi_extra=schemas.body(schemas.PORTFOLIO_SCENARIO),
    responses=BUSY,
)
async def scenario(request: Request, context: Context, _: Expensive) -> Response:
    text = await context.calculators.run(scenario_job, await request.body())
    return Response(text, media_type="application/json")
