"""Kernel compilation: a notice while compiling, and a disk cache wherever the package lives."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numba
import pytest

from crossmargin.batch import _accel

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
    """An installed package in a read-only place with a read-only home: numba finds no cache
    location of its own (here ``__pycache__`` and the user cache dir are files, which even root
    cannot write into); the kernels compile once into the temporary directory and load from it
    on the next run."""
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
