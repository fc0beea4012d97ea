"""The choice between the numba kernels and the numpy fallback, and how kernels are compiled.

Every batch function takes ``backend``: ``"numba"``, ``"numpy"`` or None (read the environment
variable ``CROSSMARGIN_BATCH_BACKEND``, default ``"auto"``: numba when it is installed). Both
backends compute the same formulas; the tests run each public function on both.

Compiled kernels are cached on disk (``cache=True``): the first run in an environment compiles
them (tens of seconds), later runs load them (a fraction of a second). Where, and why under a
fingerprint of the sources: :mod:`crossmargin.batch.kernel_cache`. :func:`compile_notice` tells
the user on stderr when a run is compiling.

Parallel kernels are launched by one thread at a time: numba's ``workqueue`` threading layer
(the one always present) aborts the process on concurrent launches, and two launches would only
share the same cores.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TextIO, TypeVar, cast

from crossmargin.batch import kernel_cache
from crossmargin.core.errors import InvalidInput

BACKEND_ENV = "CROSSMARGIN_BATCH_BACKEND"
BACKENDS = ("auto", "numba", "numpy")
NOTICE = "compiling batch kernels (first run only)..."

F = TypeVar("F", bound=Callable[..., Any])

try:
    import numba
    from numba.core import config as _config
    from numba.core import event as numba_event

    numba_config: Any = _config  # numba.core.config's settings are set at run time

    HAVE_NUMBA = True
    prange: Callable[..., range] = numba.prange
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None  # type: ignore[assignment]
    HAVE_NUMBA = False
    prange = range

_LAUNCH = threading.Lock()


def _cache_directory() -> str | None:
    if not HAVE_NUMBA:  # pragma: no cover
        return None
    key = kernel_cache.fingerprint(Path(__file__).parent, salt=numba.__version__)
    directory = kernel_cache.cache_directory(key)
    return None if directory is None else str(directory)


CACHE_DIRECTORY = _cache_directory()  # see crossmargin.batch.kernel_cache


def _compile(function: Callable[..., Any], **options: Any) -> Any:
    """``numba.njit``, cached in :data:`CACHE_DIRECTORY` (not cached where nothing is writable).

    numba's ``CACHE_DIR`` setting is pointed there only while the kernel is decorated (numba
    fixes a function's cache location then), so other numba code in the process is unaffected."""
    if CACHE_DIRECTORY is None:
        return numba.njit(cache=False, **options)(function)
    previous = numba_config.CACHE_DIR
    numba_config.CACHE_DIR = CACHE_DIRECTORY
    try:
        return numba.njit(cache=True, **options)(function)
    finally:
        numba_config.CACHE_DIR = previous


def jit(function: F) -> F:
    """Compile ``function`` with numba (cached on disk) when numba is installed."""
    if not HAVE_NUMBA:  # pragma: no cover
        return function
    return cast(F, _compile(function, nogil=True))


def jit_inline(function: F) -> F:
    """Like :func:`jit`, inlined into the calling kernel (small helpers of hot loops)."""
    if not HAVE_NUMBA:  # pragma: no cover
        return function
    return cast(F, _compile(function, nogil=True, inline="always"))


def jit_parallel(function: F) -> F:
    """Like :func:`jit`, with ``prange`` loops spread over the cores (one launch at a time)."""
    if not HAVE_NUMBA:  # pragma: no cover
        return function
    kernel = _compile(function, nogil=True, parallel=True)

    @wraps(function)
    def launch(*args: Any) -> Any:
        with _LAUNCH:
            return kernel(*args)

    launch.kernel = kernel  # type: ignore[attr-defined]
    return cast(F, launch)


@contextmanager
def calling_thread_only(only: bool = True) -> Iterator[None]:
    """While inside (and ``only``), parallel kernels run on the calling thread alone. A parallel
    launch waits until every worker thread has been scheduled, which on a busy machine costs
    milliseconds: ticks, whose latency matters and whose work is a fraction of the book, stay on
    the calling thread (a full revaluation spreads over the cores)."""
    if not HAVE_NUMBA or not only:
        yield
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(1)  # a per-thread setting
    try:
        yield
    finally:
        numba.set_num_threads(previous)


class _Notice(numba_event.Listener if HAVE_NUMBA else object):  # type: ignore[misc]
    """Prints :data:`NOTICE` when the first kernel starts compiling, and the time at the end."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.depth = 0
        self.started = 0.0
        self.seconds = 0.0

    def on_start(self, event: object) -> None:
        if self.depth == 0:
            if self.seconds == 0.0:
                print(NOTICE, file=self.stream, flush=True)
            self.started = time.perf_counter()
        self.depth += 1

    def on_end(self, event: object) -> None:
        self.depth -= 1
        if self.depth == 0:
            self.seconds += time.perf_counter() - self.started


@contextmanager
def compile_notice(stream: TextIO | None = None) -> Iterator[None]:
    """While inside, announce on ``stream`` (stderr) that kernels are being compiled (a run with
    a warm cache loads them and prints nothing)."""
    if not HAVE_NUMBA:  # pragma: no cover
        yield
        return
    target = sys.stderr if stream is None else stream
    notice = _Notice(target)
    with numba_event.install_listener("numba:compile", notice):
        yield
    if notice.seconds:
        print(
            f"batch kernels compiled in {notice.seconds:.1f} s; later runs load them from the cache",
            file=target,
            flush=True,
        )


def use_numba(backend: str | None) -> bool:
    """True when the numba kernels should run for ``backend`` (see the module docstring)."""
    choice = backend if backend is not None else os.environ.get(BACKEND_ENV, "auto")
    if choice not in BACKENDS:
        raise InvalidInput("backend", f"expected one of {', '.join(BACKENDS)}, got {choice!r}")
    if choice == "numba" and not HAVE_NUMBA:
        raise InvalidInput("backend", "numba is not installed (pip install crossmargin[fast])")
    return choice != "numpy" and HAVE_NUMBA
