"""What ``crossmargin serve`` claims before it writes anything: its port and, for the demo, its
folder.

Both exist so that a second start fails cleanly instead of destroying the first one's state:
``serve --port P`` used to issue and store a new operator key and only then fail to bind (the
key, shown once, was lost); a second ``serve --demo`` in the same folder deleted the running
demo's log and key file. So the port is bound first (the bound socket is handed to uvicorn), and
the demo holds an exclusive lock on ``<var>/demo.lock`` for as long as it runs.

The lock is an OS advisory lock (``flock``, POSIX) on an open file, not the file's existence: the
OS drops it when the process ends, however it ends, so the lock file a dead demo leaves behind
never blocks the next one. The file holds the holder's process id, only
to name it in the refusal.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path
from types import TracebackType
from typing import IO

from crossmargin.core.errors import InvalidInput

LOCK_NAME = "demo.lock"


def bind_port(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (not yet listening); port 0 picks a free one.

    Refuses a busy port or one this user may not bind as ``InvalidInput("--port")``, and a host
    that is not an address of this machine as ``InvalidInput("--host")``.
    """
    if not 0 <= port <= 65535:
        raise InvalidInput("--port", f"must be 0 to 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # as uvicorn does: a restart may reuse the port while old connections sit in TIME_WAIT (this
    # does not let two servers listen on one port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise InvalidInput(
                "--port",
                f"port {port} on {host} is already in use (another crossmargin serve?); "
                "stop that server or choose another port with --port (make run PORT=8080)",
            ) from None
        if error.errno == errno.EACCES:
            raise InvalidInput(
                "--port", f"not allowed to listen on port {port} (below 1024 needs root)"
            ) from None
        raise InvalidInput("--host", f"cannot listen on {host}: {error.strerror}") from None
    except (socket.gaierror, UnicodeError) as error:
        sock.close()
        raise InvalidInput("--host", f"not an address of this machine: {host} ({error})") from None
    return sock


def _try_lock(handle: IO[str]) -> bool:
    """Take the exclusive lock on ``handle`` without waiting; False when another process has it."""
    import fcntl  # POSIX; imported here so that the rest of the CLI loads anywhere

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


class DemoLock:
    """The exclusive claim of a running demo on its folder; held until :meth:`release` (or the
    process's end)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._handle: IO[str] | None = None

    def holder(self) -> str | None:
        """The process id (as written) of a live demo holding the lock, else None; creates
        nothing, so it can run before the port is known to be free."""
        try:
            handle = self.path.open("r+", encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise InvalidInput("--var", f"cannot open {self.path}: {error.strerror}") from None
        with handle:
            if _try_lock(handle):
                return None  # a stale file of a demo that has ended (closing drops the lock)
            return handle.read().strip() or "unknown"

    def acquire(self) -> None:
        """Take the lock or refuse (exit 2) naming the demo that holds it."""
        try:
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as error:
            raise InvalidInput("--var", f"cannot create {self.path}: {error.strerror}") from None
        if not _try_lock(handle):
            handle.seek(0)
            pid = handle.read().strip() or "unknown"
            handle.close()
            raise self.refusal(pid)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def refusal(self, pid: str) -> InvalidInput:
        folder = self.path.parent
        return InvalidInput(
            "--demo",
            f"a demo is already running in {folder} (process {pid}); its log and keys are "
            f"kept: open its dashboard, stop it first, or start another with --var OTHER_FOLDER",
        )

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file drops the lock
            self._handle = None

    def __enter__(self) -> DemoLock:
        self.acquire()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()
