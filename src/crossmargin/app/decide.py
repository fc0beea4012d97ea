"""``decide``: one command against the state -> accepted events, or a rejection with a reason.

The one dispatch table maps each command type to its handler (app.handlers). A handler works on
a :class:`~crossmargin.app.decision.Decision` overlaid on the live state; after it, every account
the command touched is examined (app.examination), so no command leaves an account past
maintenance without its liquidation. A rejection drops the draft: nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crossmargin.app import commands as c
from crossmargin.app.decision import Decision, Outcome, Rejection
from crossmargin.app.examination import examine
from crossmargin.app.handlers import accounts, market, orders, settings
from crossmargin.app.model import EngineState, Reason
from crossmargin.core.errors import InvalidInput

HANDLERS: dict[type[c.Command], Callable[[Decision, Any], None]] = {
    c.OpenAccount: accounts.open_account,
    c.Deposit: accounts.deposit,
    c.Withdraw: accounts.withdraw,
    c.AddIsolatedMargin: accounts.add_isolated_margin,
    c.RemoveIsolatedMargin: accounts.remove_isolated_margin,
    c.SeedInsuranceFund: accounts.seed_insurance_fund,
    c.SetLeverage: settings.set_leverage,
    c.SetMarginMode: settings.set_margin_mode,
    c.SetPositionMode: settings.set_position_mode,
    c.PlaceOrder: orders.place_order,
    c.CancelOrder: orders.cancel_order,
    c.ReportFill: orders.report_fill,
    c.UpdateMark: market.update_mark,
    c.UpdateMarks: market.update_marks,
    c.SettleFunding: market.settle_funding,
}


def decide(state: EngineState, command: object, *, matching: str = "simulated") -> Outcome:
    """Decide ``command`` (a typed command or its wire form) against ``state``; the returned
    draft holds the changes (uncommitted)."""
    try:
        parsed = c.parse_command(command)
    except InvalidInput as error:
        return rejected(Reason.INVALID_COMMAND, str(error), field_name=error.field)
    decision = Decision(draft=state.draft(), matching=matching)
    try:
        HANDLERS[type(parsed)](decision, parsed)
    except Rejection as rejection:
        return rejected(rejection.reason, rejection.message)
    except InvalidInput as error:
        return rejected(Reason.INVALID_COMMAND, str(error), field_name=error.field)
    touched = {e.account_named for e in decision.events} - {None}
    liquidations = examine(decision, {a for a in touched if a} | decision.examine_also)
    if liquidations:
        decision.result["liquidations"] = liquidations
    result = {"status": "accepted", "events": len(decision.events), **decision.result}
    return Outcome(result=result, events=decision.events, draft=decision.draft)


def rejected(reason: Reason, message: str, field_name: str | None = None) -> Outcome:
    result: dict[str, Any] = {"status": "rejected", "reason": reason.value, "message": message}
    if field_name:
        result["field"] = field_name
    return Outcome(result=result, events=[], draft=None)
