"""A progress bar for long runs, drawn on stderr only when stderr is a terminal.

What it owns: :class:`ProgressBar` (``label [#####-----]  50% (5/10)``, redrawn in place when the
whole percent changes) and :func:`with_progress`, which draws one around an iterable. Logs and
pipes stay clean: on anything but a terminal nothing is written.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

from crossmargin.core.errors import InvalidInput

T = TypeVar("T")


class ProgressBar:
    """``label [#####-----]  50% (5/10)`` redrawn in place on stderr, only when it is a terminal."""

    def __init__(
        self, total: int, *, label: str = "", stream: TextIO | None = None, width: int = 30
    ) -> None:
        if total < 0:
            raise InvalidInput("total", f"must not be negative, got {total}")
        self._total = total
        self._label = label
        self._stream = sys.stderr if stream is None else stream
        self._width = width
        self._enabled = self._stream.isatty()
        self._shown = -1
        self._done = 0

    @property
    def enabled(self) -> bool:
        return self._enabled

    def update(self, done: int) -> None:
        self._done = min(max(done, 0), self._total)
        percent = 100 if self._total == 0 else self._done * 100 // self._total
        if not self._enabled or percent == self._shown:
            return
        self._shown = percent
        filled = percent * self._width // 100
        bar = "#" * filled + "-" * (self._width - filled)
        prefix = f"{self._label} " if self._label else ""
        self._stream.write(f"\r{prefix}[{bar}] {percent:3d}% ({self._done}/{self._total})")
        self._stream.flush()

    def finish(self) -> None:
        self.update(self._total)
        if self._enabled:
            self._stream.write("\n")
            self._stream.flush()


def with_progress(
    items: Iterable[T], total: int, *, label: str = "", stream: TextIO | None = None
) -> Iterator[T]:
    """Yield ``items`` while drawing a :class:`ProgressBar` (silent when stderr is not a TTY)."""
    bar = ProgressBar(total, label=label, stream=stream)
    for done, item in enumerate(items, start=1):
        yield item
        bar.update(done)
    bar.finish()
