"""Every distributed test that takes ``backend`` runs on the numba kernels and on the numpy fallback."""

from __future__ import annotations

import pytest

BACKENDS = ("numba", "numpy")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name
