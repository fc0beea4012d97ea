"""Raw append rate of the event stores: the denominator of the durable-throughput ratio.

Appends N engine-shaped entries (command, result, two events with Decimal postings) to a fresh
store, ``group`` entries per durable transaction (group 1 = one fsync'd COMMIT per entry), and
reports entries per second and commits per second. SQLite always; PostgreSQL when
``CROSSMARGIN_BENCH_POSTGRES_URL`` (or ``CROSSMARGIN_TEST_POSTGRES_URL``) names a server, in a
temporary schema dropped afterwards. ``encode only`` is the codec's cost with no store, for scale.

Run: ``python -m bench ledger`` (``make bench`` runs every benchmark). ``LEDGER_BENCH_N`` sets N
(default 2000). Timings depend on this machine's disk and load; compare ratios measured together.
``raw_append_rate`` is importable so the engine benchmark can time the same payloads the same way.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from crossmargin.ledger import Entry, open_store
from crossmargin.ledger.store import EntryLike, encode_entries

POSTGRES_URL_ENVS = ("CROSSMARGIN_BENCH_POSTGRES_URL", "CROSSMARGIN_TEST_POSTGRES_URL")
GROUP_SIZES = (1, 10, 100)


def sample_entries(count: int, prefix: str = "bench") -> list[Entry]:
    """``count`` entries shaped like the engine's: an order, its fill result, two events."""
    entries = []
    for index in range(count):
        price = Decimal(50_000) + Decimal(index % 997) / 10
        quantity = Decimal(index % 13 + 1) / 1000
        fee = (price * quantity * Decimal("0.0005")).quantize(Decimal("1e-8"))
        account = f"a{index % 100}"
        entries.append(
            Entry(
                command_id=f"{prefix}-{index}",
                command={
                    "type": "place_order",
                    "account": account,
                    "order_id": f"o{index}",
                    "symbol": "BTCUSDT",
                    "side": "buy" if index % 2 else "sell",
                    "quantity": quantity,
                    "price": price,
                },
                result={"status": "accepted", "filled": quantity, "average_price": price},
                events=[
                    {
                        "type": "order_filled",
                        "account": account,
                        "symbol": "BTCUSDT",
                        "quantity": quantity,
                        "price": price,
                        "fee": fee,
                    },
                    {
                        "type": "balance_changed",
                        "postings": [[f"wallet:{account}", -fee], ["fee_income", fee]],
                    },
                ],
            )
        )
    return entries


def _time_appends(
    store_append: Callable[[Sequence[EntryLike]], list[int]], entries: Sequence[Entry], group: int
) -> float:
    started = time.perf_counter()
    for start in range(0, len(entries), group):
        store_append(entries[start : start + group])
    return time.perf_counter() - started


def raw_append_rate(
    url: str, entries: Sequence[Entry], group: int, *, schema: str | None = None
) -> float:
    """Entries per second appending ``entries`` to the store at ``url``, ``group`` per commit.

    The store is opened before the clock starts and closed after it stops; ``url`` should name
    a fresh store (command ids must not already be in it).
    """
    store = open_store(url, schema=schema)
    try:
        seconds = _time_appends(store.append_batch, entries, group)
    finally:
        store.close()
    return len(entries) / seconds


def encode_rate(entries: Sequence[Entry]) -> float:
    started = time.perf_counter()
    encode_entries(entries)
    return len(entries) / (time.perf_counter() - started)


def _postgres_url() -> str | None:
    for name in POSTGRES_URL_ENVS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def _drop_schema(url: str, schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


def measure(count: int) -> list[dict[str, Any]]:
    """One row per (backend, group size): entries/s and commits/s."""
    rows: list[dict[str, Any]] = []
    entries = sample_entries(count)
    rows.append({"backend": "encode only", "group": "-", "entries_per_s": encode_rate(entries)})
    with tempfile.TemporaryDirectory(prefix="ledger-bench-") as directory:
        for group in GROUP_SIZES:
            path = Path(directory) / f"group-{group}.db"
            rate = raw_append_rate(str(path), entries, group)
            rows.append({"backend": "sqlite", "group": group, "entries_per_s": rate})
    url = _postgres_url()
    if url is None:
        rows.append({"backend": "postgresql", "group": "-", "entries_per_s": None})
        return rows
    for group in GROUP_SIZES:
        schema = f"cm_bench_{uuid.uuid4().hex[:12]}"
        try:
            rate = raw_append_rate(url, entries, group, schema=schema)
        finally:
            _drop_schema(url, schema)
        rows.append({"backend": "postgresql", "group": group, "entries_per_s": rate})
    return rows


def render(rows: Sequence[dict[str, Any]], count: int) -> str:
    lines = [
        f"Raw durable append rate, {count} entries (command + result + 2 events each)",
        f"{'backend':<12} {'group':>6} {'entries/s':>12} {'commits/s':>10}",
    ]
    for row in rows:
        rate = row["entries_per_s"]
        if rate is None:
            names = " or ".join(POSTGRES_URL_ENVS)
            lines.append(f"{row['backend']:<12} {'-':>6}  skipped: set {names}")
            continue
        commits = "-" if row["group"] == "-" else f"{rate / row['group']:,.0f}"
        lines.append(f"{row['backend']:<12} {row['group']!s:>6} {rate:>12,.0f} {commits:>10}")
    return "\n".join(lines)


def main() -> None:
    count = int(os.environ.get("LEDGER_BENCH_N", "2000"))
    print(render(measure(count), count))


if __name__ == "__main__":
    main()
