"""Scopes: the units that are margined together and liquidated together.

A scope is the cross scope of an account (its cross wallet and every cross position) or one
isolated slot (one isolated position and its own margin). :class:`ScopeId` names one:
``cross`` or ``isolated:<symbol>:<slot>``, the slot being ``both`` in one-way mode and ``long``
or ``short`` in hedge mode. Symbols and slots never contain ``:``.
"""

from __future__ import annotations

from dataclasses import dataclass

from crossmargin.core.errors import InvariantViolation


@dataclass(frozen=True, slots=True, order=True)
class ScopeId:
    """The cross scope (``symbol`` empty) or one isolated slot; orders cross first."""

    symbol: str = ""
    slot: str = ""

    @staticmethod
    def isolated(symbol: str, slot: str) -> ScopeId:
        return ScopeId(symbol, slot)

    @property
    def is_cross(self) -> bool:
        return not self.symbol

    @property
    def key(self) -> tuple[str, str]:
        """The (symbol, slot) of an isolated scope."""
        return self.symbol, self.slot

    @staticmethod
    def parse(text: str) -> ScopeId:
        if text == "cross":
            return CROSS
        kind, _, rest = text.partition(":")
        symbol, _, slot = rest.partition(":")
        if kind != "isolated" or not symbol or not slot or ":" in slot:
            raise InvariantViolation(f"malformed scope {text!r}")
        return ScopeId(symbol, slot)

    def __str__(self) -> str:
        return "cross" if self.is_cross else f"isolated:{self.symbol}:{self.slot}"


CROSS = ScopeId()
