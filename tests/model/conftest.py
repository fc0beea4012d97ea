"""The model tests' streams must not depend on what else the session imported.

Hypothesis (since 6.131) sometimes draws "local constants": literals it collects from every
module of this project loaded so far. A derandomized stream is then a function of which tests
ran before (the browser tests load the service, the service loads more constants) and the
rare-path counts the tests assert moved with it: 17 partial liquidations run alone, 0 after
tests/browser. Here the local pool is empty for the length of each model test, so the streams
come from the seed alone; Hypothesis's own global constants still apply.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis.internal.conjecture import providers


@pytest.fixture(autouse=True)
def _no_local_constants() -> Iterator[None]:
    if not hasattr(providers, "_get_local_constants"):  # an older Hypothesis: nothing to pin
        yield
        return
    original = providers._get_local_constants
    empty = providers.Constants()
    providers.CONSTANTS_CACHE.cache.clear()
    providers._get_local_constants = lambda: empty
    try:
        yield
    finally:
        providers._get_local_constants = original
        providers.CONSTANTS_CACHE.cache.clear()
