"""What of an event one account may see: an allow-list per event type, nothing else.

An event reaches an account's stream (and its ``/events``) only if it concerns that account
(:func:`event_accounts`: its ``account``, the ``account`` of the ``position`` or ``order`` it
carries, or a row of its funding ``payments``). The copy it gets (:func:`redact_for`) keeps:

* ``type``, and the fields that ``ALLOWED`` lists for that type; an event type missing from
  ``ALLOWED`` keeps only ``COMMON``. A field the engine adds later is therefore hidden from
  account keys until it is reviewed and listed here (ADL's ``against`` names the counterparty:
  it is not listed);
* of a listed field, only a scalar (string, number, boolean, null), except the nested shapes
  below; a field holding an account id (``account``) only when it is the recipient's own id; a
  field of ``ALLOWED_VALUES`` only with one of its values (``taken_over_by`` only when it is
  ``insurance_fund``: should a takeover ever name an account, it is hidden);
* ``position`` / ``order`` / ``accepted``: the listed keys, and only when they are the
  recipient's own (their ``account``);
* ``payments``: the recipient's own rows;
* ``postings``: those to the recipient's own ledgers (``wallet:<id>``, ``isolated:<id>:...``),
  and those to the house ledgers (``SHARED_LEDGERS``) only in an event that is wholly the
  recipient's (its top-level ``account``): in a funding settlement the house side of each
  payment would tell one account what every other account paid, and so what it holds.

The operator's key reads account streams through the same copies.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

COMMON = frozenset({"account", "symbol", "scope", "slot"})
FILL = frozenset(
    {
        "account",
        "symbol",
        "side",
        "slot",
        "quantity",
        "price",
        "liquidity",
        "fee",
        "realized_pnl",
        "position",
        "postings",
        "order_id",
        "order",
        "order_removed",
    }
)
SCOPE_AMOUNT = frozenset({"account", "scope", "amount", "postings"})
ALLOWED: dict[str, frozenset[str]] = {
    "AccountOpened": frozenset({"account"}),
    "FundsDeposited": frozenset({"account", "amount", "postings"}),
    "FundsWithdrawn": frozenset({"account", "amount", "postings"}),
    "InsuranceFundSeeded": frozenset(),  # the operator's; it concerns no account
    "IsolatedMarginAdded": frozenset({"account", "symbol", "slot", "amount", "postings"}),
    "IsolatedMarginRemoved": frozenset({"account", "symbol", "slot", "amount", "postings"}),
    "LeverageChanged": frozenset({"account", "symbol", "leverage"}),
    "PositionLeverageChanged": frozenset({"account", "position"}),
    "MarginModeChanged": frozenset({"account", "symbol", "margin_mode"}),
    "PositionModeChanged": frozenset({"account", "position_mode"}),
    "OrderAccepted": frozenset({"account", "order", "accepted"}),
    "OrderFilled": FILL,
    "OrderCancelled": frozenset({"account", "order_id", "reason", "order_removed"}),
    "MarkPriceUpdated": frozenset({"symbol", "price"}),
    "FundingSettled": frozenset({"symbol", "rate", "mark", "payments", "postings"}),
    "LiquidationTriggered": frozenset({"account", "scope", "margin_balance", "maintenance_margin"}),
    "LiquidationFeeCharged": SCOPE_AMOUNT,
    # not "against": the counterparty; "taken_over_by" only with a value in ALLOWED_VALUES
    "PositionLiquidated": FILL | {"scope", "partial", "taken_over_by"},
    "PositionAutoDeleveraged": FILL,  # not "against": the bankrupt account
    "InsuranceFundPaid": SCOPE_AMOUNT,
    "BadDebtRecorded": SCOPE_AMOUNT,
    "MarginCallIssued": frozenset({"account", "scope", "margin_ratio", "threshold"}),
    "MarginCallCleared": frozenset({"account", "scope"}),
    # the scope's own figures; the per-position bankruptcy ``prices`` (an object keyed
    # "<symbol>:<slot>") stays hidden until a reviewer lists it with its shape
    "ScopeBankrupt": frozenset({"account", "scope", "deficit"}),
    "InsuranceFundCollected": SCOPE_AMOUNT,
    "OrderRepriced": frozenset({"account", "order"}),
}
# fields whose value must be one of these (a fund takeover names the fund, never an account)
ALLOWED_VALUES: dict[str, frozenset[object]] = {"taken_over_by": frozenset({"insurance_fund"})}
NESTED: dict[str, frozenset[str]] = {
    "position": frozenset({"account", "symbol", "slot", "after"}),
    "order": frozenset(
        {
            "order_id",
            "account",
            "symbol",
            "side",
            "position_side",
            "order_type",
            "quantity",
            "price",
            "reduce_only",
            "reserved",
        }
    ),
}
NESTED["accepted"] = NESTED["order"]
POSITION_AFTER = frozenset(
    {"symbol", "side", "quantity", "entry_notional", "leverage", "margin_mode", "isolated_margin"}
)
PAYMENT = frozenset({"account", "slot", "paid"})
SHARED_LEDGERS = frozenset(
    {
        "insurance_fund",
        "fee_income",
        "bad_debt",
        "external:deposits",
        "external:trading",
        "external:funding",
        "external:insurance",
    }
)


def event_accounts(event: dict[str, Any]) -> set[str]:
    """The accounts an event concerns (the streams it goes to)."""
    found: set[str] = set()
    if isinstance(event.get("account"), str):
        found.add(event["account"])
    for key in ("position", "order", "accepted"):
        nested = event.get(key)
        if isinstance(nested, dict) and isinstance(nested.get("account"), str):
            found.add(nested["account"])
    payments = event.get("payments")
    for payment in payments if isinstance(payments, list) else ():
        if isinstance(payment, dict) and isinstance(payment.get("account"), str):
            found.add(payment["account"])
    return found


def _scalar(value: object) -> bool:
    return value is None or isinstance(value, (str, bool, int, Decimal))


def _pick(data: dict[str, Any], allowed: frozenset[str], account: str) -> dict[str, Any]:
    """The scalar fields of ``data`` that ``allowed`` lists; ``account`` only if it is ours."""
    return {
        key: value
        for key, value in data.items()
        if key in allowed
        and _scalar(value)
        and (key != "account" or value == account)
        and (key not in ALLOWED_VALUES or value in ALLOWED_VALUES[key])
    }


def _ledger_owner(ledger: str) -> str | None:
    kind, _, rest = ledger.partition(":")
    if kind == "wallet":
        return rest
    if kind == "isolated":
        return rest.split(":", 1)[0]
    return None


def _postings(value: object, account: str, whole: bool) -> list[list[Any]]:
    kept = []
    for posting in value if isinstance(value, list) else ():
        if not (isinstance(posting, list) and len(posting) == 2 and isinstance(posting[0], str)):
            continue
        ledger, amount = posting
        if not _scalar(amount):
            continue
        if _ledger_owner(ledger) == account or (whole and ledger in SHARED_LEDGERS):
            kept.append([ledger, amount])
    return kept


def _nested(key: str, value: object, account: str) -> dict[str, Any] | None:
    if not isinstance(value, dict) or value.get("account") != account:
        return None
    copy = _pick(value, NESTED[key], account)
    if key == "position":
        after = value.get("after")
        copy["after"] = _pick(after, POSITION_AFTER, account) if isinstance(after, dict) else None
    return copy


def redact_for(event: dict[str, Any], account: str) -> dict[str, Any]:
    """The copy of ``event`` that ``account``'s key may see (see the module docstring)."""
    kind = event.get("type")
    allowed = ALLOWED.get(kind, COMMON) if isinstance(kind, str) else COMMON
    copy: dict[str, Any] = {"type": kind if isinstance(kind, str) else "unknown"}
    copy.update(_pick(event, allowed, account))
    whole = event.get("account") == account
    for key in sorted(allowed & event.keys()):
        value = event[key]
        if key in NESTED:
            nested = _nested(key, value, account)
            if nested is not None:
                copy[key] = nested
        elif key == "payments" and isinstance(value, list):
            copy[key] = [
                _pick(row, PAYMENT, account)
                for row in value
                if isinstance(row, dict) and row.get("account") == account
            ]
        elif key == "postings":
            copy[key] = _postings(value, account, whole)
    return copy
