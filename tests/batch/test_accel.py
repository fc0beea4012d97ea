"""Kernel compilation: a notice while compiling, and a disk cache wherever the package lives,
keyed by the sources the kernels were built from."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import pytest

from crossmargin.batch import _accel, kernel_cache

MODULE = """
from crossmargin.batch._accel import compile_notice, jit

@jit
def twice(x):
    return 2.0 * x

with compile_notice():
    print(twice(21.0))
"""


def test_the_notice_is_printed_while_kernels_compile_and_not_once_they_are_compiled() -> None:
    @numba.njit
    def add(a: float, b: float) -> float:
        return a + b

    first = io.StringIO()
    with _accel.compile_notice(first):
        assert add(1.0, 2.0) == 3.0
        assert add(1, 2) == 3  # a second signature compiles too: still one notice
    lines = first.getvalue().splitlines()
    assert lines[0] == _accel.NOTICE
    assert len(lines) == 2 and "later runs load them from the cache" in lines[1]
    again = io.StringIO()
    with _accel.compile_notice(again):
        assert add(2.0, 2.0) == 4.0
    assert again.getvalue() == ""


def run_module(directory: Path, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import kernels"],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX paths")
def test_kernels_are_cached_in_the_temporary_directory_when_nothing_else_is_writable(
    tmp_path: Path,
) -> None:
    """An installed package in a read-only place with a read-only home (here ``__pycache__`` and
    the user cache dir are files, which even root cannot write into): the kernels compile once
    into the temporary directory and load from it on the next run."""
    package = tmp_path / "site"
    package.mkdir()
    (package / "kernels.py").write_text(textwrap.dedent(MODULE))
    (package / "__pycache__").write_text("not a directory")
    blocked = tmp_path / "blocked"
    blocked.write_text("not a directory")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("NUMBA_CACHE")
    }
    environment |= {
        "HOME": str(blocked / "home"),
        "XDG_CACHE_HOME": str(blocked / "cache"),
        "TMPDIR": str(temporary),
        "PYTHONPATH": os.pathsep.join([str(package), *sys.path]),
    }
    first = run_module(package, environment)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "42.0"
    assert _accel.NOTICE in first.stderr
    cached = list(temporary.glob("crossmargin-numba-cache-*/**/kernels.twice-*.nbi"))
    assert cached, sorted(str(p) for p in temporary.rglob("*"))
    second = run_module(package, environment)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "42.0"
    assert _accel.NOTICE not in second.stderr


def test_the_kernels_are_cached_under_a_fingerprint_of_the_batch_sources() -> None:
    directory = Path(_accel.CACHE_DIRECTORY or "")
    package = Path(_accel.__file__).parent
    assert directory.name == "kernels-" + kernel_cache.fingerprint(package, numba.__version__)


def test_a_change_to_any_source_changes_the_fingerprint(tmp_path: Path) -> None:
    """A kernel inlines helpers from other modules, which numba's own check does not see."""
    (tmp_path / "kernel.py").write_text("def k(): return helper()\n")
    (tmp_path / "helpers.py").write_text("def helper(): return 1\n")
    before = kernel_cache.fingerprint(tmp_path, "0.68")
    assert kernel_cache.fingerprint(tmp_path, "0.68") == before
    (tmp_path / "helpers.py").write_text("def helper(): return 2\n")
    assert kernel_cache.fingerprint(tmp_path, "0.68") != before
    assert kernel_cache.fingerprint(tmp_path, "0.69") != kernel_cache.fingerprint(tmp_path, "0.68")


def test_old_fingerprints_are_pruned_and_the_most_recent_kept(tmp_path: Path) -> None:
    for age in range(7):
        old = tmp_path / f"kernels-{age}"
        old.mkdir()
        os.utime(old, (1000 - age, 1000 - age))  # kernels-0 is the most recent
    (tmp_path / "unrelated").mkdir()
    current = tmp_path / "kernels-new"
    current.mkdir()
    kernel_cache.prune(tmp_path, keep=current)
    left = sorted(p.name for p in tmp_path.iterdir())
    kept = [f"kernels-{age}" for age in range(kernel_cache.KEEP - 1)]
    assert left == sorted([*kept, "kernels-new", "unrelated"])
