"""Read models the service renders: an account's view, and who a batch's events concern.

Everything here runs on the engine thread (the only thread that touches engine state) and uses
the exact core: the account report is ``contract.portfolio.report_json`` over ``account_report`` of
the account's book, the same contract as ``crossmargin risk``.

What of an event an account may see is ``service.redaction``'s allow-list.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from crossmargin.app.queries import MARGIN_CALL_THRESHOLD, ReadModel
from crossmargin.contract.portfolio import report_json
from crossmargin.core.numbers import ZERO, format_decimal
from crossmargin.core.risk import account_report

RATIO_WHEN_UNDERWATER = Decimal(1)  # a scope with MB <= 0 is shown as 100% (liquidatable)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format_decimal(value)


def account_view(model: ReadModel, account_id: str) -> dict[str, Any] | None:
    """The dashboard's and the API's picture of one account, or None if there is no such account."""
    account = model.account(account_id)
    if account is None:
        return None
    report = report_json(account_report(model.book(account)))
    scopes = []
    worst: tuple[Decimal, str] | None = None
    maintenance_total = ZERO
    for scope in model.scopes(account):
        if not scope.positions:
            continue
        maintenance_total += scope.risk.maintenance_margin
        ratio = scope.margin_ratio
        shown = RATIO_WHEN_UNDERWATER if ratio is None else ratio
        if worst is None or shown > worst[0]:
            worst = (shown, str(scope.id))
        scopes.append(
            {
                "scope": str(scope.id),
                "collateral": format_decimal(scope.collateral),
                "margin_balance": format_decimal(scope.margin_balance),
                "maintenance_margin": format_decimal(scope.risk.maintenance_margin),
                "margin_ratio": _text(ratio),
                "liquidatable": scope.liquidatable,
            }
        )
    symbols = {
        symbol: {
            "margin_mode": account.mode_for(symbol).value,
            "leverage": format_decimal(account.leverage_for(symbol)),
            "mark_price": _text(model.marks.get(symbol)),
        }
        for symbol in sorted(model.instruments)
    }
    orders = [
        {
            "order_id": order.order_id,
            "symbol": order.symbol,
            "side": "buy" if order.side.value == "long" else "sell",
            "order_type": order.order_type.value,
            "quantity": format_decimal(order.quantity),
            "price": _text(order.price),
            "reduce_only": order.reduce_only,
            "reserved": format_decimal(order.reserved),
        }
        for order in sorted(account.orders.values(), key=lambda o: o.order_id)
    ]
    isolated_total = sum(account.isolated.values(), ZERO)
    return {
        "account": account_id,
        "summary": {
            "wallet_balance": format_decimal(account.wallet),
            "isolated_margin": format_decimal(isolated_total),
            "equity": report["equity"],
            "unrealized_pnl": format_decimal(
                Decimal(report["unrealized_pnl"]) + Decimal(report["isolated_unrealized_pnl"])
            ),
            "margin_balance": report["margin_balance"],
            "maintenance_margin": format_decimal(maintenance_total),
            "margin_ratio": None if worst is None else format_decimal(worst[0]),
            "worst_scope": None if worst is None else worst[1],
            "margin_call_threshold": format_decimal(MARGIN_CALL_THRESHOLD),
            "margin_calls": sorted(account.margin_calls),
        },
        "report": report,
        "scopes": scopes,
        "symbols": symbols,
        "position_mode": account.position_mode.value,
        "orders": orders,
    }


def symbols_marked(events: Iterable[dict[str, Any]]) -> set[str]:
    return {
        str(event["symbol"])
        for event in events
        if event.get("type") in ("MarkPriceUpdated", "FundingSettled") and "symbol" in event
    }


def holders_of(model: ReadModel, symbols: set[str], among: Iterable[str]) -> set[str]:
    """Which of the ``among`` accounts hold a position in one of ``symbols``."""
    result = set()
    for account_id in among:
        account = model.accounts.get(account_id)
        if account is not None and any(key[0] in symbols for key in account.positions):
            result.add(account_id)
    return result
