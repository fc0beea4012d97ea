"""Binance's request signing, checked the way Binance checks it.

A signed (TRADE / USER_DATA) request carries the API key in ``X-MBX-APIKEY`` and, among its
parameters, ``timestamp`` (ms), an optional ``recvWindow`` (ms, default 5000, at most 60000) and
``signature`` = HMAC-SHA256(secret, totalParams) in hex, where totalParams is the query string
followed by the form-encoded body, exactly as sent, without the ``signature`` pair. Refusals, in
the order they are checked:

  no X-MBX-APIKEY, or not 64 letters and digits   -2014 API-key format invalid.      (401)
  a key this server did not issue (or revoked)     -2015 Invalid API-key, IP, or ... (401)
  no timestamp / no signature                      -1102 Mandatory parameter ...
  recvWindow above 60000                           -1131
  timestamp 1000 ms or more ahead of the server    -1021
  timestamp older than recvWindow                  -1021
  a signature that does not match                  -1022 Signature for this request is not valid.

The signature and the secret are never logged (``RedactSignatures`` also strips the signature
from uvicorn's access log).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from crossmargin.service.binance.credentials import ExchangeCredentials
from crossmargin.service.binance.wire import (
    INVALID_KEY,
    KEY_FORMAT,
    MANDATORY_PARAMETER,
    RECV_WINDOW,
    SIGNATURE,
    TIMESTAMP,
    TOO_MANY_PARAMETERS,
    BinanceError,
    Params,
    parse_params,
)

DEFAULT_RECV_WINDOW_MS = 5_000
MAX_RECV_WINDOW_MS = 60_000
AHEAD_TOLERANCE_MS = 1_000
MAX_PARAMETER_BYTES = 64 * 1024
_KEY = re.compile(r"[A-Za-z0-9]{64}")
_SIGNATURE_PAIR = re.compile(rb"(^|[?&])signature=[^&\s]*")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: whose it is and its parameters."""

    account: str
    params: Params


def _without_signature(raw: bytes) -> tuple[bytes, list[bytes]]:
    """``raw`` with its ``signature=`` pairs removed, and the signatures found."""
    pairs = raw.split(b"&") if raw else []
    kept = [pair for pair in pairs if not pair.startswith(b"signature=")]
    found = [pair[len(b"signature=") :] for pair in pairs if pair.startswith(b"signature=")]
    return b"&".join(kept), found


async def raw_parts(request: Request) -> tuple[bytes, bytes]:
    query = bytes(request.scope.get("query_string", b""))
    body = await request.body()
    if len(query) + len(body) > MAX_PARAMETER_BYTES:
        raise BinanceError(TOO_MANY_PARAMETERS, "The request's parameters are too large.")
    return query, body


def merged(query: bytes, body: bytes) -> dict[str, str]:
    values = parse_params(query, "query string")
    for key, value in parse_params(body, "request body").items():
        if key in values:
            raise BinanceError(TOO_MANY_PARAMETERS, f"Duplicate values for parameter '{key}'.")
        values[key] = value
    return values


async def public(request: Request) -> Params:
    """A market-data request: no key needed; parameters from the query string."""
    query, body = await raw_parts(request)
    return Params(merged(query, body))


def _mandatory(name: str) -> BinanceError:
    return BinanceError(
        MANDATORY_PARAMETER,
        f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.",
    )


async def signed(
    request: Request,
    credentials: ExchangeCredentials,
    clock: Callable[[], int] = now_ms,
) -> Caller:
    """Authenticate a signed request; its account and parameters, or a Binance refusal."""
    api_key = request.headers.get("x-mbx-apikey", "")
    if _KEY.fullmatch(api_key) is None:
        raise BinanceError(KEY_FORMAT)
    account = credentials.account_of(api_key)
    if account is None:
        raise BinanceError(INVALID_KEY)
    query, body = await raw_parts(request)
    values = merged(query, body)
    params = Params(values)
    stamp = params.integer("timestamp")
    if stamp is None:
        raise _mandatory("timestamp")
    window = params.integer("recvWindow")
    window = DEFAULT_RECV_WINDOW_MS if window is None else window
    if not 0 < window <= MAX_RECV_WINDOW_MS:
        raise BinanceError(RECV_WINDOW, "recvWindow must be less than 60000")
    server = clock()
    if stamp >= server + AHEAD_TOLERANCE_MS:
        raise BinanceError(
            TIMESTAMP, "Timestamp for this request was 1000ms ahead of the server's time."
        )
    if server - stamp > window:
        raise BinanceError(TIMESTAMP, "Timestamp for this request is outside of the recvWindow.")
    signed_query, in_query = _without_signature(query)
    signed_body, in_body = _without_signature(body)
    sent = in_query + in_body
    if len(sent) != 1 or not sent[0]:
        raise _mandatory("signature")
    secret = credentials.secret_for(api_key)
    expected = hmac.new(secret.encode(), signed_query + signed_body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), sent[0].lower()):
        raise BinanceError(SIGNATURE)
    return Caller(account=account, params=params)


class RedactSignatures(logging.Filter):
    """Strips ``signature=...`` from access-log lines (a GET carries it in the URL)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_redact(arg) for arg in record.args)
        return True


def _redact(value: object) -> object:
    if isinstance(value, str) and "signature=" in value:
        return _SIGNATURE_PAIR.sub(rb"\1signature=<redacted>", value.encode()).decode()
    return value
