"""State <-> JSON-shaped data for snapshots and the state hash.

The state hash is SHA-256 of the canonical JSON (ledger.codec) of :func:`state_to_data`: every
account (wallet, modes, leverage, positions, isolated margins, orders, open margin calls), the
marks, the insurance fund, fee income and external flows. Replaying the log must reproduce it.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

from crossmargin.app.model import CALLED, Account, EngineState, Ledgers, resting_key
from crossmargin.app.records import (
    order_from_dict,
    order_to_dict,
    position_from_dict,
    position_to_dict,
)
from crossmargin.core.position import MarginMode, PositionMode


def _slot(key: tuple[str, str]) -> str:
    return f"{key[0]}:{key[1]}"


def _unslot(text: str) -> tuple[str, str]:
    symbol, _, slot = text.rpartition(":")
    return symbol, slot


def state_to_data(state: EngineState) -> dict[str, Any]:
    accounts = {}
    for account_id in sorted(state.accounts):
        account = state.accounts[account_id]
        accounts[account_id] = {
            "wallet": account.wallet,
            "position_mode": account.position_mode.value,
            "leverage": dict(sorted(account.leverage.items())),
            "margin_mode": {k: v.value for k, v in sorted(account.margin_mode.items())},
            "positions": {
                _slot(k): position_to_dict(p) for k, p in sorted(account.positions.items())
            },
            "isolated": {_slot(k): v for k, v in sorted(account.isolated.items())},
            "orders": {k: order_to_dict(o) for k, o in sorted(account.orders.items())},
            "margin_calls": sorted(account.margin_calls),
        }
    return {
        "sequence": state.sequence,
        "accounts": accounts,
        "marks": dict(sorted(state.marks.items())),
        "insurance_fund": state.ledgers.insurance_fund,
        "fee_income": state.ledgers.fee_income,
        "bad_debt": state.ledgers.bad_debt,
        "external": dict(sorted(state.ledgers.external.items())),
    }


def state_from_data(state: EngineState, data: dict[str, Any]) -> None:
    """Load ``data`` (from :func:`state_to_data`, decoded) into an empty ``state``."""
    for account_id, raw in data["accounts"].items():
        positions = {_unslot(k): position_from_dict(v) for k, v in raw["positions"].items()}
        orders = {k: order_from_dict(v) for k, v in raw["orders"].items()}
        state.accounts[account_id] = Account(
            account_id=account_id,
            wallet=Decimal(raw["wallet"]),
            position_mode=PositionMode(raw["position_mode"]),
            leverage={k: Decimal(v) for k, v in raw["leverage"].items()},
            margin_mode={k: MarginMode(v) for k, v in raw["margin_mode"].items()},
            positions=positions,
            isolated={_unslot(k): Decimal(v) for k, v in raw["isolated"].items()},
            orders=orders,
            margin_calls=frozenset(raw["margin_calls"]),
        )
        for order in orders.values():
            state.holders.add(resting_key(order.symbol), account_id)
        for symbol, _ in positions:
            state.holders.add(symbol, account_id)
        if raw["margin_calls"]:
            state.holders.add(CALLED, account_id)
    state.marks.update({k: Decimal(v) for k, v in data["marks"].items()})
    state.ledgers = Ledgers(
        insurance_fund=Decimal(data["insurance_fund"]),
        fee_income=Decimal(data["fee_income"]),
        bad_debt=Decimal(data.get("bad_debt", 0)),
        external={k: Decimal(v) for k, v in data["external"].items()},
    )
    state.sequence = int(data["sequence"])


def money_total(state: EngineState) -> Decimal:
    """All wallets + isolated margins + insurance fund + fee income + bad debt + external flows
    (must be exactly 0; summed without rounding)."""
    with decimal.localcontext(decimal.Context(prec=60)):
        ledgers = state.ledgers
        total = ledgers.insurance_fund + ledgers.fee_income + ledgers.bad_debt
        total += sum(ledgers.external.values(), Decimal(0))
        for account in state.accounts.values():
            total += account.wallet + sum(account.isolated.values(), Decimal(0))
        return total
