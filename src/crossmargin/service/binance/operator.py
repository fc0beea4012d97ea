"""The operator's route that issues an account's Binance-API credentials (``/v1``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from crossmargin.core.errors import NotFound
from crossmargin.service.binance.facade import facade_of
from crossmargin.service.context import Context, Operator, Owned
from crossmargin.service.handlers import REFUSALS

router = APIRouter(prefix="/v1", responses=REFUSALS)


@router.post(
    "/accounts/{account}/exchange-keys",
    tags=["operator"],
    summary="issue the account's Binance-API credentials (shown once; earlier ones stop working)",
)
async def issue_exchange_keys(
    request: Request, account: Owned, context: Context, _: Operator
) -> dict[str, Any]:
    exists = await context.host.read(lambda model: account in model.accounts)
    if not exists:
        raise NotFound("account", account)
    issued = facade_of(request).credentials.issue(account)
    return {"account": account, "api_key": issued.api_key, "secret": issued.secret}
