"""Human tables for ``crossmargin risk --table`` and ``crossmargin scenario --table``."""

from __future__ import annotations

from typing import Any

from crossmargin.cli.render import money, percent, table


def account_table(report: dict[str, Any], title: str = "") -> str:
    status = "LIQUIDATABLE" if report["liquidatable"] else "healthy"
    summary = table(
        ["account" + (f" ({title})" if title else ""), "value"],
        [
            ["venue", report["venue"]],
            ["cross wallet balance", money(report["wallet_balance"])],
            ["cross unrealized PnL", money(report["unrealized_pnl"])],
            ["cross margin balance", money(report["margin_balance"])],
            ["cross initial margin", money(report["initial_margin"])],
            ["cross maintenance margin", money(report["maintenance_margin"])],
            ["available balance", money(report["available_balance"])],
            ["cross margin ratio", percent(report["margin_ratio"])],
            ["isolated margin (total)", money(report["isolated_margin"])],
            ["equity (all scopes)", money(report["equity"])],
            ["status", status],
        ],
    )
    rows = [
        [
            p["symbol"],
            p["side"],
            p["margin_mode"],
            p["quantity"],
            money(p["entry_price"]),
            money(p["mark_price"]),
            money(p["notional"]),
            money(p["unrealized_pnl"]),
            money(p["maintenance_margin"]),
            percent(p["margin_ratio"]),
            money(p["liquidation_price"]) if p["liquidation_price"] else "none",
            "LIQ" if p["liquidatable"] else "",
        ]
        for p in report["positions"]
    ]
    positions = table(
        [
            "symbol",
            "side",
            "mode",
            "qty",
            "entry",
            "mark",
            "notional",
            "uPnL",
            "maint.",
            "ratio",
            "liq. price",
            "",
        ],
        rows,
    )
    return summary + "\n\n" + positions


def _status(position: dict[str, Any]) -> str:
    return "LIQUIDATABLE" if position["liquidatable"] else "healthy"


def scenario_table(result: dict[str, Any]) -> str:
    shocks = ", ".join(result["shocks"])
    before, after = result["current"], result["shocked"]
    rows = [
        ["cross margin balance", money(before["margin_balance"]), money(after["margin_balance"])],
        [
            "cross maintenance margin",
            money(before["maintenance_margin"]),
            money(after["maintenance_margin"]),
        ],
        ["cross margin ratio", percent(before["margin_ratio"]), percent(after["margin_ratio"])],
        ["equity (all scopes)", money(before["equity"]), money(after["equity"])],
        ["anything liquidatable", str(before["liquidatable"]), str(after["liquidatable"])],
    ]
    for now, then in zip(before["positions"], after["positions"], strict=True):
        label = f"{now['symbol']} {now['side']} ({now['margin_mode']})"
        rows.append([f"{label} mark", money(now["mark_price"]), money(then["mark_price"])])
        rows.append([f"{label} uPnL", money(now["unrealized_pnl"]), money(then["unrealized_pnl"])])
        if now["margin_mode"] == "isolated":
            rows.append(
                [
                    f"{label} margin bal.",
                    money(now["margin_balance"]),
                    money(then["margin_balance"]),
                ]
            )
        rows.append(
            [f"{label} margin ratio", percent(now["margin_ratio"]), percent(then["margin_ratio"])]
        )
        rows.append([f"{label} status", _status(now), _status(then)])
        rows.append(
            [
                f"{label} liq. price",
                money(now["liquidation_price"]) if now["liquidation_price"] else "none",
                money(then["liquidation_price"]) if then["liquidation_price"] else "none",
            ]
        )
    return f"scenario: {shocks}\n" + table(["", "current", "shocked"], rows)
