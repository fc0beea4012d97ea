"""Plain-text tables for terminals: right-aligned numbers, a rule under the header."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any


def money(value: Decimal | str | None, places: int = 2) -> str:
    if value is None:
        return "-"
    amount = Decimal(value) if isinstance(value, str) else value
    return f"{amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):,}"


def percent(value: Decimal | str | None, places: int = 2) -> str:
    if value is None:
        return "n/a"
    ratio = Decimal(value) if isinstance(value, str) else value
    return f"{(ratio * 100).quantize(Decimal(1).scaleb(-places)):,}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths).rstrip()
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])
