"""Run the benchmarks: ``python -m bench`` runs every ``bench/*_bench.py``'s ``main()``;
``python -m bench ledger engine`` runs only the named ones."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main(names: list[str]) -> None:
    found = sorted(path.stem for path in Path(__file__).parent.glob("*_bench.py"))
    chosen = [stem for stem in found if not names or stem.removesuffix("_bench") in names]
    unknown = set(names) - {stem.removesuffix("_bench") for stem in found}
    if unknown:
        sys.exit(f"unknown benchmark(s): {', '.join(sorted(unknown))}; have: {', '.join(found)}")
    for stem in chosen:
        print(f"== {stem} ==", flush=True)
        importlib.import_module(f"bench.{stem}").main()
        print(flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
