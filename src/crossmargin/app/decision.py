"""What a handler works with: the decision in progress, rejections, and the common lookups.

A :class:`Decision` holds a :class:`~crossmargin.app.model.Draft` overlaid on the live state:
each emitted event is folded into the draft at once (so a market order's fill sees its own
acceptance, and a liquidation sees the fills before it). A rejection drops the draft: nothing
changes. The writer commits the draft only after the events are durably appended.

This module is the leaf of the app's decision side: handlers, the examination and ``decide``
import it; it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crossmargin.app.events import Event
from crossmargin.app.evolve import evolve
from crossmargin.app.model import Account, Draft, Reason


class Rejection(Exception):
    """A business rejection: the command is valid but the state refuses it."""

    def __init__(self, reason: Reason, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


def reject(reason: Reason, message: str) -> Rejection:
    return Rejection(reason, message)


@dataclass(slots=True)
class Decision:
    draft: Draft
    events: list[Event] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    # accounts to examine besides those the events name (the holders of a ticked symbol)
    examine_also: set[str] = field(default_factory=set)
    matching: str = "simulated"  # or "external": orders rest until report_fill

    def emit(self, event: Event) -> None:
        evolve(self.draft, event)
        self.events.append(event)


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a command produced: its result (returned to the client) and its events."""

    result: dict[str, Any]
    events: list[Event]
    draft: Draft | None  # None when rejected

    @property
    def accepted(self) -> bool:
        return bool(self.result["status"] == "accepted")


def account_of(d: Decision, account_id: str) -> Account:
    account = d.draft.accounts.get(account_id)
    if account is None:
        raise reject(Reason.UNKNOWN_ACCOUNT, f"no account {account_id!r}")
    return account


def symbol_of(d: Decision, symbol: str) -> str:
    if symbol not in d.draft.instruments:
        raise reject(Reason.UNKNOWN_SYMBOL, f"{symbol!a} is not traded on this engine")
    return symbol


def venue_code(d: Decision, reason: Reason) -> str:
    """`` (venue code X)`` when the venue publishes a code for ``reason``, else nothing."""
    code = d.draft.rules.switch.venue_codes.get(reason.value)
    return f" (venue code {code})" if code else ""
