"""Reading JSON that comes from outside: one loader for every edge (CLI, engine, service, files).

``load_json`` returns plain JSON values with every number that has a fraction or an exponent as a
``Decimal`` (never a binary float), and refuses, with an ``InvalidInput`` naming ``field``:

* text that is not UTF-8, or longer than ``max_bytes``;
* nesting deeper than ``max_depth`` (checked before parsing, so a 100,000-deep document costs a
  scan, not the interpreter's stack);
* integers of more than ``MAX_INT_DIGITS`` digits (Python refuses to convert beyond 4,300 digits;
  no field of ours needs more than 40);
* ``NaN`` and ``Infinity`` (naming the field that holds one, ``positions[0].quantity``),
  duplicate keys (naming the key), and strings holding an unpaired UTF-16 surrogate
  (``"\\ud800"``: valid JSON, but it cannot be written back as UTF-8, to a log or a socket).

Error messages quote input through ``ascii()``, so reporting bad input cannot fail in turn.

``one_or_many`` is the "one item or a list of them" reading every edge shares (a portfolio file,
a risk request): errors inside the list name their index.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

from crossmargin.core.errors import InvalidInput

T = TypeVar("T")
MAX_JSON_BYTES = 1_000_000
MAX_JSON_DEPTH = 64
MAX_INT_DIGITS = 40

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _depth(text: str) -> int:
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    depth = deepest = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class _NonFinite:
    """What ``NaN`` / ``Infinity`` parse to, until the walk finds where it sits."""

    def __init__(self, text: str) -> None:
        self.problem = "NaN is not a number" if text == "NaN" else "must be finite"


def _non_finite(value: Any, path: str = "") -> tuple[str, str] | None:
    """(path, problem) of the first NaN or Infinity in ``value``, depth first."""
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, _NonFinite):
            return where, item.problem
        if isinstance(item, dict):
            for key, inner in reversed(list(item.items())):
                stack.append((f"{where}.{key}" if where else key, inner))
        elif isinstance(item, list):
            for index in range(len(item) - 1, -1, -1):
                stack.append((f"{where}[{index}]", item[index]))
    return None


def _strings(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            for key, inner in item.items():
                yield key
                stack.append(inner)
        elif isinstance(item, list):
            stack.extend(item)


def load_json(
    data: str | bytes,
    *,
    field: str = "body",
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse ``data`` as JSON under the rules above."""
    text = _text(data, field, max_bytes)
    if _depth(text) > max_depth:
        raise InvalidInput(field, f"nested deeper than {max_depth} levels")

    def integer(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise InvalidInput(field, f"an integer of more than {MAX_INT_DIGITS} digits")
        return int(digits)

    constants: list[_NonFinite] = []

    def constant(name: str) -> Any:
        constants.append(_NonFinite(name))
        return constants[-1]

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise InvalidInput(key, "appears twice in one object")
            result[key] = value
        return result

    try:
        value = json.loads(
            text,
            parse_float=Decimal,
            parse_int=integer,
            parse_constant=constant,
            object_pairs_hook=unique,
        )
    except json.JSONDecodeError as error:
        raise InvalidInput(
            field, f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:  # a backstop: the depth scan refuses such input first
        raise InvalidInput(field, "nested too deeply") from None
    if constants:
        found = _non_finite(value)
        where, problem = found if found is not None else ("", constants[0].problem)
        raise InvalidInput(where or field, problem)
    if _SURROGATE_ESCAPE.search(text):
        _refuse_lone_surrogates(value, field)
    return value


def _text(data: str | bytes, field: str, max_bytes: int) -> str:
    """``data`` as text, within ``max_bytes``, not empty."""
    if isinstance(data, bytes):
        if len(data) > max_bytes:
            raise InvalidInput(field, f"longer than {max_bytes:,} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidInput(field, f"not valid UTF-8 (byte {error.start})") from None
    else:
        text = data
        if len(text) > max_bytes:
            raise InvalidInput(field, f"longer than {max_bytes:,} characters")
    if not text.strip():
        raise InvalidInput(field, "invalid JSON at line 1 column 1: the input is empty")
    return text


def _refuse_lone_surrogates(value: Any, field: str) -> None:
    for string in _strings(value):
        try:
            string.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                field, f"a string holds an unpaired surrogate: {string[:20]!a}"
            ) from None


def one_or_many(
    document: Any,
    build: Callable[[Any], T],
    *,
    limit: int | None = None,
    field: str = "body",
) -> T | list[T]:
    """``build`` applied to one item or to each item of a list; an error inside item ``i`` names
    ``[i].<field>``, so a user can find it. ``limit``: the most items a list may hold."""
    if not isinstance(document, list):
        return build(document)
    if limit is not None and len(document) > limit:
        raise InvalidInput(field, f"at most {limit:,} items per request, got {len(document):,}")
    results = []
    for index, item in enumerate(document):
        try:
            results.append(build(item))
        except InvalidInput as error:
            name = error.field
            joined = name if name.startswith("[") else f".{name}"
            raise InvalidInput(
                f"[{index}]{joined}" if name else f"[{index}]", error.problem
            ) from None
    return results
