"""The benchmarks are code too: every one imports against today's package, and the engine's
liquidation-decision benchmark, run small, still builds its book and reaches liquidations (it
once imported names a refactor had removed, and nothing in the suite noticed)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
MODULES = sorted(path.stem for path in BENCH.glob("*.py") if path.stem != "__init__")


@pytest.mark.parametrize("name", MODULES)
def test_each_benchmark_imports(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    if name.endswith("_bench"):
        assert callable(module.main)


def test_the_liquidation_decision_benchmark_reaches_liquidations() -> None:
    from bench.engine_bench import liquidation_decision

    quiet = liquidation_decision(200, 49500)
    crash = liquidation_decision(200, 47000)
    assert quiet["liquidations"] == 0
    assert crash["flagged"] >= crash["liquidatable"] > 0
    assert crash["liquidations"] == crash["liquidatable"]
