"""The routes of one account (``/v1/accounts/{account}/...``): the operator's or its own key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from crossmargin.app.queries import ReadModel
from crossmargin.contract.portfolio import report_json
from crossmargin.core.errors import InvalidInput, NotFound
from crossmargin.core.risk import account_report
from crossmargin.service import schemas
from crossmargin.service.compute import account_scenario_job, parse_shocks
from crossmargin.service.context import (
    Anyone,
    Context,
    Expensive,
    OrderIdPath,
    Owned,
    ServiceContext,
)
from crossmargin.service.handlers import BUSY, REFUSALS, command_from, run_command
from crossmargin.service.views import account_view
from crossmargin.service.wire import parse_object

router = APIRouter(prefix="/v1", responses=REFUSALS)


# -- one account ------------------------------------------------------------------------------


async def _view(context: ServiceContext, account: str) -> dict[str, Any]:
    view = await context.host.read(lambda model: account_view(model, account))
    if view is None:
        raise NotFound("account", account)
    return view


@router.get("/accounts/{account}", tags=["account"], summary="overview, positions, scopes, orders")
async def get_account(account: Owned, context: Context) -> dict[str, Any]:
    return await _view(context, account)


@router.get(
    "/accounts/{account}/risk",
    tags=["account"],
    summary="the account's report in the `crossmargin risk` contract",
)
async def account_risk(account: Owned, context: Context) -> dict[str, Any]:
    def read(model: ReadModel) -> dict[str, Any] | None:
        held = model.accounts.get(account)
        if held is None:
            return None
        return report_json(account_report(model.book(held)))

    report = await context.host.read(read)
    if report is None:
        raise NotFound("account", account)
    return report


@router.get("/accounts/{account}/events", tags=["account"], summary="the account's recent events")
async def account_events(
    account: Owned,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=200)] = 100,
) -> dict[str, Any]:
    await _view(context, account)
    recent = list(context.host.recent.get(account, ()))
    return {"account": account, "events": recent[-limit:]}


@router.post(
    "/accounts/{account}/scenario",
    tags=["account"],
    summary="what-if: the account's report after shocking marks (`crossmargin scenario`)",
    openapi_extra=schemas.body(schemas.SHOCKS),
    responses=BUSY,
)
async def account_scenario(
    request: Request, account: Owned, context: Context, _: Expensive
) -> Response:
    shocks = parse_shocks(parse_object(await request.body()), allowed={"shocks"})

    def read(model: ReadModel) -> Any:
        held = model.accounts.get(account)
        return None if held is None else model.book(held)

    book = await context.host.read(read)  # the book only: the valuation runs off this thread
    if book is None:
        raise NotFound("account", account)
    text = await context.calculators.run(account_scenario_job, book, shocks)
    return Response(text, media_type="application/json")


def _command_route(method: str, path: str, kind: str, summary: str, body: dict[str, Any]) -> None:
    """``method /accounts/{account}<path>``: the body is one ``kind`` command for the account in
    the path (the route is named for its command)."""

    async def route(
        request: Request, account: Owned, context: Context, who: Anyone
    ) -> JSONResponse:
        command = command_from(parse_object(await request.body()), kind, account=account)
        return await run_command(context, command, who)

    router.add_api_route(
        f"/accounts/{{account}}{path}",
        route,
        methods=[method],
        name=kind,
        tags=["account"],
        summary=summary,
        openapi_extra=schemas.body(body),
    )


_command_route("POST", "/deposits", "deposit", "deposit into the cross wallet", schemas.AMOUNT)
_command_route("POST", "/withdrawals", "withdraw", "withdraw from the cross wallet", schemas.AMOUNT)
_command_route(
    "POST",
    "/orders",
    "place_order",
    "place an order (the simulated venue fills market orders at the mark)",
    schemas.ORDER,
)


@router.delete(
    "/accounts/{account}/orders/{order_id}", tags=["account"], summary="cancel an open order"
)
async def cancel_order(
    account: Owned, order_id: OrderIdPath, context: Context, who: Anyone
) -> JSONResponse:
    command = command_from({}, "cancel_order", account=account, order_id=order_id)
    return await run_command(context, command, who)


_command_route("PUT", "/leverage", "set_leverage", "set a symbol's leverage", schemas.LEVERAGE)
_command_route(
    "PUT",
    "/margin-mode",
    "set_margin_mode",
    "switch a symbol between cross and isolated (venues refuse it with a position)",
    schemas.MARGIN_MODE,
)
_command_route(
    "PUT",
    "/position-mode",
    "set_position_mode",
    "switch between one-way and hedge mode",
    schemas.POSITION_MODE,
)


@router.post(
    "/accounts/{account}/isolated-margin",
    tags=["account"],
    summary="add margin to, or remove it from, an isolated position",
    openapi_extra=schemas.body(schemas.ISOLATED_MARGIN),
)
async def isolated_margin(
    request: Request, account: Owned, context: Context, who: Anyone
) -> JSONResponse:
    body = parse_object(await request.body())
    action = body.pop("action", None)
    if action not in ("add", "remove"):
        raise InvalidInput("action", "expected add or remove")
    kind = "add_isolated_margin" if action == "add" else "remove_isolated_margin"
    return await run_command(context, command_from(body, kind, account=account), who)
