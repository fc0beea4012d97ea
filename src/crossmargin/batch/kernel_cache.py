"""Where the compiled numba kernels are cached, keyed by the batch sources they were built from.

numba checks a cached kernel against its own source file only, but the kernels inline helpers
from other modules (:mod:`crossmargin.batch.maintenance`, ``risk_kernel.scope_ratio``): after a
change to a helper alone, numba would load kernels built from the old one. So every kernel is
cached under ``kernels-<fingerprint>``, a hash of all the package's sources (and numba's
version), in the first writable of:

1. ``NUMBA_CACHE_DIR`` when set;
2. the user's cache directory (``$XDG_CACHE_HOME`` or ``~/.cache``) ``/crossmargin``: an
   installed package's own directory is often read-only;
3. ``<temporary directory>/crossmargin-numba-cache-<uid>`` (a read-only home too);

and nowhere when none is (the kernels then compile in every run instead of failing to import).
Fingerprints other than the :data:`KEEP` most recent are deleted from the chosen parent, so
edits do not pile up compiled code.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

KEEP = 4
PREFIX = "kernels-"


def fingerprint(package: Path, salt: str = "") -> str:
    """A hash of every ``*.py`` file of ``package`` (names and contents) and ``salt``."""
    digest = hashlib.sha256(salt.encode())
    for path in sorted(package.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def candidates() -> list[Path]:
    """The parents tried in order (see the module docstring)."""
    chosen = []
    if os.environ.get("NUMBA_CACHE_DIR"):
        chosen.append(Path(os.environ["NUMBA_CACHE_DIR"]))
    user_cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    chosen.append(Path(user_cache) / "crossmargin")
    user = os.getuid() if hasattr(os, "getuid") else "user"
    chosen.append(Path(tempfile.gettempdir()) / f"crossmargin-numba-cache-{user}")
    return chosen


def _writable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=directory).close()
    except OSError:
        return False
    return True


def cache_directory(key: str) -> Path | None:
    """The directory for kernels of fingerprint ``key``, created; None when nothing is writable."""
    for parent in candidates():
        directory = parent / f"{PREFIX}{key}"
        if _writable(directory):
            prune(parent, keep=directory)
            return directory
    return None


def prune(parent: Path, *, keep: Path) -> None:
    """Delete the fingerprint directories of ``parent`` but ``keep`` and the most recent others."""
    others = [p for p in parent.glob(f"{PREFIX}*") if p.is_dir() and p != keep]
    others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for stale in others[KEEP - 1 :]:
        shutil.rmtree(stale, ignore_errors=True)
