"""ccxt changes the decimal context of the thread that calls it (``decimal_to_precision`` sets
ROUND_HALF_UP and traps Underflow, and never restores them): each test here runs in a local
copy of the context, so the rest of the suite keeps its own."""

from __future__ import annotations

import decimal
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _own_decimal_context() -> Iterator[None]:
    with decimal.localcontext():
        yield
