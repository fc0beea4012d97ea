"""Deterministic random command streams for the crash, replay and conservation tests.

``command_stream(seed, length)`` returns JSON-shaped commands for a Binance engine on BTCUSDT and
ETHUSDT: accounts (some isolated, some in hedge mode, high leverage), a small insurance fund,
market and limit orders (some reduce-only), cancels, mark moves with gaps large enough to
liquidate, bankrupt and auto-deleverage, funding of both signs, deposits, withdrawals, margin
moves, leverage and mode changes, malformed commands and repeated command ids. Many commands are
rejected on purpose; the stream only depends on ``seed``.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

SYMBOLS = ("BTCUSDT", "ETHUSDT")
START = {"BTCUSDT": Decimal(40000), "ETHUSDT": Decimal(2000)}
ACCOUNTS = tuple(f"acct{index}" for index in range(8))
HEDGE = {"acct6", "acct7"}
QTY = Decimal("0.001")
CENT = Decimal("0.01")


def _price(value: Decimal) -> str:
    return str(value.quantize(CENT))


def command_stream(seed: int, length: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    marks = dict(START)
    commands: list[dict[str, Any]] = []
    order_ids: list[str] = []

    def add(kind: str, **fields: Any) -> None:
        commands.append({"type": kind, "command_id": f"s{seed}-{len(commands)}", **fields})

    add("seed_insurance_fund", amount=str(rng.choice([500, 1000, 3000])))
    for account in ACCOUNTS:
        add("open_account", account=account)
        add("deposit", account=account, amount=str(rng.choice([800, 2000, 5000, 20000])))
        add(
            "set_leverage",
            account=account,
            symbol="BTCUSDT",
            leverage=str(rng.choice([10, 20, 50])),
        )
        add(
            "set_leverage",
            account=account,
            symbol="ETHUSDT",
            leverage=str(rng.choice([10, 20, 25])),
        )
        if account in HEDGE:
            add("set_position_mode", account=account, position_mode="hedge")
        if account in ("acct2", "acct5", "acct7"):
            add("set_margin_mode", account=account, symbol="ETHUSDT", margin_mode="isolated")
    for symbol in SYMBOLS:
        add("update_mark", symbol=symbol, price=_price(marks[symbol]))

    while len(commands) < length:
        roll = rng.random()
        account = rng.choice(ACCOUNTS)
        symbol = rng.choice(SYMBOLS)
        mark = marks[symbol]
        if roll < 0.36:
            side = rng.choice(["buy", "sell"])
            order_id = f"o{seed}-{len(commands)}"
            order_ids.append(order_id)
            notional = Decimal(rng.choice([300, 1000, 3000, 8000, 20000, 60000]))
            fields: dict[str, Any] = {
                "account": account,
                "order_id": order_id,
                "symbol": symbol,
                "side": side,
                "quantity": str(max(QTY, (notional / mark).quantize(QTY))),
            }
            if rng.random() < 0.35:
                offset = Decimal(rng.randint(-300, 300)) / 10000
                fields.update(order_type="limit", price=_price(mark * (1 + offset)))
            else:
                fields["order_type"] = "market"
            if rng.random() < 0.15:
                fields["reduce_only"] = True
            if account in HEDGE:
                fields["position_side"] = rng.choice(["long", "short"])
            add("place_order", **fields)
        elif roll < 0.66:
            if rng.random() < 0.08:
                move = Decimal(rng.choice([-1, 1])) * Decimal(rng.randint(60, 140)) / 1000
            else:
                move = Decimal(rng.randint(-150, 150)) / 10000
            marks[symbol] = max(mark / 4, (mark * (1 + move)).quantize(CENT))
            add("update_mark", symbol=symbol, price=_price(marks[symbol]))
        elif roll < 0.71:
            rate = Decimal(rng.randint(-100, 100)) / 100000
            add("settle_funding", symbol=symbol, rate=str(rate))
        elif roll < 0.76 and order_ids:
            add("cancel_order", account=account, order_id=rng.choice(order_ids[-12:]))
        elif roll < 0.81:
            add("deposit", account=account, amount=str(rng.choice([100, 500, 2500])))
        elif roll < 0.86:
            add("withdraw", account=account, amount=str(rng.choice([50, 300, 1500])))
        elif roll < 0.89:
            kind = rng.choice(["add_isolated_margin", "remove_isolated_margin"])
            extra = {"position_side": rng.choice(["long", "short"])} if account in HEDGE else {}
            add(kind, account=account, symbol="ETHUSDT", amount=str(rng.choice([10, 100])), **extra)
        elif roll < 0.91:
            leverage = rng.choice([5, 10, 20, 50, 75, 125])
            add("set_leverage", account=account, symbol=symbol, leverage=str(leverage))
        elif roll < 0.93:
            mode = rng.choice(["cross", "isolated"])
            add("set_margin_mode", account=account, symbol=symbol, margin_mode=mode)
        elif roll < 0.95:
            add("deposit", account=account, amount=rng.choice(["-5", "abc", "0"]))
        elif roll < 0.97 and len(commands) > 1:
            commands.append(dict(rng.choice(commands)))  # a client retry of an earlier command
        elif roll < 0.98:
            add("seed_insurance_fund", amount=str(rng.choice([100, 400])))
        else:
            add(
                "place_order",
                account="nobody",
                order_id="x",
                symbol=symbol,
                side="buy",
                order_type="market",
                quantity="1",
            )
    return commands[:length]
