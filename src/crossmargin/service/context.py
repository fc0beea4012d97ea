"""What every handler reaches through ``request.app.state.service``; and who is asking.

The dependencies here are the whole of the service's access control, kept apart from the
routes so that another router (a venue-compatible facade) reuses them as they are:

* ``Anyone``: any valid key, as a :class:`Principal` (``Principal.name`` is who the engine is
  told sent a command: ``operator`` or ``account:<id>``);
* ``Operator``: the operator key only;
* ``Owned``: the path's ``{account}`` (checked against the id rule), if the key may act on it;
* ``Expensive``: a slot of the calculators' ``WorkGate`` for the key (429 when it has none).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crossmargin.core.errors import StorageError
from crossmargin.core.ids import ID_PATTERN, MAX_ID_LENGTH
from crossmargin.service.compute import Calculators
from crossmargin.service.host import EngineHost
from crossmargin.service.keys import KeyRing, Principal
from crossmargin.service.limits import WorkGate


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
    gate: WorkGate = field(default_factory=WorkGate)
    calculators: Calculators = field(default_factory=Calculators)


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


def id_path(description: str) -> Any:
    return Path(pattern=ID_PATTERN, min_length=1, max_length=MAX_ID_LENGTH, description=description)


AccountPath = Annotated[str, id_path("the account id")]
OrderIdPath = Annotated[str, id_path("the order id")]


async def owner(account: AccountPath, who: Annotated[Principal, Depends(principal)]) -> str:
    """The path's account, if the key may act on it (the operator, or that account's key)."""
    who.require_account(account)
    return account


async def expensive(
    request: Request, who: Annotated[Principal, Depends(principal)]
) -> AsyncIterator[None]:
    async with context_of(request).gate.slot(who.name):
        yield


Context = Annotated[ServiceContext, Depends(service)]
Anyone = Annotated[Principal, Depends(principal)]
Operator = Annotated[Principal, Depends(operator)]
Owned = Annotated[str, Depends(owner)]
Expensive = Annotated[None, Depends(expensive)]
