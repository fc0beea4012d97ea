"""The engine against its reference model, over random command streams (Hypothesis).

tests/model/reference.py is a second implementation of the engine's money rules, written from
the specification and Binance's rules without the engine's code; tests/model/machine.py drives
both with the same random commands (every command type, six accounts in every position and
margin mode, three symbols, small moves, violent gaps and aimed marks, empty and funded
insurance fund). After every command (tests/model/harness.py):

* accepted/rejected agree, with the same reason code;
* every account's wallet, isolated margins, positions (side, quantity, entry notional,
  leverage, mode), open orders and reservations, leverage, modes and open margin calls, and the
  insurance fund, fee income, bad debt and external flows agree exactly;
* the engine liquidates exactly the scopes the model does (same LiquidationTriggered, in order);
* conservation: the engine's money ledgers sum to zero (``money_total``, with bad debt) and so
  do the model's;
* in both: no scope is left liquidatable, no scope without a position holds negative collateral,
  the insurance fund is never negative, a bankrupt scope ends at exactly zero;
* every ADL fill is at the bankrupt position's bankruptcy price, between the mark and that
  position's entry price, on its own symbol, mirrored by the counterparty's fill;
* a retried command id answers the first result, marked duplicate, and changes nothing;
and at the end of every example the log replays to the live state hash and the audit check passes.

The rare paths are counted over the run and each must have happened: bankruptcies (cross and
isolated), fund takeovers, ADL fills, bad debt, flips, partial liquidations and margin calls.
``make fuzz`` runs the same machine for CROSSMARGIN_FUZZ_EXAMPLES examples and prints the counts.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model.harness import RARE
from tests.model.machine import EngineVersusModel, ExternalEngineVersusModel
from tests.model.streams import COVERAGE, TOTALS

EXAMPLES = int(os.environ.get("CROSSMARGIN_MODEL_EXAMPLES", "400"))
EXTERNAL_EXAMPLES = max(1, EXAMPLES // 5)
# Shrinking a failure re-runs the engine thousands of times (minutes): the quick profile reports
# the failing stream as found (the harness names the first disagreeing command and field), the
# fuzz profile or CROSSMARGIN_MODEL_SHRINK=1 shrinks it.
SHRINK = bool(os.environ.get("CROSSMARGIN_MODEL_SHRINK"))
FUZZ_EXAMPLES = int(os.environ.get("CROSSMARGIN_FUZZ_EXAMPLES", "0"))


def _settings(examples: int, *, derandomize: bool) -> settings:
    phases = [Phase.explicit, Phase.reuse, Phase.generate]
    if SHRINK or not derandomize:
        phases.append(Phase.shrink)
    return settings(
        phases=phases,
        max_examples=examples,
        stateful_step_count=60,
        deadline=None,
        derandomize=derandomize,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def test_engine_matches_model_and_rare_paths_happen() -> None:
    TOTALS.clear()
    run_state_machine_as_test(EngineVersusModel, settings=_settings(EXAMPLES, derandomize=True))
    missing = [name for name in RARE if TOTALS[name] == 0]
    assert not missing, f"never reached: {missing} (counts: {dict(TOTALS)})"


def test_external_matching_engine_matches_model() -> None:
    """The same checks with external matching: orders rest until report_fill books them."""
    TOTALS.clear()
    run_state_machine_as_test(
        ExternalEngineVersusModel, settings=_settings(EXTERNAL_EXAMPLES, derandomize=True)
    )
    reached = {
        name: TOTALS[name] for name in ("bankruptcies", "partial liquidations", "margin calls")
    }
    assert all(reached.values()), f"never reached under external matching: {reached}"


def test_fuzz_profile() -> None:
    """The long profile (make fuzz): skipped unless CROSSMARGIN_FUZZ_EXAMPLES is set."""
    import pytest

    if FUZZ_EXAMPLES <= 0:
        pytest.skip("set CROSSMARGIN_FUZZ_EXAMPLES to run the long profile")
    TOTALS.clear()
    COVERAGE.clear()
    try:
        run_state_machine_as_test(
            EngineVersusModel, settings=_settings(FUZZ_EXAMPLES, derandomize=False)
        )
        run_state_machine_as_test(
            ExternalEngineVersusModel,
            settings=_settings(max(1, FUZZ_EXAMPLES // 6), derandomize=False),
        )
    finally:
        print("\nrare paths over", FUZZ_EXAMPLES, "examples:")
        for name, count in sorted(TOTALS.items()):
            print(f"  {name:24} {count}")
        print("commands by type and outcome:")
        for name, count in sorted(COVERAGE.items()):
            print(f"  {name:56} {count}")
    missing = [name for name in RARE if TOTALS[name] == 0]
    assert not missing, f"never reached: {missing}"
