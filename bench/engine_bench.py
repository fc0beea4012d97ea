"""Engine benchmarks (issue 3): durable throughput vs raw append, latency, liquidation decision.

1. Durable throughput: the same command stream through ``Engine.execute_batch`` (decide + one
   fsync'd transaction per batch), against the raw rate of appending the same logged payloads
   (command, result, events) to a fresh store of the same kind with the same batch size.
2. Latency per command (batch size 1: each command its own durable commit), p50 and p99.
3. Mark update -> liquidation decision: 100,000 accounts each holding BTCUSDT and ETHUSDT, one
   BTCUSDT mark update that makes some of them liquidatable; the time to decide it (scan, core
   confirmation, liquidation events), without the append.
Run: ``python -m bench engine`` (or ``make bench``). Prints a table; timings are this machine's.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from decimal import Decimal
from typing import Any

from crossmargin.app import screening
from crossmargin.app.decide import decide
from crossmargin.app.evolve import apply_record
from crossmargin.app.records import position_to_dict
from crossmargin.app.views import account_scopes
from crossmargin.app.writer import Engine, build_state
from crossmargin.core.position import MarginMode, Position, Side
from crossmargin.ledger import open_store


def _stream(count: int) -> list[dict[str, Any]]:
    commands: list[dict[str, Any]] = [
        {"command_id": "m1", "type": "update_mark", "symbol": "BTCUSDT", "price": "50000"},
        {"command_id": "m2", "type": "update_mark", "symbol": "ETHUSDT", "price": "3000"},
    ]
    accounts = max(1, count // 10)
    for index in range(accounts):
        commands.append({"command_id": f"o{index}", "type": "open_account", "account": f"a{index}"})
        commands.append(
            {
                "command_id": f"d{index}",
                "type": "deposit",
                "account": f"a{index}",
                "amount": "10000",
            }
        )
    index = 0
    while len(commands) < count:
        account = f"a{index % accounts}"
        side = "buy" if index % 2 == 0 else "sell"
        commands.append(
            {
                "command_id": f"p{index}",
                "type": "place_order",
                "account": account,
                "order_id": f"x{index}",
                "symbol": "ETHUSDT" if index % 3 else "BTCUSDT",
                "side": side,
                "order_type": "market",
                "quantity": "0.01",
            }
        )
        index += 1
    return commands[:count]


def _open(url_or_dir: str, name: str) -> Any:
    if url_or_dir.startswith("postgresql://"):
        from crossmargin.ledger.postgres import PostgresEventStore

        schema = f"bench_{name}_{os.getpid()}"
        return PostgresEventStore(url_or_dir, schema=schema)
    return open_store(os.path.join(url_or_dir, f"{name}.db"))


def durable_throughput(target: str, count: int, batch: int, rounds: int = 3) -> tuple[float, float]:
    """Median (engine commands/s, raw appends/s) over ``rounds`` alternating runs.

    Both stores are warmed first with the same leading third of the stream, untimed (a fresh
    SQLite WAL pays for growing its file on the first commits); the timed part is the same
    commands for the engine and the same logged entries for the raw append. The machine's disk
    is shared, so engine and raw runs alternate and medians are compared.
    """
    commands = _stream(count)
    warm = count // 3
    engine_rates, raw_rates = [], []
    for round_index in range(rounds):
        store = _open(target, f"engine{batch}_{round_index}")
        engine = Engine(store, snapshot_every=0)
        for offset in range(0, warm, batch):
            engine.execute_batch(commands[offset : min(offset + batch, warm)])
        start = time.perf_counter()
        for offset in range(warm, count, batch):
            engine.execute_batch(commands[offset : offset + batch])
        engine_rates.append((count - warm) / (time.perf_counter() - start))
        entries = [(e.command_id, e.command, e.result, e.events) for e in store.read(0)]
        store.close()
        raw = _open(target, f"raw{batch}_{round_index}")
        head, timed = entries[: warm + 1], entries[warm + 1 :]  # genesis + warm-up, untimed
        for offset in range(0, len(head), batch):
            raw.append_batch(head[offset : offset + batch])
        start = time.perf_counter()
        for offset in range(0, len(timed), batch):
            raw.append_batch(timed[offset : offset + batch])
        raw_rates.append(len(timed) / (time.perf_counter() - start))
        raw.close()
    return statistics.median(engine_rates), statistics.median(raw_rates)


def latency(target: str, count: int) -> tuple[float, float]:
    commands = _stream(count)
    store = _open(target, "latency")
    engine = Engine(store, snapshot_every=0)
    samples = []
    for command in commands:
        start = time.perf_counter()
        engine.execute(command)
        samples.append(time.perf_counter() - start)
    store.close()
    samples.sort()
    return statistics.median(samples) * 1e3, samples[int(len(samples) * 0.99)] * 1e3


def liquidation_decision(accounts: int, price: int = 47000) -> dict[str, float]:
    """One BTCUSDT tick over ``accounts`` accounts: screen, Decimal confirmation, whole decide."""
    state = build_state({"venue": "binance-usdm", "symbols": ["BTCUSDT", "ETHUSDT"]})
    apply_record(state, {"type": "MarkPriceUpdated", "symbol": "BTCUSDT", "price": Decimal(50000)})
    apply_record(state, {"type": "MarkPriceUpdated", "symbol": "ETHUSDT", "price": Decimal(3000)})
    for index in range(accounts):
        account = f"a{index}"
        wallet = Decimal(300 + (index % 700))  # some thin accounts will fail on a 5% drop
        apply_record(state, {"type": "AccountOpened", "account": account})
        apply_record(
            state,
            {
                "type": "FundsDeposited",
                "account": account,
                "amount": wallet,
                "postings": [[f"wallet:{account}", wallet], ["external:deposits", -wallet]],
            },
        )
        for symbol, quantity, entry in (("BTCUSDT", "0.1", 50000), ("ETHUSDT", "-1", 3000)):
            signed = Decimal(quantity)
            position = Position(
                symbol=symbol,
                side=Side.LONG if signed > 0 else Side.SHORT,
                quantity=abs(signed),
                entry_notional=abs(signed) * entry,
                leverage=Decimal(20),
                margin_mode=MarginMode.CROSS,
            )
            # a position placed directly (the event that sets a slot's position)
            apply_record(
                state,
                {
                    "type": "PositionLeverageChanged",
                    "account": account,
                    "position": {
                        "account": account,
                        "symbol": symbol,
                        "slot": "both",
                        "after": position_to_dict(position),
                    },
                },
            )
    screening.rebuild(state)
    command = {
        "command_id": "tick",
        "type": "update_mark",
        "symbol": "BTCUSDT",
        "price": str(price),
    }
    assert state.screen is not None
    start = time.perf_counter()
    flagged = state.screen.tick("BTCUSDT", float(price), 0.8)
    screened = time.perf_counter()
    draft = state.draft()
    draft.marks["BTCUSDT"] = Decimal(price)
    confirmed = sum(
        1
        for account_id in flagged
        for scope in account_scopes(draft, draft.accounts[account_id])
        if scope.liquidatable
    )
    decided = time.perf_counter()
    state.screen.tick("BTCUSDT", 50000.0, 0.8)  # back, so decide() sees the same move
    begin = time.perf_counter()
    outcome = decide(state, command)
    done = time.perf_counter()
    return {
        "screen_ms": (screened - start) * 1e3,
        "confirm_ms": (decided - screened) * 1e3,
        "flagged": len(flagged),
        "liquidatable": confirmed,
        "decide_ms": (done - begin) * 1e3,
        "liquidations": int(outcome.result.get("liquidations", 0)),
        "events": len(outcome.events),
    }


def main() -> None:
    count = int(os.environ.get("CROSSMARGIN_BENCH_COMMANDS", "2000"))
    accounts = int(os.environ.get("CROSSMARGIN_BENCH_ACCOUNTS", "100000"))
    targets = [("sqlite", tempfile.mkdtemp(prefix="cm-bench-"))]
    postgres = os.environ.get("CROSSMARGIN_TEST_POSTGRES_URL")
    if postgres:
        targets.append(("postgresql", postgres))
    print(f"\nEngine (issue 3): {count} commands, machine: {os.cpu_count()} cores")
    print(f"{'store':<11} {'batch':>5} {'engine cmd/s':>13} {'raw append/s':>13} {'ratio':>6}")
    for name, target in targets:
        for batch in (1, 100):
            engine_rate, raw_rate = durable_throughput(target, count, batch)
            print(
                f"{name:<11} {batch:>5} {engine_rate:>13,.0f} {raw_rate:>13,.0f}"
                f" {engine_rate / raw_rate:>6.2f}"
            )
        p50, p99 = latency(target, min(count, 1000))
        print(
            f"{name:<11} latency per command (durable, batch 1): p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        )
    for price, label in ((49500, "1% drop"), (47000, "6% drop")):
        tick = liquidation_decision(accounts, price)
        print(
            f"BTCUSDT {label}, {accounts:,} accounts: batch screen {tick['screen_ms']:,.1f} ms "
            f"flags {tick['flagged']:,.0f}; Decimal confirmation {tick['confirm_ms']:,.1f} ms finds "
            f"{tick['liquidatable']:,.0f} liquidatable; mark -> decision "
            f"{tick['screen_ms'] + tick['confirm_ms']:,.1f} ms; whole update_mark with "
            f"{tick['liquidations']:,.0f} liquidations executed ({tick['events']:,.0f} events): "
            f"{tick['decide_ms']:,.0f} ms"
        )


if __name__ == "__main__":
    main()
