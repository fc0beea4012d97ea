"""The command line explains itself: every option has help text, the help is plain text (no reST
markup from docstrings), the episode options list the bundled episodes, and ``make run`` takes
``PORT=``/``HOST=``."""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from crossmargin.cli.main import build_parser
from crossmargin.sim.episodes import episode_names

ROOT = Path(__file__).resolve().parents[2]


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def help_text(*args: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out), pytest.raises(SystemExit) as exited:
        build_parser().parse_args([*args, "--help"])
    assert exited.value.code == 0
    return out.getvalue()


def test_every_option_and_argument_of_every_command_has_help() -> None:
    missing = [
        f"{name} {action.dest}"
        for name, parser in subcommands().items()
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not (action.help or "").strip()
    ]
    assert missing == []


@pytest.mark.parametrize("command", [[], *([name] for name in subcommands())])
def test_the_help_is_plain_text(command: list[str]) -> None:
    text = help_text(*command)
    assert "``" not in text and ":class:" not in text and ":func:" not in text


def test_the_top_level_help_describes_the_tool() -> None:
    assert "margin and liquidation" in help_text()


@pytest.mark.parametrize("command", ["backtest", "serve"])
def test_the_episode_option_lists_the_bundled_episodes(command: str) -> None:
    text = " ".join(help_text(command).split())  # argparse wraps lines
    for name in episode_names():
        assert name in text


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_listens_where_port_and_host_say() -> None:
    def command(*variables: str) -> str:
        done = subprocess.run(
            ["make", "-n", "-o", ".venv/.installed", "run", *variables],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        [line] = [line for line in done.stdout.splitlines() if " serve " in line]
        return line

    assert command().endswith("serve --demo --host 127.0.0.1 --port 8000")
    assert command("PORT=8080", "HOST=0.0.0.0").endswith("--host 0.0.0.0 --port 8080")
