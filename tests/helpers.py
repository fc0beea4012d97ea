"""Small helpers shared by tests: run the CLI in-process and read its JSON."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from decimal import Decimal
from typing import Any

from crossmargin.cli.main import main
from crossmargin.contract.portfolio import parse_portfolio, report_json
from crossmargin.core.risk import account_report


def run_cli(*args: str, stdin: str | bytes | None = None) -> tuple[int, str, str]:
    """Run ``crossmargin ARGS`` in-process; ``stdin`` as text or raw bytes (``sys.stdin.buffer``
    then holds them, as it would for a pipe)."""
    out, err = io.StringIO(), io.StringIO()
    import sys

    saved = sys.stdin
    if stdin is not None:
        raw = stdin if isinstance(stdin, bytes) else stdin.encode("utf-8", "surrogatepass")
        sys.stdin = io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8")
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(args))
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


def risk(portfolio: dict[str, Any]) -> dict[str, Any]:
    """Run a portfolio through the `crossmargin risk` contract (JSON in, JSON out)."""
    text = json.dumps(portfolio)
    code, out, err = run_cli("risk", "-", stdin=text)
    assert code == 0, err
    result: dict[str, Any] = json.loads(out, parse_float=Decimal)
    return result


def report(portfolio: dict[str, Any]) -> dict[str, Any]:
    """The same contract without the process boundary (for property tests)."""
    return report_json(account_report(parse_portfolio(portfolio)))


def cents(value: str | None) -> Decimal:
    assert value is not None
    return Decimal(value).quantize(Decimal("0.01"))
