"""Binance's wire conventions: the error shape and codes, parameters, numbers as strings.

* Every refusal is ``{"code": -NNNN, "msg": "..."}`` with Binance's code and, where Binance has
  a fixed text, Binance's exact text (clients match on some: ccxt turns ``"No need to change
  margin type."`` into ``MarginModeAlreadySet``). HTTP status 400, or 401 for a key problem.
* Success bodies never carry a ``code`` other than 200 (ccxt treats any other code as an
  error even on HTTP 200).
* Parameters come from the query string and a form-encoded body, both read from the raw bytes
  (the signature covers the exact string). A parameter sent twice, or one the endpoint does not
  read, is refused naming it.
* Numbers go out as strings, at full precision without exponent; ids and times as integers.

:class:`BinanceRoute` renders every error raised inside a facade route (ours, the engine's,
FastAPI's) in this shape, so ``/fapi`` never answers in the ``/v1`` error shape.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from crossmargin.core.errors import (
    Conflict,
    CrossmarginError,
    InvalidInput,
    InvariantViolation,
    NotFound,
    StorageError,
)
from crossmargin.core.numbers import format_decimal

LOG = logging.getLogger("crossmargin.service.binance")
R = TypeVar("R")

# Binance's texts for the codes the facade answers with (fixed texts only).
UNKNOWN = -1000
TOO_MANY_PARAMETERS = -1101
MANDATORY_PARAMETER = -1102
UNREAD_PARAMETER = -1104
NOT_REQUIRED_PARAMETER = -1106
BAD_PRECISION = -1111
INVALID_TIME_IN_FORCE = -1115
INVALID_ORDER_TYPE = -1116
INVALID_SIDE = -1117
INVALID_INTERVAL = -1120
INVALID_SYMBOL = -1121
BAD_PARAMETER = -1130
RECV_WINDOW = -1131
TIMESTAMP = -1021
SIGNATURE = -1022
NEW_ORDER_REJECTED = -2010
UNKNOWN_ORDER_SENT = -2011
NO_SUCH_ORDER = -2013
KEY_FORMAT = -2014
INVALID_KEY = -2015
MARGIN_INSUFFICIENT = -2019
REDUCE_ONLY_REJECTED = -2022
MAX_POSITION_AT_LEVERAGE = -2027
LEVERAGE_INSUFFICIENT_MARGIN = -2028
QUANTITY_NOT_POSITIVE = -4003
QUANTITY_BELOW_MIN = -4004
QUANTITY_ABOVE_MAX = -4005
PRICE_OFF_TICK = -4014
CLIENT_ORDER_ID = -4015
QUANTITY_OFF_STEP = -4023
INVALID_LEVERAGE = -4028
MARGIN_TYPE_UNCHANGED = -4046
MARGIN_TYPE_OPEN_ORDERS = -4047
MARGIN_TYPE_POSITION = -4048
NOT_ISOLATED = -4049
CROSS_BALANCE = -4050
ISOLATED_BALANCE = -4051
NO_POSITION = -4054
AMOUNT_NOT_POSITIVE = -4055
POSITION_SIDE_UNCHANGED = -4059
INVALID_POSITION_SIDE = -4060
POSITION_SIDE_MISMATCH = -4061
POSITION_SIDE_OPEN_ORDERS = -4067
POSITION_SIDE_POSITION = -4068
DUPLICATE_CLIENT_ORDER_ID = -4116
MIN_NOTIONAL = -4164

TEXTS: Mapping[int, str] = {
    UNKNOWN: "An unknown error occured while processing the request.",
    SIGNATURE: "Signature for this request is not valid.",
    UNKNOWN_ORDER_SENT: "Unknown order sent.",
    NO_SUCH_ORDER: "Order does not exist.",
    KEY_FORMAT: "API-key format invalid.",
    INVALID_KEY: "Invalid API-key, IP, or permissions for action.",
    MARGIN_INSUFFICIENT: "Margin is insufficient.",
    REDUCE_ONLY_REJECTED: "ReduceOnly Order is rejected.",
    MAX_POSITION_AT_LEVERAGE: "Exceeded the maximum allowable position at current leverage.",
    LEVERAGE_INSUFFICIENT_MARGIN: "Leverage is smaller than permitted: insufficient margin balance",
    INVALID_ORDER_TYPE: "Invalid orderType.",
    INVALID_SIDE: "Invalid side.",
    INVALID_INTERVAL: "Invalid interval.",
    INVALID_SYMBOL: "Invalid symbol.",
    INVALID_TIME_IN_FORCE: "Invalid timeInForce.",
    BAD_PRECISION: "Precision is over the maximum defined for this asset.",
    QUANTITY_NOT_POSITIVE: "Quantity less than or equal to zero.",
    QUANTITY_BELOW_MIN: "Quantity less than min quantity.",
    QUANTITY_ABOVE_MAX: "Quantity greater than max quantity.",
    PRICE_OFF_TICK: "Price not increased by tick size.",
    CLIENT_ORDER_ID: "Client order id is not valid.",
    QUANTITY_OFF_STEP: "Quantity not increased by step size.",
    MARGIN_TYPE_UNCHANGED: "No need to change margin type.",
    MARGIN_TYPE_OPEN_ORDERS: "Margin type cannot be changed if there exists open orders.",
    MARGIN_TYPE_POSITION: "Margin type cannot be changed if there exists position.",
    NOT_ISOLATED: "Add margin only support for isolated position.",
    CROSS_BALANCE: "Cross balance insufficient.",
    ISOLATED_BALANCE: "Isolated balance insufficient.",
    NO_POSITION: "Cannot add position margin: position is 0.",
    AMOUNT_NOT_POSITIVE: "Amount must be positive.",
    POSITION_SIDE_UNCHANGED: "No need to change position side.",
    INVALID_POSITION_SIDE: "Invalid position side.",
    POSITION_SIDE_MISMATCH: "Order's position side does not match user's setting.",
    POSITION_SIDE_OPEN_ORDERS: "Position side cannot be changed if there exists open orders.",
    POSITION_SIDE_POSITION: "Position side cannot be changed if there exists position.",
    DUPLICATE_CLIENT_ORDER_ID: "ClientOrderId is duplicated.",
}
KEY_CODES = frozenset({KEY_FORMAT, INVALID_KEY})

# Engine rejection reasons -> Binance codes (order placement and account commands).
REASON_CODES: Mapping[str, int] = {
    "INSUFFICIENT_MARGIN": MARGIN_INSUFFICIENT,
    "LEVERAGE_ABOVE_MAX": MAX_POSITION_AT_LEVERAGE,
    "REDUCE_ONLY_WOULD_INCREASE": REDUCE_ONLY_REJECTED,
    "POSITION_SIDE_MISMATCH": POSITION_SIDE_MISMATCH,
    "DUPLICATE_ORDER_ID": DUPLICATE_CLIENT_ORDER_ID,
    "UNKNOWN_SYMBOL": INVALID_SYMBOL,
    "UNKNOWN_ORDER": UNKNOWN_ORDER_SENT,
    "INSUFFICIENT_BALANCE": CROSS_BALANCE,
    "NO_POSITION": NO_POSITION,
    "NOT_ISOLATED": NOT_ISOLATED,
    "ISOLATED_BELOW_INITIAL_MARGIN": ISOLATED_BALANCE,
    "MARGIN_MODE_UNCHANGED": MARGIN_TYPE_UNCHANGED,
    "MARGIN_MODE_SWITCH_WITH_OPEN_POSITION": MARGIN_TYPE_POSITION,
    "MARGIN_MODE_SWITCH_WITH_OPEN_ORDERS": MARGIN_TYPE_OPEN_ORDERS,
    "POSITION_MODE_UNCHANGED": POSITION_SIDE_UNCHANGED,
    "POSITION_MODE_SWITCH_WITH_OPEN_POSITION": POSITION_SIDE_POSITION,
    "POSITION_MODE_SWITCH_WITH_OPEN_ORDERS": POSITION_SIDE_OPEN_ORDERS,
    "NO_MARK_PRICE": NEW_ORDER_REJECTED,
    "POSITION_MODE_UNSUPPORTED": NEW_ORDER_REJECTED,
}


class BinanceError(Exception):
    """A refusal in Binance's shape."""

    def __init__(self, code: int, msg: str | None = None) -> None:
        self.code = code
        self.msg = msg if msg is not None else TEXTS.get(code, "")
        super().__init__(f"{code}: {self.msg}")

    @property
    def status(self) -> int:
        return 401 if self.code in KEY_CODES else 400

    def response(self) -> JSONResponse:
        return JSONResponse({"code": self.code, "msg": self.msg}, status_code=self.status)


def rejection(result: Mapping[str, Any], reasons: Mapping[str, int] = REASON_CODES) -> BinanceError:
    """The Binance error for an engine rejection (the engine's own message when no text)."""
    reason = str(result.get("reason"))
    code = reasons.get(reason, REASON_CODES.get(reason, UNKNOWN))
    text = TEXTS.get(code)
    message = str(result.get("message", reason))
    if reason == "INVALID_COMMAND":
        return BinanceError(
            BAD_PARAMETER,
            f"Data sent for parameter '{result.get('field')}' is not valid: {message}",
        )
    fixed = text is not None and code not in (NEW_ORDER_REJECTED, UNKNOWN)
    return BinanceError(code, text if fixed and text else message)


def translate(error: Exception) -> BinanceError:
    if isinstance(error, BinanceError):
        return error
    if isinstance(error, InvalidInput):
        return BinanceError(
            BAD_PARAMETER, f"Data sent for parameter '{error.field}' is not valid: {error.problem}"
        )
    if isinstance(error, NotFound):
        return BinanceError(NO_SUCH_ORDER if error.what == "order" else INVALID_SYMBOL)
    if isinstance(error, Conflict):
        return rejection({"reason": error.code, "message": error.message})
    if isinstance(error, InvariantViolation):
        return BinanceError(UNKNOWN, "the engine stopped: an invariant was violated")
    if isinstance(error, StorageError):
        return BinanceError(UNKNOWN, "the event store is unavailable; retry later")
    return BinanceError(UNKNOWN)


class BinanceRoute(APIRoute):
    """A route whose every error, whatever raised it, answers in Binance's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except CrossmarginError as error:
                return translate(error).response()
            except BinanceError as error:
                return error.response()
            except Exception:  # a facade route never answers with a stack trace
                LOG.exception("binance facade: %s %s failed", request.method, request.url.path)
                return BinanceError(UNKNOWN).response()

        return guarded


def number(value: Decimal | int) -> str:
    """A number as Binance writes it: a decimal string without exponent."""
    return format_decimal(Decimal(value))


# -- parameters ----------------------------------------------------------------------------


def parse_params(raw: bytes, where: str) -> dict[str, str]:
    """Form-encoded ``key=value&...`` into a dict; a key twice or bad encoding is refused."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BinanceError(-1100, f"Illegal characters found in the {where}.") from None
    result: dict[str, str] = {}
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    except ValueError:
        raise BinanceError(-1100, f"Illegal characters found in the {where}.") from None
    for key, value in pairs:
        if key in result:
            raise BinanceError(TOO_MANY_PARAMETERS, f"Duplicate values for parameter '{key}'.")
        result[key] = value
    return result


_INTEGER = re.compile(r"-?[0-9]{1,18}")


class Params:
    """The request's parameters, read one by one so that unread ones can be refused."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)
        self.read: set[str] = {"timestamp", "recvWindow", "signature"}

    def text(self, name: str, *, required: bool = False) -> str | None:
        self.read.add(name)
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise BinanceError(
                    MANDATORY_PARAMETER,
                    f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
                )
            return None
        return value

    def need(self, name: str) -> str:
        value = self.text(name, required=True)
        if value is None:  # text() has refused it already; this keeps the type exact
            raise BinanceError(MANDATORY_PARAMETER)
        return value

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        try:
            result = Decimal(value)
        except InvalidOperation:
            raise _bad(name, value) from None
        if not result.is_finite() or not all(c in "0123456789.-" for c in value):
            raise _bad(name, value)
        return result

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.text(name, required=required)
        if value is None:
            return None
        if _INTEGER.fullmatch(value) is None:  # ASCII only: int() also reads '１２' as 12
            raise _bad(name, value)
        return int(value)

    def limit(self, default: int, maximum: int) -> int:
        """The ``limit`` parameter: ``default`` when absent, else 1 to ``maximum``."""
        value = self.integer("limit")
        if value is None:
            return default
        if not 1 <= value <= maximum:
            raise BinanceError(
                BAD_PARAMETER, f"Data sent for parameter 'limit' is not valid: 1 to {maximum}."
            )
        return value

    def choice(self, name: str, allowed: tuple[str, ...], *, default: str | None = None) -> str:
        value = self.text(name, required=default is None)
        if value is None:
            return str(default)
        if value not in allowed:
            raise _bad(name, value, f"expected one of {', '.join(allowed)}")
        return value

    def boolean(self, name: str, *, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() not in ("true", "false"):
            raise _bad(name, value, "expected true or false")
        return value.lower() == "true"

    def finish(self) -> None:
        """Refuse any parameter the endpoint did not read."""
        unread = sorted(set(self.values) - self.read)
        if unread:
            raise BinanceError(
                UNREAD_PARAMETER,
                f"Not all sent parameters were read; '{unread[0]}' is not supported here.",
            )


def window(
    records: Sequence[R],
    time_of: Callable[[R], int],
    start: int | None,
    end: int | None,
    limit: int,
) -> list[R]:
    """Binance's paging by time: the records from ``start`` to ``end`` (both optional, inclusive),
    the first ``limit`` of them when ``start`` is given, else the ``limit`` most recent."""
    chosen = [
        r
        for r in records
        if (start is None or time_of(r) >= start) and (end is None or time_of(r) <= end)
    ]
    return chosen[:limit] if start is not None else chosen[-limit:]


def _bad(name: str, value: str, why: str = "") -> BinanceError:
    shown = value if len(value) <= 40 else value[:37] + "..."
    detail = f" ({why})" if why else ""
    return BinanceError(
        BAD_PARAMETER, f"Data sent for parameter '{name}' is not valid: {shown!a}{detail}."
    )
