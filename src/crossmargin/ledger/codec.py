"""The event codec: Python values <-> canonical JSON text, with Decimals kept exact.

This module owns the one JSON form of everything the ledger stores (commands, results, events,
snapshots) and the state hash computed over it.

Representation (schema version ``SCHEMA_VERSION``):

* ``Decimal``  -> ``{"$decimal": "<text>"}``, the text exact (every digit kept, whatever the
  decimal context's precision) with no exponent and no trailing zeros, ``-0`` written ``0``. The tag makes a record self-describing: a decoder gives
  back ``Decimal`` for exactly the values that were ``Decimal``, and an ordinary string that
  happens to look like a number stays a string. Because the text is normalised,
  ``Decimal("1.50")`` and ``Decimal("1.5")`` encode identically, so a hash over the encoding does
  not depend on how a number was computed, only on its value.
* ``Enum``     -> its ``.value`` (encoded recursively); decoding gives back the plain value, and the
  app layer, which knows its event types, turns it back into the enum.
* ``tuple`` / ``list`` -> JSON array; decoding gives a ``list``.
* ``dict`` / any ``Mapping`` with ``str`` keys -> JSON object. Keys starting with ``$`` are
  reserved for tags and refused.
* frozen dataclass instances -> the object of their fields (``dataclasses.fields`` order is
  irrelevant, keys are sorted).
* ``str``, ``int``, ``bool``, ``None`` -> themselves. ``float`` is refused: money never passes
  through binary floating point. A bare JSON number with a fraction that reaches the decoder
  (hand-written input) is read with ``parse_float=Decimal``, never as a float.

Canonical text: keys sorted, no whitespace (``separators=(",", ":")``), non-ASCII characters kept
as UTF-8 (``ensure_ascii=False``), NaN and infinities refused. Equal values always give the same
text, so ``state_hash`` (SHA-256 of the UTF-8 canonical text, hex) is stable across processes,
machines and the two storage backends.

A stored *record* is wrapped in an envelope ``{"schema": SCHEMA_VERSION, "body": <value>}`` by
``encode_record``; ``decode_record`` refuses a schema it does not know (``StorageError``), so an
old binary never misreads a newer log.
"""

from __future__ import annotations

import dataclasses
import decimal
import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum
from typing import Any, TypeAlias

from crossmargin.core.errors import InvalidInput, StorageError

SCHEMA_VERSION = 1
DECIMAL_TAG = "$decimal"

JsonValue: TypeAlias = (
    bool | int | str | Decimal | list["JsonValue"] | dict[str, "JsonValue"] | None
)
"""A decoded value: what ``decode``/``decode_record`` return (Decimals are real Decimals)."""


# Precision, exponent range: as large as the decimal module allows, so ``normalize`` never rounds.
_EXACT = decimal.Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)


def exact_decimal_text(value: Decimal) -> str:
    """``value`` without exponent or trailing zeros, never rounded (``normalize`` under the
    default context would round to 28 digits)."""
    if value.is_zero():
        return "0"
    return format(value.normalize(_EXACT), "f")


class _Unstorable(Exception):
    """Raised inside the walk; ``parts`` collects the path on the way out (innermost first)."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.parts: list[str] = []


def to_json_value(value: object, path: str = "$") -> Any:
    """Convert ``value`` to plain JSON-able data with tagged Decimals.

    A value that cannot be stored exactly raises ``InvalidInput`` whose field is the dotted path
    below ``path`` (``$.events[1].price``). The walk dispatches on exact built-in types first and
    builds no path strings unless something fails: it runs once per appended payload.
    """
    try:
        return _convert(value)
    except _Unstorable as error:
        raise InvalidInput(path + "".join(reversed(error.parts)), error.problem) from None


def _convert(value: object) -> Any:
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is Decimal:
        return _convert_decimal(value)  # type: ignore[arg-type]
    if kind is dict:
        return _convert_mapping(value)  # type: ignore[arg-type]
    if kind is list or kind is tuple:
        return _convert_sequence(value)  # type: ignore[arg-type]
    return _convert_other(value)


def _convert_decimal(value: Decimal) -> dict[str, str]:
    if not value.is_finite():
        raise _Unstorable("a Decimal must be finite")
    return {DECIMAL_TAG: exact_decimal_text(value)}


def _convert_mapping(value: Mapping[Any, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in value.items():
        if type(key) is not str:
            if isinstance(key, Enum):
                key = key.value
            if not isinstance(key, str):
                raise _Unstorable(f"object keys must be strings, got {type(key).__name__}")
            key = str.__str__(key)
        if key[:1] == "$":
            error = _Unstorable("keys starting with '$' are reserved")
            error.parts.append(f".{key}")
            raise error
        try:
            result[key] = _convert(item)
        except _Unstorable as error:
            error.parts.append(f".{key}")
            raise
    return result


def _convert_sequence(value: list[Any] | tuple[Any, ...]) -> list[Any]:
    result = []
    for index, item in enumerate(value):
        try:
            result.append(_convert(item))
        except _Unstorable as error:
            error.parts.append(f"[{index}]")
            raise
    return result


def _convert_other(value: object) -> Any:
    """Subclasses and the less common types: enums, mappings, dataclasses; floats refused."""
    if isinstance(value, Enum):
        return _convert(value.value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, Decimal):
        return _convert_decimal(value)
    if isinstance(value, float):
        raise _Unstorable("binary floats are not stored; use Decimal")
    if isinstance(value, Mapping):
        return _convert_mapping(value)
    if isinstance(value, list | tuple):
        return _convert_sequence(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
        return _convert_mapping(fields)
    raise _Unstorable(f"cannot store a value of type {type(value).__name__}")


def _untag(value: dict[str, Any]) -> Any:
    """``json.loads`` object hook: a tagged Decimal becomes a ``Decimal``; other objects stay."""
    if DECIMAL_TAG not in value:
        return value
    text = value[DECIMAL_TAG]
    if len(value) != 1 or not isinstance(text, str):
        raise StorageError(f"malformed stored decimal {value!r}")
    try:
        number = Decimal(text)
    except ArithmeticError:
        raise StorageError(f"malformed stored decimal {text!r}") from None
    if not number.is_finite():
        raise StorageError(f"non-finite stored decimal {text!r}")
    return number


def canonical_json(value: object) -> str:
    """The canonical text of ``value``: tagged Decimals, sorted keys, no whitespace."""
    return json.dumps(
        to_json_value(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def _reject_constant(name: str) -> Any:
    raise StorageError(f"non-finite number {name} in stored JSON")


def decode(text: str) -> JsonValue:
    """Parse canonical (or any valid) JSON text back into values with real Decimals."""
    try:
        result: JsonValue = json.loads(
            text, parse_float=Decimal, parse_constant=_reject_constant, object_hook=_untag
        )
    except json.JSONDecodeError as error:
        raise StorageError(f"stored JSON is malformed: {error}") from None
    return result


def text_hash(text: str) -> str:
    """SHA-256 of the UTF-8 bytes of ``text``, lowercase hex (64 characters)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def state_hash(state: object) -> str:
    """The state hash: ``text_hash(canonical_json(state))``."""
    return text_hash(canonical_json(state))


def encode_record(body: object) -> str:
    """Canonical text of ``{"schema": SCHEMA_VERSION, "body": body}``."""
    return json.dumps(
        {"body": to_json_value(body, "$"), "schema": SCHEMA_VERSION},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def decode_record(text: str) -> JsonValue:
    """The body of a record written by ``encode_record``; refuses unknown schema versions."""
    envelope = decode(text)
    if not isinstance(envelope, dict) or "schema" not in envelope or "body" not in envelope:
        raise StorageError("stored record has no schema envelope")
    schema = envelope["schema"]
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise StorageError(
            f"stored record has schema version {schema!r}; this build reads version "
            f"{SCHEMA_VERSION}"
        )
    return envelope["body"]
