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


def exact_decimal_text(value: Decimal) -> str:
    """``value`` without exponent or trailing zeros, never rounded (``normalize`` alone would
    round to the context's 28 digits)."""
    if value.is_zero():
        return "0"
    digits = len(value.as_tuple().digits)
    exact = decimal.Context(prec=digits, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)
    return format(value.normalize(exact), "f")


def to_json_value(value: object, path: str = "$") -> Any:
    """Convert ``value`` to plain JSON-able data with tagged Decimals; ``path`` names bad fields."""
    if value is None or isinstance(value, bool | int | str):
        if isinstance(value, Enum):
            return to_json_value(value.value, path)
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidInput(path, "a Decimal must be finite")
        return {DECIMAL_TAG: exact_decimal_text(value)}
    if isinstance(value, Enum):
        return to_json_value(value.value, path)
    if isinstance(value, float):
        raise InvalidInput(path, "binary floats are not stored; use Decimal")
    if isinstance(value, Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(path, f"object keys must be strings, got {type(key).__name__}")
            if key.startswith("$"):
                raise InvalidInput(f"{path}.{key}", "keys starting with '$' are reserved")
            result[key] = to_json_value(item, f"{path}.{key}")
        return result
    if isinstance(value, list | tuple):
        return [to_json_value(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
        return to_json_value(fields, path)
    raise InvalidInput(path, f"cannot store a value of type {type(value).__name__}")


def from_json_value(value: Any, path: str = "$") -> JsonValue:
    """Inverse of ``to_json_value``: untag Decimals, recursively."""
    if isinstance(value, dict):
        if DECIMAL_TAG in value:
            text = value[DECIMAL_TAG]
            if len(value) != 1 or not isinstance(text, str):
                raise StorageError(f"malformed decimal at {path}: {value!r}")
            try:
                number = Decimal(text)
            except ArithmeticError:
                raise StorageError(f"malformed decimal at {path}: {text!r}") from None
            if not number.is_finite():
                raise StorageError(f"non-finite decimal at {path}: {text!r}")
            return number
        return {key: from_json_value(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [from_json_value(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, float):
        raise StorageError(f"binary float at {path}")
    result: JsonValue = value
    return result


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
        raw = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise StorageError(f"stored JSON is malformed: {error}") from None
    return from_json_value(raw)


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
