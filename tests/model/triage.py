"""Triage: minimal command sequences for each distinct way the engine and the model disagree.

    .venv/bin/python -m tests.model.triage [EXAMPLES] [--external]

Runs the machine without stopping at a disagreement (each example stops at its first one),
groups the first disagreements by what differs (the fields named, accounts and numbers
blanked), and cuts each group's shortest stream down by delta debugging: commands are dropped
while the same kind of disagreement still appears. Prints one JSON command per line, ready to
feed to ``crossmargin engine`` (principals other than the operator are noted after ``#``).
A triage tool for people, not a test.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.model.harness import Harness
from tests.model.machine import EngineVersusModel, ExternalEngineVersusModel

History = list[tuple[list[dict[str, Any]], list[str]]]


def signature(report: str) -> tuple[str, ...]:
    """What a disagreement is about: its lines up to the engine's value, names blanked."""
    kinds = set()
    for line in report.splitlines()[1:]:
        head = line.split(": engine")[0].split(" left ")[0].strip()
        head = re.sub(r"\b(ann|ben|cat|dan|eve|fay)\b", "A", head)
        kinds.add(re.sub(r"[0-9.E-]+", "#", head))
    return tuple(sorted(kinds))


def first_failure(history: History, matching: str) -> str | None:
    harness = Harness(matching=matching, strict=False)
    for commands, principals in history:
        harness.run_batch([dict(c) for c in commands], principals)
        if harness.failures:
            return harness.failures[0]
    return None


def minimize(history: History, matching: str, wanted: tuple[str, ...]) -> History:
    def fails(candidate: History) -> bool:
        try:
            report = first_failure(candidate, matching)
        except Exception:  # a cut that breaks the stream is not a reproduction
            return False
        return report is not None and signature(report) == wanted

    single = [([c], [p]) for commands, ps in history for c, p in zip(commands, ps, strict=True)]
    if fails(single):
        history = single
    chunk = len(history) // 2
    while chunk >= 1:
        index, changed = 0, False
        while index < len(history):
            candidate = history[:index] + history[index + chunk :]
            if candidate and fails(candidate):
                history, changed = candidate, True
            else:
                index += chunk
        if not changed:
            chunk //= 2
    return history


def collect(
    examples: int, machine: type[EngineVersusModel]
) -> dict[tuple[str, ...], tuple[str, History]]:
    found: dict[tuple[str, ...], tuple[str, History]] = {}

    class Loose(machine):  # type: ignore[valid-type, misc]
        def __init__(self) -> None:
            super().__init__()
            self.harness.strict = False

        def submit(self, commands: list[dict[str, Any]], principals: list[str]) -> list[bool]:
            if self.harness.failures:  # this example has disagreed: stop feeding it
                return [False] * len(commands)
            return super().submit(commands, principals)

        def retry(self, pick: int) -> None:
            if not self.harness.failures:
                super().retry(pick)

        def agree(self) -> None:
            pass

        def teardown(self) -> None:
            if self.harness.failures:
                key = signature(self.harness.failures[0])
                history = list(self.harness.history)
                if key not in found or len(history) < len(found[key][1]):
                    found[key] = (self.harness.failures[0], history)

    run_state_machine_as_test(
        Loose,
        settings=settings(
            max_examples=examples,
            stateful_step_count=60,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        ),
    )
    return found


def main(argv: list[str]) -> None:
    external = "--external" in argv
    numbers = [int(a) for a in argv if a.isdigit()]
    machine = ExternalEngineVersusModel if external else EngineVersusModel
    matching = "external" if external else "simulated"
    found = collect(numbers[0] if numbers else 200, machine)
    print(f"{len(found)} kind(s) of disagreement")
    for key, (_, history) in found.items():
        small = minimize(history, matching, key)
        print(f"\n### {' | '.join(key)}  (matching: {matching})")
        for commands, principals in small:
            for command, principal in zip(commands, principals, strict=True):
                note = "" if principal == "operator" else f"  # principal {principal}"
                print(json.dumps(command) + note)
        print(first_failure(small, matching))


if __name__ == "__main__":
    main(sys.argv[1:])
