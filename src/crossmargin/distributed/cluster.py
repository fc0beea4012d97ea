"""A book sharded across Ray actors: ticks broadcast, stress grids and Monte Carlo split and combined.

:class:`DistributedBook` starts one actor per shard (:class:`~crossmargin.distributed.shard.
ShardServer` inside); each loads its accounts from the book's source. The driver keeps only the
current marks and a tick version:

* ``tick(symbol, price)``: every shard receives ``(version, marks, symbol)`` (about 0.5 kB for 50
  symbols), applies the one-symbol update and returns its liquidation candidates (global ids)
  and aggregates; the driver concatenates and sums (:func:`~crossmargin.distributed.shard.
  combine_ticks`).
* ``stress(grid)``: the shock matrix is put in the object store once; each shard runs
  ``workers // shards`` shock slices at once (threads of one actor: the numba kernels release the
  GIL) and returns per-account results with the liquidation flags bit-packed.
* ``monte_carlo(spec)``: each shard draws the same paths from the seed (a few bytes go out, not the
  paths) and returns per-account probabilities; numba spreads a shard's accounts over the actor's
  CPUs.

Shard loss: actors are created with ``max_restarts``, and Ray re-runs ``__init__`` (a reload from
the source) when one dies. A call that fails because its actor died is submitted again, up to
``max_restarts`` times; a restarted shard that missed ticks revalues fully at the tick's marks,
which gives the bits an undisturbed shard would have (so the answer is the same).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import ray
from ray.exceptions import ActorUnavailableError, RayActorError, RayTaskError

from crossmargin.batch.convert import Floats
from crossmargin.batch.montecarlo import MODELS, MonteCarloResult
from crossmargin.batch.stress import ShockGrid, StressResult
from crossmargin.core.errors import CrossmarginError, InvalidInput
from crossmargin.distributed.shard import (
    MonteCarloSpec,
    ShardInfo,
    ShardServer,
    StressPart,
    TickPart,
    TickResult,
    combine_monte_carlo,
    combine_stress,
    combine_ticks,
    shard_accounts,
    shock_slices,
)
from crossmargin.distributed.source import BookSource

T = TypeVar("T")
LOCAL = "auto"
RETRY_PAUSE_SECONDS = 0.2
UNAVAILABLE_SECONDS = 120.0  # how long a restarting actor may stay unreachable


def connect(address: str = LOCAL, *, workers: int | None = None) -> bool:
    """Join a Ray cluster; ``"auto"`` starts a local one with ``workers`` CPUs (default: all).

    Returns True when this call started or joined the cluster (so the caller should
    :func:`disconnect`), False when Ray was already initialised in this process.
    """
    if ray.is_initialized():
        return False
    if address == LOCAL:
        ray.init(
            num_cpus=workers or os.cpu_count() or 1,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    else:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    return True


def disconnect() -> None:
    ray.shutdown()


def _limit_threads(threads: int) -> None:
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is optional
        return
    most = int(getattr(numba.config, "NUMBA_NUM_THREADS", 1))
    numba.set_num_threads(max(1, min(threads, most)))


class ShardInputError(Exception):
    """An :class:`InvalidInput` raised in a shard, in a form that crosses processes (the
    driver raises it again as :class:`InvalidInput`)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(field, problem)
        self.field = field
        self.problem = problem


class _ShardActor:
    """The actor body: a :class:`ShardServer` that reports load errors as values and can be told
    to crash once (a fault-injection hook for shard-loss tests and drills)."""

    def __init__(
        self,
        source: BookSource,
        shards: int,
        index: int,
        backend: str | None,
        threads: int,
        crash_on: tuple[str, ...],
    ) -> None:
        _limit_threads(threads)
        self.reconstructed = bool(ray.get_runtime_context().was_current_actor_reconstructed)
        self.crash_on = crash_on
        self.error: CrossmarginError | None = None
        self.server: ShardServer | None = None
        try:
            self.server = ShardServer(source, shards, index, backend)
        except CrossmarginError as error:
            self.error = error

    def _run(self, method: str, work: Callable[[ShardServer], T]) -> T:
        if method in self.crash_on and not self.reconstructed:
            os._exit(1)  # the process dies as on a lost node; Ray restarts the actor
        try:
            if self.server is None:
                raise self.error or InvalidInput("BOOK", "the shard did not load")
            return work(self.server)
        except InvalidInput as error:
            raise ShardInputError(error.field, error.problem) from None

    def info(self) -> ShardInfo:
        return self._run("info", lambda server: server.info(self.reconstructed))

    def tick(self, version: int, marks: Floats, symbol: int) -> TickPart:
        return self._run("tick", lambda server: server.tick(version, marks, symbol))

    def revalue(self, version: int, marks: Floats) -> TickPart:
        return self._run("revalue", lambda server: server.revalue(version, marks))

    def stress(self, relative: Floats, first: int, stop: int, marks: Floats) -> StressPart:
        return self._run("stress", lambda server: server.stress(relative, first, stop, marks))

    def monte_carlo(self, spec: MonteCarloSpec, marks: Floats) -> MonteCarloResult:
        return self._run("monte_carlo", lambda server: server.monte_carlo(spec, marks))

    def process_id(self) -> int:
        return os.getpid()


ShardActor: Any = ray.remote(_ShardActor)

Call = tuple[int, str, tuple[Any, ...]]


class DistributedBook:
    """A book held by ``shards`` Ray actors (Ray must be initialised: see :func:`connect`).

    ``workers``: CPUs to use (default: the cluster's). Each shard's actor reserves
    ``workers // shards`` CPUs (at least one) and runs that many shock slices at once.
    ``crash_on``: method names whose first call in each actor's first life kills the actor
    (shard-loss tests and drills); empty in production.
    """

    def __init__(
        self,
        source: BookSource,
        *,
        shards: int | None = None,
        workers: int | None = None,
        backend: str | None = None,
        max_restarts: int = 3,
        crash_on: Sequence[str] = (),
    ) -> None:
        if workers is not None and workers < 1:
            raise InvalidInput("--workers", "must be at least 1")
        if shards is not None and shards < 1:
            raise InvalidInput("--shards", "must be at least 1")
        if max_restarts < 0:
            raise InvalidInput("max_restarts", "must not be negative")
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        self.workers = workers or max(1, int(resources.get("CPU", 1)))
        self.shards = shards or self.workers
        self.threads = max(1, self.workers // self.shards)
        self.name = source.describe()
        self.max_restarts = max_restarts
        self.retried_calls = 0
        self.last_combine_seconds = 0.0  # the driver's share of the last stress grid
        self.last_compute_seconds: list[float] = []  # CPU time of each slice of it
        self._actors = [
            ShardActor.options(
                num_cpus=self.threads,
                max_concurrency=self.threads,
                max_restarts=max_restarts,
                max_task_retries=0,
            ).remote(source, self.shards, index, backend, self.threads, tuple(crash_on))
            for index in range(self.shards)
        ]
        try:
            infos: list[ShardInfo] = self._gather([(i, "info", ()) for i in range(self.shards)])
        except BaseException:
            self.close()  # a shard that cannot load its book must not keep its CPUs
            raise
        first = infos[0]
        if any(
            (info.symbols, info.book_accounts) != (first.symbols, first.book_accounts)
            or not np.array_equal(info.marks, first.marks)
            for info in infos
        ):
            self.close()
            raise InvalidInput("BOOK", "the shards loaded different books from the source")
        self.symbols = first.symbols
        self.marks: Floats = first.marks.copy()
        self.account_count = first.book_accounts
        self.position_count = sum(info.positions for info in infos)
        self.shard_bytes = [info.nbytes for info in infos]
        self.version = 0
        self._accounts = [
            shard_accounts(self.account_count, self.shards, i) for i in range(self.shards)
        ]

    # calls with recovery

    def _submit(self, call: Call) -> Any:
        shard, method, args = call
        return getattr(self._actors[shard], method).remote(*args)

    def _wait(self, call: Call, ref: Any) -> Any:
        """The call's result; a call lost with its actor is submitted again (every call is
        idempotent: a tick names its version, the rest only read)."""
        deaths = 0
        unavailable_since: float | None = None
        while True:
            try:
                return ray.get(ref)
            except RayTaskError as error:
                cause = getattr(error, "cause", None)
                if isinstance(cause, ShardInputError):
                    raise InvalidInput(cause.field, cause.problem) from None
                raise
            except ActorUnavailableError:
                # restarting (or unreachable for a moment): wait, without spending a restart
                now = time.monotonic()
                unavailable_since = unavailable_since or now
                if now - unavailable_since > UNAVAILABLE_SECONDS:
                    raise
            except RayActorError:
                deaths += 1
                if deaths > self.max_restarts:
                    raise
            self.retried_calls += 1
            time.sleep(RETRY_PAUSE_SECONDS)
            ref = self._submit(call)

    def _gather(self, calls: list[Call]) -> list[Any]:
        refs = [self._submit(call) for call in calls]
        return [self._wait(call, ref) for call, ref in zip(calls, refs, strict=True)]

    # the book's operations

    def tick(self, symbol: str, price: float) -> TickResult:
        """A mark tick on one symbol, applied by every shard (twin: ``batch.risk.update_symbol``
        followed by ``batch.screen.screen``)."""
        if symbol not in self.symbols:
            raise InvalidInput("symbol", f"{symbol!r} is not in this book")
        if not (np.isfinite(price) and price > 0):
            raise InvalidInput("price", "must be a positive finite price")
        slot = self.symbols.index(symbol)
        marks = self.marks.copy()
        marks[slot] = price
        version = self.version + 1
        parts = self._gather([(i, "tick", (version, marks, slot)) for i in range(self.shards)])
        self.marks, self.version = marks, version
        return combine_ticks(parts)

    def revalue(self, marks: Floats | None = None) -> TickResult:
        """Every account at ``marks`` (default: the current ones)."""
        chosen = self.marks if marks is None else np.asarray(marks, dtype=np.float64)
        if chosen.shape != self.marks.shape or not np.all(np.isfinite(chosen) & (chosen > 0)):
            raise InvalidInput("marks", "one positive finite price per symbol of the book")
        version = self.version + 1
        chosen = chosen.copy()
        parts = self._gather([(i, "revalue", (version, chosen)) for i in range(self.shards)])
        self.marks, self.version = chosen, version
        return combine_ticks(parts)

    def stress(self, shocks: ShockGrid) -> StressResult:
        """The stress grid over the whole book at the current marks (twin:
        ``batch.stress.stress`` of the book with those marks)."""
        if shocks.relative.shape[1] != len(self.symbols):
            raise InvalidInput("shocks", "built for another book's symbols")
        relative = ray.put(np.ascontiguousarray(shocks.relative))
        slices = shock_slices(shocks.count, self.threads)
        calls: list[Call] = [
            (i, "stress", (relative, first, stop, self.marks))
            for i in range(self.shards)
            for first, stop in slices
        ]
        parts: list[StressPart] = self._gather(calls)
        started = time.perf_counter()
        result = combine_stress(
            shocks,
            self.account_count,
            [(self._accounts[call[0]], part) for call, part in zip(calls, parts, strict=True)],
        )
        self.last_combine_seconds = time.perf_counter() - started
        self.last_compute_seconds = [part.compute_seconds for part in parts]
        return result

    def monte_carlo(self, spec: MonteCarloSpec) -> MonteCarloResult:
        """Liquidation probabilities over the whole book from the current marks (twin:
        ``batch.montecarlo.liquidation_probability``)."""
        if spec.paths < 1:
            raise InvalidInput("paths", "must be at least 1")
        if spec.horizon < 1:
            raise InvalidInput("horizon", "must be at least 1 hour")
        if spec.block_hours < 1:
            raise InvalidInput("block_hours", "must be at least 1")
        if spec.model not in MODELS:
            raise InvalidInput("model", f"expected one of {', '.join(MODELS)}, got {spec.model!r}")
        parts = self._gather([(i, "monte_carlo", (spec, self.marks)) for i in range(self.shards)])
        return combine_monte_carlo(
            self.account_count, list(zip(self._accounts, parts, strict=True))
        )

    def shard_info(self) -> list[ShardInfo]:
        infos: list[ShardInfo] = self._gather([(i, "info", ()) for i in range(self.shards)])
        return infos

    def liquidatable_now(self) -> int:
        """Accounts with a liquidatable scope at the current marks."""
        return self.revalue().liquidatable

    def kill_shard(self, index: int) -> None:
        """Kill shard ``index``'s actor as a lost node would, and return once Ray has restarted
        it (reloaded from the source) in a new process."""
        actor = self._actors[index]
        before = ray.get(actor.process_id.remote())
        ray.kill(actor, no_restart=False)
        deadline = time.monotonic() + UNAVAILABLE_SECONDS
        while time.monotonic() < deadline:
            try:
                if ray.get(actor.process_id.remote()) != before:
                    return
            except RayActorError:
                pass  # dying or restarting
            time.sleep(RETRY_PAUSE_SECONDS)
        raise TimeoutError(f"shard {index} did not come back within {UNAVAILABLE_SECONDS} s")

    def close(self) -> None:
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []


@contextmanager
def open_book(
    address: str,
    source: BookSource,
    *,
    shards: int | None = None,
    workers: int | None = None,
    backend: str | None = None,
) -> Iterator[DistributedBook]:
    """Connect (``"auto"``: a local cluster), hold ``source`` on shards, and clean up after."""
    joined = connect(address, workers=workers)
    try:
        book = DistributedBook(source, shards=shards, workers=workers, backend=backend)
        try:
            yield book
        finally:
            book.close()
    finally:
        if joined:
            disconnect()
