"""The wire format: JSON in (numbers as Decimal, never float) and JSON out (Decimals as strings).

* ``parse_body`` reads a request body: numbers with a fraction become ``Decimal``; NaN and
  infinities, duplicate or blank keys and invalid UTF-8 or JSON are refused with ``InvalidInput`` naming
  the field (``body`` or the duplicated key).
* ``dumps`` writes Decimals at full precision as strings (``format_decimal``), so a client never
  reads money through a binary float.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import format_decimal


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if not key.strip():
            raise InvalidInput("body", f"an object key {key!r} names no field")
        if key in result:
            raise InvalidInput(key, "appears twice in one object")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise InvalidInput("body", f"{name} is not a number JSON allows")


def parse_body(raw: bytes) -> Any:
    if not raw.strip():
        raise InvalidInput("body", "a JSON body is required")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("body", "the body is not UTF-8") from None
    try:
        return json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_reject_constant,
            object_pairs_hook=_reject_duplicates,
        )
    except json.JSONDecodeError as error:
        raise InvalidInput(
            "body", f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise InvalidInput("body", "the JSON is nested too deeply") from None


def parse_object(raw: bytes) -> dict[str, Any]:
    body = parse_body(raw)
    if not isinstance(body, dict):
        raise InvalidInput("body", "expected a JSON object")
    return body


def _default(value: object) -> Any:
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: object) -> str:
    return json.dumps(value, default=_default, separators=(",", ":"), allow_nan=False)


def plain(value: object) -> Any:
    """``value`` with every Decimal turned into its string (for JSON responses)."""
    return json.loads(dumps(value))
