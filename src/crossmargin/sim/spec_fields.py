"""SPEC fields: reading one field of a decoded SPEC document, and a position entry.

What it owns: the field readers every part of the SPEC uses (an object, a required key, a
non-empty string, a UTC time, a choice among names), the margin modes list (:func:`parse_modes`,
also the CLI's ``--modes``) and one ``positions[i]`` entry (:func:`parse_position`: symbol, side,
leverage, exactly one size, margin mode, ``open_at``, ``stop``). Numbers stay text until
:mod:`crossmargin.core.numbers` makes them ``Decimal``. Every problem is an :class:`InvalidInput`
naming the field (``positions[1].leverage``); the first problem found is the one reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from crossmargin.core.errors import InvalidInput
from crossmargin.core.numbers import parse_positive
from crossmargin.core.position import MarginMode, Side
from crossmargin.sim.candles import parse_utc_datetime
from crossmargin.sim.spec import MODES, PositionSpec

_POSITION = frozenset(
    {
        "symbol",
        "side",
        "leverage",
        "margin",
        "notional",
        "quantity",
        "margin_mode",
        "open_at",
        "stop",
        "label",
    }
)


def object_field(value: object, field: str) -> dict[str, Any]:
    """``value`` as a mapping (a YAML or JSON object)."""
    if not isinstance(value, dict):
        raise InvalidInput(field, "expected an object (a mapping)")
    return value


def required_field(data: Mapping[str, Any], key: str, prefix: str = "") -> Any:
    """``data[key]``, which must be present and not null; ``prefix`` locates ``data``."""
    if data.get(key) is None:
        raise InvalidInput(f"{prefix}{key}", "is required")
    return data[key]


def text_field(value: object, field: str) -> str:
    """A non-empty string, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, "expected a non-empty string")
    return value.strip()


def time_field(value: object, field: str) -> datetime | None:
    """An ISO date or datetime as UTC (no offset means UTC); None when absent."""
    if value is None:
        return None
    return parse_utc_datetime(text_field(value, field), field)


def choice_field(value: object, field: str, options: Sequence[str]) -> str:
    """One of ``options``, case-insensitively; returned in lower case."""
    text = text_field(value, field).lower()
    if text not in options:
        raise InvalidInput(field, f"expected one of {', '.join(options)}, got {value!r}")
    return text


def parse_modes(value: object, field: str = "modes") -> tuple[str, ...]:
    """``[cross, isolated]`` or ``"cross,isolated"`` -> a tuple of distinct mode names."""
    if isinstance(value, str):
        items: list[object] = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, list):
        items = list(value)
    else:
        raise InvalidInput(field, "expected a list of modes (cross, isolated, mixed)")
    if not items:
        raise InvalidInput(field, "name at least one mode")
    modes = tuple(choice_field(item, f"{field}[{i}]", MODES) for i, item in enumerate(items))
    if len(set(modes)) != len(modes):
        raise InvalidInput(field, "a mode appears twice")
    return modes


def parse_position(item: object, where: str) -> PositionSpec:
    """One ``positions[i]`` entry, under the symbol as written (the venue mapping comes later)."""
    data = object_field(item, where)
    unknown = sorted(set(data) - _POSITION)
    if unknown:
        raise InvalidInput(f"{where}.{unknown[0]}", "unknown field")
    symbol = text_field(required_field(data, "symbol", f"{where}."), f"{where}.symbol").upper()
    side = Side(
        choice_field(required_field(data, "side", f"{where}."), f"{where}.side", ("long", "short"))
    )
    leverage = parse_positive(required_field(data, "leverage", f"{where}."), f"{where}.leverage")
    sizes = [key for key in ("quantity", "notional", "margin") if data.get(key) is not None]
    if len(sizes) != 1:
        raise InvalidInput(
            f"{where}.margin", "give exactly one size: quantity, notional (USD) or margin (USD)"
        )
    size = parse_positive(data[sizes[0]], f"{where}.{sizes[0]}")
    mode = MarginMode(
        choice_field(
            data.get("margin_mode", "cross"), f"{where}.margin_mode", ("cross", "isolated")
        )
    )
    stop = data.get("stop")
    return PositionSpec(
        label=text_field(data.get("label", f"{symbol} {side.value}"), f"{where}.label"),
        symbol=symbol,
        instrument=symbol,
        side=side,
        leverage=leverage,
        quantity=size if sizes[0] == "quantity" else None,
        notional_usd=size if sizes[0] == "notional" else None,
        margin_usd=size if sizes[0] == "margin" else None,
        margin_mode=mode,
        open_at=time_field(data.get("open_at"), f"{where}.open_at"),
        stop_price=None if stop is None else parse_positive(stop, f"{where}.stop"),
    )
