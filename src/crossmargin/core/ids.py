"""Identifiers that cross the boundary: account ids, order ids and command ids.

One rule everywhere (engine, service, CLI, Binance facade): 1 to ``MAX_ID_LENGTH`` characters of
``[A-Za-z0-9._-]``, the first one a letter or digit. The character set keeps every id safe in a
URL path segment, a file name, a WebSocket close reason (at most 123 bytes) and a log line, and
leaves ``:`` and ``/`` free to join ids into namespaced keys (``account:alice/o-1``).
"""

from __future__ import annotations

import re
from typing import TypeGuard

from crossmargin.core.errors import InvalidInput

MAX_ID_LENGTH = 64
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ID_RULE = "1 to 64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit"


def is_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def parse_id(value: object, field: str) -> str:
    """``value`` if it is a valid id; an InvalidInput naming ``field`` otherwise."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"expected a string id ({ID_RULE})")
    if _ID.fullmatch(value) is None:
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise InvalidInput(field, f"{shown!a} is not a valid id ({ID_RULE})")
    return value
