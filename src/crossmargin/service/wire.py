"""The wire format: JSON in (numbers as Decimal, never float) and JSON out (Decimals as strings).

* ``parse_body`` reads a request body with the one hostile-input loader,
  ``core.json_input.load_json``: invalid UTF-8 or JSON, NaN and infinities, duplicate keys,
  nesting deeper than 64, integers of more than 40 digits and lone surrogates are each an
  ``InvalidInput`` naming the field (``body``, or ``body.<key>`` for a duplicated key). The body's
  size is bounded before it is read (``service.limits.BodyLimit``).
* ``dumps`` writes Decimals at full precision as strings (``format_decimal``), so a client never
  reads money through a binary float.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from crossmargin.core.errors import InvalidInput
from crossmargin.core.json_input import load_json
from crossmargin.core.numbers import format_decimal


def parse_body(raw: bytes) -> Any:
    try:
        return load_json(raw, field="body")
    except InvalidInput as error:
        # a duplicated key is named as the body's field (``amount``), like every other field
        if error.field.startswith("body."):
            raise InvalidInput(error.field.removeprefix("body."), error.problem) from None
        raise


def parse_object(raw: bytes) -> dict[str, Any]:
    body = parse_body(raw)
    if not isinstance(body, dict):
        raise InvalidInput("body", "expected a JSON object")
    for key in body:
        if not key.strip():
            raise InvalidInput("body", f"an object key {key!a} names no field")
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
    """``value`` with every Decimal turned into its string (for JSON responses and messages):
    one walk, no JSON round trip. Tuples become lists and sets sorted lists, as JSON has them."""
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(item) for item in value)
    return value
