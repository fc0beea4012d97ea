"""Test-wide settings: the decimal FloatOperation trap is on, so float/Decimal mixing fails."""

from __future__ import annotations

import decimal
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _float_operation_trap() -> Iterator[None]:
    context = decimal.getcontext()
    previous = context.traps[decimal.FloatOperation]
    context.traps[decimal.FloatOperation] = True
    try:
        yield
    finally:
        context.traps[decimal.FloatOperation] = previous
