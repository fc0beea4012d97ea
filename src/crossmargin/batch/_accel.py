"""The choice between the numba kernels and the numpy fallback.

Every batch function takes ``backend``: ``"numba"``, ``"numpy"`` or None (read the environment
variable ``CROSSMARGIN_BATCH_BACKEND``, default ``"auto"``: numba when it is installed). Both
backends compute the same formulas; the tests run each public function on both.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from crossmargin.core.errors import InvalidInput

BACKEND_ENV = "CROSSMARGIN_BATCH_BACKEND"
BACKENDS = ("auto", "numba", "numpy")

F = TypeVar("F", bound=Callable[..., Any])

try:
    import numba

    HAVE_NUMBA = True
    prange: Callable[..., range] = numba.prange
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False
    prange = range


def jit(function: F) -> F:
    """Compile ``function`` with numba (cached on disk) when numba is installed."""
    if not HAVE_NUMBA:  # pragma: no cover
        return function
    return cast(F, numba.njit(cache=True, nogil=True)(function))


def jit_inline(function: F) -> F:
    """Like :func:`jit`, inlined into the calling kernel (small helpers of hot loops)."""
    if not HAVE_NUMBA:  # pragma: no cover
        return function
    return cast(F, numba.njit(cache=True, nogil=True, inline="always")(function))


def jit_parallel(function: F) -> F:
    """Like :func:`jit`, with ``prange`` loops spread over the cores."""
    if not HAVE_NUMBA:  # pragma: no cover
        return function
    return cast(F, numba.njit(cache=True, nogil=True, parallel=True)(function))


def use_numba(backend: str | None) -> bool:
    """True when the numba kernels should run for ``backend`` (see the module docstring)."""
    choice = backend if backend is not None else os.environ.get(BACKEND_ENV, "auto")
    if choice not in BACKENDS:
        raise InvalidInput("backend", f"expected one of {', '.join(BACKENDS)}, got {choice!r}")
    if choice == "numba" and not HAVE_NUMBA:
        raise InvalidInput("backend", "numba is not installed (pip install crossmargin[fast])")
    return choice != "numpy" and HAVE_NUMBA
