"""What happened to the trader in a backtest, read from the engine's own events.

The backtest never computes a balance: it reads the events each command produced (from the
event store, as decoded by the ledger codec) and keeps :class:`Activity` records and running
totals (fees, clearance fees, funding, top-ups). Events of other accounts are ignored.

Liquidation loss (``loss_usd``): the clearance fee charged to the scope, plus the loss realized by
the liquidation fill, less what the insurance fund paid into the scope when it was bankrupt. It is
negative when the closed position was in profit (the short leg of a cross account liquidated
because of its long).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from crossmargin.core.numbers import ZERO, format_decimal

ACCOUNT = "trader"
LIQUIDATION_KINDS = frozenset({"liquidation", "partial-liquidation", "auto-deleverage"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Activity:
    """Something that happened to the trader.

    ``amount_usd``: the trader's cash effect where there is one (fees and funding paid are
    negative; a top-up moves money from the wallet into a position and is shown positive).
    ``symbol`` is the market-data symbol (the report's name), not the venue's instrument name.
    """

    timestamp: datetime
    mode: str
    kind: str
    symbol: str = ""
    side: str = ""
    quantity: Decimal | None = None
    price: Decimal | None = None
    amount_usd: Decimal | None = None
    loss_usd: Decimal | None = None
    note: str = ""


class ActivityLog:
    """Activities and totals of one mode's run; ``consume`` each event as it is appended."""

    def __init__(self, mode: str, market_of: Mapping[str, str]) -> None:
        self.mode = mode
        self.market_of = dict(market_of)  # instrument -> market-data symbol
        self.activities: list[Activity] = []
        self.fees_paid = ZERO
        self.liquidation_fees = ZERO
        self.funding_paid = ZERO
        self.top_ups = ZERO
        self._pending_fee = ZERO
        self._pending_fund = ZERO

    def record(self, now: datetime, kind: str, **values: Any) -> None:
        if values.get("symbol"):
            values["symbol"] = self.market_of.get(values["symbol"], values["symbol"])
        self.activities.append(Activity(timestamp=now, mode=self.mode, kind=kind, **values))

    def consume(self, now: datetime, reason: str, event: dict[str, Any]) -> None:
        """Fold one engine event; ``reason`` names what a fill was for (open, stop, ...)."""
        kind = event.get("type")
        if event.get("account") not in (ACCOUNT, None):
            return
        if kind == "OrderFilled":
            fee = Decimal(event["fee"])
            self.fees_paid += fee
            self.record(
                now,
                reason,
                symbol=event["symbol"],
                side="buy" if event["side"] == "long" else "sell",
                quantity=event["quantity"],
                price=event["price"],
                amount_usd=-fee,
                note=f"taker fee {format_decimal(fee)}, realized PnL "
                f"{format_decimal(event['realized_pnl'])}",
            )
        elif kind == "LiquidationFeeCharged":
            self.liquidation_fees += event["amount"]
            self._pending_fee += event["amount"]
        elif kind == "InsuranceFundPaid":
            self._pending_fund += event["amount"]
        elif kind == "PositionLiquidated":
            self._liquidated(now, event)
        elif kind == "FundingSettled":
            for payment in event["payments"]:
                if payment["account"] == ACCOUNT:
                    self.funding_paid += payment["paid"]
                    self.record(
                        now,
                        "funding",
                        symbol=event["symbol"],
                        price=event["mark"],
                        amount_usd=-payment["paid"],
                        note=f"rate {format_decimal(event['rate'])}",
                    )
        elif kind == "IsolatedMarginAdded":
            self.top_ups += event["amount"]
            self.record(
                now, "top-up", symbol=event["symbol"], amount_usd=event["amount"], note="top_up"
            )
        elif kind == "MarginCallIssued":
            ratio = event["margin_ratio"]
            shown = "none (margin balance <= 0)" if ratio is None else format_decimal(ratio)
            self.record(now, "margin-call", note=f"{event['scope']} margin ratio {shown}")
        elif kind == "BadDebtRecorded":
            self.record(now, "bad-debt", amount_usd=-event["amount"], note=event["scope"])

    def _liquidated(self, now: datetime, event: dict[str, Any]) -> None:
        if event.get("liquidity") == "adl":
            kind = "auto-deleverage"
        else:
            kind = "partial-liquidation" if event.get("partial") else "liquidation"
        loss = self._pending_fee - event["realized_pnl"] - self._pending_fund
        note = f"scope {event['scope']}"
        if self._pending_fund:
            note += f"; bankrupt, insurance fund paid {format_decimal(self._pending_fund)}"
        self._pending_fee = ZERO
        self._pending_fund = ZERO
        self.record(
            now,
            kind,
            symbol=event["symbol"],
            side="short" if event["side"] == "long" else "long",  # the fill closes the position
            quantity=event["quantity"],
            price=event["price"],
            loss_usd=loss,
            note=note,
        )
