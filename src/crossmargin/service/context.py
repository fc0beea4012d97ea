"""What every handler reaches through ``request.app.state.service``; and who is asking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crossmargin.core.errors import StorageError
from crossmargin.service.host import EngineHost
from crossmargin.service.keys import KeyRing, Principal
from crossmargin.service.schemas import ACCOUNT_PATTERN


class Feed(Protocol):
    """A price source the service runs in the background (see ``service.feeds``)."""

    async def run(self, host: EngineHost) -> None: ...

    def status(self) -> dict[str, Any]: ...


@dataclass(slots=True, kw_only=True)
class ServiceContext:
    host: EngineHost
    keys: KeyRing
    symbols: tuple[str, ...]
    feed: Feed | None


def context_of(request: Request) -> ServiceContext:
    context = getattr(request.app.state, "service", None)
    if not isinstance(context, ServiceContext):
        raise StorageError("the service is not started")
    return context


async def service(request: Request) -> ServiceContext:
    # async: FastAPI would run a plain function dependency in a worker thread, per request
    return context_of(request)


bearer = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="the operator key, or an account key (scoped to its account)",
)


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    return context_of(request).keys.resolve(credentials.credentials if credentials else None)


async def operator(who: Annotated[Principal, Depends(principal)]) -> Principal:
    who.require_operator()
    return who


AccountPath = Annotated[
    str, Path(pattern=ACCOUNT_PATTERN, max_length=64, description="the account id")
]


async def owner(account: AccountPath, who: Annotated[Principal, Depends(principal)]) -> str:
    """The path's account, if the key may act on it (the operator, or that account's key)."""
    who.require_account(account)
    return account


Context = Annotated[ServiceContext, Depends(service)]
Anyone = Annotated[Principal, Depends(principal)]
Operator = Annotated[Principal, Depends(operator)]
Owned = Annotated[str, Depends(owner)]
