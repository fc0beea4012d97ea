"""Child process of the crash test: append batches forever, printing each one after it returns.

Usage: ``python crash_writer.py URL SCHEMA ROUND`` (SCHEMA empty for SQLite). Prints ``ready``,
then for every batch whose ``append_batch`` returned: ``ROUND BATCH SIZE FIRST_SEQ LAST_SEQ``,
flushed at once, so the parent knows exactly which batches were acknowledged before it sent
SIGKILL.
"""

from __future__ import annotations

import random
import sys
from decimal import Decimal

from crossmargin.ledger import Entry, open_store


def main(url: str, schema: str, round_number: int) -> None:
    store = open_store(url, schema=schema or None)
    rng = random.Random(round_number)
    print("ready", flush=True)
    batch = 0
    while True:
        size = rng.randint(1, 40)
        entries = [
            Entry(
                command_id=f"r{round_number}-b{batch}-e{index}",
                command={"round": round_number, "batch": batch, "size": size, "index": index},
                result={"accepted": True, "amount": Decimal(rng.randint(1, 10**6)) / 100},
                events=[{"type": "deposited", "amount": Decimal(index) / 8}],
            )
            for index in range(size)
        ]
        seqs = store.append_batch(entries)
        print(f"{round_number} {batch} {size} {seqs[0]} {seqs[-1]}", flush=True)
        batch += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
