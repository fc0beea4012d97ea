"""``crossmargin serve`` starting next to another server: a busy port and a running demo are
refused (exit 2, one line naming the option) before anything is written, and a dead demo's lock
file does not block the next one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from crossmargin.cli.instance import LOCK_NAME, DemoLock
from crossmargin.core.errors import InvalidInput
from tests.helpers import run_cli

pytest.importorskip("uvicorn")


@contextmanager
def busy_port() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


def test_a_busy_port_is_refused_before_any_key_is_issued(tmp_path: Path) -> None:
    var = tmp_path / "var"
    with busy_port() as port:
        code, out, err = run_cli("serve", "--port", str(port), "--var", str(var))
    assert code == 2 and out == "", (out, err)
    assert err.startswith("crossmargin: error: --port: ") and f"port {port}" in err
    assert "in use" in err and len(err.splitlines()) == 1
    assert not var.exists()  # no key "shown once" was printed, stored or lost


def test_a_demo_on_a_busy_port_keeps_the_previous_demos_files(tmp_path: Path) -> None:
    (tmp_path / "demo.db").write_bytes(b"the previous demo's log")
    (tmp_path / "demo-keys.json").write_text("{}", encoding="utf-8")
    with busy_port() as port:
        code, _, err = run_cli("serve", "--demo", "--port", str(port), "--var", str(tmp_path))
    assert code == 2 and "--port" in err
    assert (tmp_path / "demo.db").read_bytes() == b"the previous demo's log"
    assert (tmp_path / "demo-keys.json").read_text(encoding="utf-8") == "{}"


def test_a_port_out_of_range_is_refused() -> None:
    code, _, err = run_cli("serve", "--port", "70000")
    assert code == 2 and err.startswith("crossmargin: error: --port: must be 0 to 65535")


HOLD = (
    "import sys, time; from pathlib import Path; from crossmargin.cli.instance import DemoLock\n"
    "lock = DemoLock(Path(sys.argv[1])); lock.acquire(); print('held', flush=True); time.sleep(120)"
)


@contextmanager
def held_lock(folder: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the demo lock on ``folder``."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_the_lock_is_refused_while_its_holder_lives_and_free_once_it_is_dead(
    tmp_path: Path,
) -> None:
    with held_lock(tmp_path) as holder:
        lock = DemoLock(tmp_path)
        assert lock.holder() == str(holder.pid)
        with pytest.raises(InvalidInput, match=f"already running in .* \\(process {holder.pid}\\)"):
            lock.acquire()
    # killed without a chance to clean up: the file stays, with the dead process's id
    assert (tmp_path / LOCK_NAME).read_text(encoding="utf-8").strip() == str(holder.pid)
    lock = DemoLock(tmp_path)
    assert lock.holder() is None
    with lock:
        assert (tmp_path / LOCK_NAME).read_text(encoding="utf-8").strip() == str(os.getpid())


def test_a_second_demo_in_the_same_folder_is_refused_and_deletes_nothing(tmp_path: Path) -> None:
    (tmp_path / "demo.db").write_bytes(b"the running demo's log")
    (tmp_path / "demo-keys.json").write_text('{"running": true}', encoding="utf-8")
    # the port is busy too, so that a missed lock fails here instead of starting a server; the
    # running demo is the news the user needs, so it is named before the port
    with held_lock(tmp_path) as holder, busy_port() as port:
        code, out, err = run_cli("serve", "--demo", "--port", str(port), "--var", str(tmp_path))
    assert code == 2 and out == ""
    assert err.startswith("crossmargin: error: --demo: a demo is already running in ")
    assert f"(process {holder.pid})" in err and len(err.splitlines()) == 1
    assert (tmp_path / "demo.db").read_bytes() == b"the running demo's log"
    assert (tmp_path / "demo-keys.json").read_text(encoding="utf-8") == '{"running": true}'


# --- the real thing: two `crossmargin serve --demo` processes -----------------------------------


SERVE_DEMO = (sys.executable, "-m", "crossmargin.cli.main", "serve", "--demo", "--port", "0")


def start_demo(var: Path) -> tuple[subprocess.Popen[str], str]:
    """A demo server on a free port; returns it and its dashboard URL once it serves."""
    process = subprocess.Popen(
        [*SERVE_DEMO, "--var", str(var), "--speed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        if line.startswith("dashboard: "):
            return process, line.removeprefix("dashboard: ").split("#", 1)[0]
        assert time.monotonic() < deadline
    process.wait(timeout=30)
    raise AssertionError(f"the demo exited with {process.returncode} before serving")


@pytest.mark.slow
def test_a_running_demo_survives_a_second_start_and_a_killed_one_does_not_block(
    tmp_path: Path,
) -> None:
    first, url = start_demo(tmp_path)
    try:
        assert httpx.get(url + "openapi.json", timeout=30).status_code == 200
        keys = (tmp_path / "demo-keys.json").read_bytes()
        second = subprocess.run(
            [*SERVE_DEMO, "--var", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 2, second.stderr
        assert f"a demo is already running in {tmp_path} (process {first.pid})" in second.stderr
        assert (tmp_path / "demo-keys.json").read_bytes() == keys  # the first demo's keys
        assert httpx.get(url + "openapi.json", timeout=30).status_code == 200
    finally:
        first.send_signal(signal.SIGKILL)  # a crash: no cleanup runs
        first.wait(timeout=30)
    third, url = start_demo(tmp_path)  # the stale lock file does not block
    try:
        assert httpx.get(url + "openapi.json", timeout=30).status_code == 200
        assert (tmp_path / "demo-keys.json").read_bytes() != keys  # a fresh demo
    finally:
        third.terminate()
        third.wait(timeout=30)


def test_once_started_serve_freezes_what_start_up_built_and_collects_less_often() -> None:
    """The serving process's collector (the service benchmark's p99 was its full collections):
    before the demo's setup runs (it prints the URL, the signal that the server is ready),
    start-up's objects are out of every generation and the thresholds are raised. The test
    restores this process's collector afterwards."""
    import asyncio
    import gc
    from typing import Any, cast

    from crossmargin.cli.serve import GC_THRESHOLDS, after_start

    thresholds = gc.get_threshold()
    seen: list[int] = []
    built_at_start = [[index] for index in range(1000)]  # containers the collector tracks

    async def setup(_: Any) -> None:
        seen.append(gc.get_freeze_count())

    gc.unfreeze()
    try:
        asyncio.run(after_start(setup)(cast(Any, None)))
        assert len(seen) == 1 and seen[0] > len(built_at_start)  # frozen before the setup
        tracked = {id(o) for o in gc.get_objects()}
        assert not any(id(item) in tracked for item in built_at_start)
        assert gc.get_threshold() == GC_THRESHOLDS != thresholds
        asyncio.run(after_start(None)(cast(Any, None)))  # no demo: the collector alone
        assert gc.get_threshold() == GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
