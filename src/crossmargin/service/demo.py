"""``crossmargin serve --demo``: the worked example live, through a real crash.

The worked example (``sim.demo``) is a $1,000 book: long ETH at 10x and short BTC at 5x with
$4,000 and $3,000 of notional ($400 and $600 of margin in isolated mode). The demo opens it
three times, side by side, at the real prices of the replay's first mark, then replays the May
2021 crash from ``DEMO_START``: ETH falls from about 3,400 to 1,900 on 19 May (with a wick to
1,400.73 at 13:40).

* ``demo-cross``: one $1,000 cross wallet behind both legs;
* ``demo-isolated``: both symbols isolated ($400 behind ETH, $600 behind BTC);
* ``demo-cross-topped-up``: the cross book with $331 more in its wallet ($1,331), so that the
  demo shows a margin call. The replay is known in advance and the amount is chosen from it:
  the wick of 19 May 13:40 (ETH 1,400.73, BTC 28,688) takes this account's margin ratio to 88%,
  over the 80% margin-call threshold and short of the 100% that liquidates. Margin calls live in
  a narrow band (a margin balance between 1 and 1.25 times maintenance: about $14 to $17 here)
  that an hourly replay mostly jumps over; any wallet from $1,329.11 to $1,332.58 lands in it.
  The next tick (ETH 2,485.17, BTC 35,650 together) clears the call, and the account survives
  the replay; ``demo-cross`` is liquidated by the same wick.

Quantities are the notionals divided by the start prices, rounded down to ``QUANTITY_STEP``, so
the notionals are the worked example's to within a few dollars. Each account deposits its
wallet plus the taker fees of its two opening orders, so that after opening it holds exactly
its wallet as collateral (the example ignores fees; a venue charges them). Every setup command
has a fixed id, so running the setup again on the same log changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from crossmargin.core.errors import Conflict
from crossmargin.core.numbers import format_decimal, round_requirement
from crossmargin.service.context import ServiceContext

EPISODE = "may-2021"
DEMO_START = datetime(2021, 5, 18, 12, tzinfo=UTC)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
ETH, BTC = "ETHUSDT", "BTCUSDT"
WALLET = Decimal(1000)
INSURANCE_FUND = Decimal(100_000)
QUANTITY_STEP = Decimal("0.001")
LEGS = {  # symbol: (side, notional in USDT, leverage)
    ETH: ("buy", Decimal(4000), Decimal(10)),
    BTC: ("sell", Decimal(3000), Decimal(5)),
}
TOP_UP = Decimal(331)
ACCOUNTS = {  # account: (margin mode of both legs, collateral after opening)
    "demo-cross": ("cross", WALLET),
    "demo-isolated": ("isolated", WALLET),
    "demo-cross-topped-up": ("cross", WALLET + TOP_UP),
}


def quantities(prices: Mapping[str, Decimal]) -> dict[str, Decimal]:
    return {
        symbol: (notional / prices[symbol]).quantize(QUANTITY_STEP, rounding=ROUND_DOWN)
        for symbol, (_, notional, _) in LEGS.items()
    }


def setup_commands(
    prices: Mapping[str, Decimal], taker_fee_rates: Mapping[str, Decimal]
) -> list[dict[str, Any]]:
    """Every command of the demo's setup, in order."""
    sizes = quantities(prices)
    fees = sum(
        (round_requirement(sizes[s] * prices[s] * taker_fee_rates[s]) for s in LEGS), Decimal(0)
    )
    commands: list[dict[str, Any]] = [
        {"type": "seed_insurance_fund", "command_id": "demo.fund", "amount": INSURANCE_FUND}
    ]
    commands.append(
        {"type": "update_marks", "command_id": "demo.marks", "prices": dict(sorted(prices.items()))}
    )
    for account, (mode, wallet) in ACCOUNTS.items():
        tag = f"demo.{account}"
        commands += [
            {"type": "open_account", "command_id": f"{tag}.open", "account": account},
            {
                "type": "deposit",
                "command_id": f"{tag}.deposit",
                "account": account,
                "amount": wallet + fees,
            },
        ]
        for symbol, (side, _, leverage) in LEGS.items():
            if mode == "isolated":
                commands.append(
                    {
                        "type": "set_margin_mode",
                        "command_id": f"{tag}.mode.{symbol}",
                        "account": account,
                        "symbol": symbol,
                        "margin_mode": "isolated",
                    }
                )
            quantity = sizes[symbol]
            commands += [
                {
                    "type": "set_leverage",
                    "command_id": f"{tag}.leverage.{symbol}",
                    "account": account,
                    "symbol": symbol,
                    "leverage": leverage,
                },
                {
                    "type": "place_order",
                    "command_id": f"{tag}.order.{symbol}",
                    "account": account,
                    "order_id": f"{account}-open-{symbol}",
                    "symbol": symbol,
                    "side": side,
                    "order_type": "market",
                    "quantity": quantity,
                },
            ]
    return commands


async def open_demo(
    context: ServiceContext, prices: Mapping[str, Decimal], stamp: datetime
) -> dict[str, str]:
    """Run the setup (its marks stamped ``stamp``); returns a fresh key per demo account."""
    rates = await context.host.read(
        lambda model: {s: model.instruments[s].taker_fee_rate for s in LEGS}
    )
    commands = setup_commands(prices, rates)
    results = await context.host.submit_many(commands, stamp)
    for command, result in zip(commands, results, strict=True):
        if result.get("status") != "accepted":
            raise Conflict(
                "demo-setup",
                f"{command['command_id']} was refused: {result.get('message', result)}",
            )
    return {account: context.keys.issue(account) for account in ACCOUNTS}


def describe_prices(prices: Mapping[str, Decimal]) -> str:
    return ", ".join(f"{s} {format_decimal(p)}" for s, p in sorted(prices.items()))
