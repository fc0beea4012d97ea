"""The ``crossmargin`` command line: thin wrappers over the core and the simulator.

Exit codes: 0 success, 2 bad input (one line on stderr naming the field), 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

from crossmargin import __version__
from crossmargin.cli.backtest import register as register_backtest
from crossmargin.cli.demo_view import render_demo
from crossmargin.cli.engine_cmd import register as register_engine_commands
from crossmargin.cli.engine_cmd import run_command
from crossmargin.cli.risk_view import account_table, scenario_table
from crossmargin.cli.serve import register as register_serve
from crossmargin.cli.stress import register as register_stress
from crossmargin.contract.portfolio import parse_portfolio, report_json
from crossmargin.core import json_input
from crossmargin.core.errors import InvalidInput
from crossmargin.core.risk import account_report
from crossmargin.core.scenario import Shock, apply_shocks, parse_shock


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"crossmargin: error: {message}\n")


def load_json(source: str) -> Any:
    """Read JSON from a file or ``-`` (stdin) under the edge rules of core.json_input (numbers
    as Decimal, never float; no duplicate keys, NaN, or hostile nesting)."""
    if source == "-":
        return json_input.load_json(sys.stdin.read(), field="stdin")
    return json_input.load_json(read_input_file(source, "FILE"), field=source)


def read_input_file(source: str, field: str) -> str:
    """The text of the file a user named, or an InvalidInput naming ``field``."""
    path = Path(source)
    if path.is_dir():
        raise InvalidInput(field, f"{source} is a directory; give a portfolio JSON file")
    if not path.is_file():
        raise InvalidInput(field, f"no such file: {source}")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(field, f"cannot read {source}: {error}") from None


def _risk(item: Any) -> dict[str, Any]:
    return report_json(account_report(parse_portfolio(item)))


def cmd_risk(args: argparse.Namespace) -> str:
    result = json_input.one_or_many(load_json(args.file), _risk, field=args.file)
    if not args.table:
        return json.dumps(result, indent=2)
    reports = result if isinstance(result, list) else [result]
    return "\n\n".join(
        account_table(r, f"#{i}" if len(reports) > 1 else "") for i, r in enumerate(reports)
    )


def _shock(text: str) -> Shock:
    """``parse_shock``, but a negative number without ``%`` is named for what it likely is: a
    move written without its percent sign (a price must be positive)."""
    symbol, sep, amount = (part.strip() for part in text.partition("="))
    if sep and symbol and amount and not amount.endswith("%"):
        try:
            value = Decimal(amount)
        except InvalidOperation:
            value = None
        if value is not None and value.is_finite() and value <= 0:
            field = f"--shock {symbol}"
            if -100 < value < 0:
                raise InvalidInput(field, f"{amount} is not a price; did you mean {amount}%?")
            raise InvalidInput(
                field,
                f"{amount} is not a price; give a new price ({symbol}=25000) "
                f"or a move ({symbol}=-20%)",
            )
    return parse_shock(text)


def cmd_scenario(args: argparse.Namespace) -> str:
    if not args.shock:
        raise InvalidInput("--shock", "give at least one, e.g. --shock ETHUSDT=-20%")
    shocks = [_shock(text) for text in args.shock]

    def build(item: Any) -> dict[str, Any]:
        book = parse_portfolio(item)
        shocked = apply_shocks(book, shocks)
        return {
            "shocks": [shock.describe() for shock in shocks],
            "current": report_json(account_report(book)),
            "shocked": report_json(account_report(shocked)),
        }

    result = json_input.one_or_many(load_json(args.file), build, field=args.file)
    if not args.table:
        return json.dumps(result, indent=2)
    results = result if isinstance(result, list) else [result]
    return "\n\n".join(scenario_table(r) for r in results)


def cmd_demo(_: argparse.Namespace) -> str:
    return render_demo()


DESCRIPTION = (
    "crossmargin: margin and liquidation for crypto derivatives, cross and isolated, computed "
    "the way the venues publish it. Exit codes: 0 success, 2 bad input (one line on stderr "
    "naming the field), 1 unexpected failure."
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="crossmargin", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"crossmargin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    risk = commands.add_parser("risk", help="margin, ratios and liquidation prices of a portfolio")
    risk.add_argument("file", metavar="FILE", help="portfolio JSON (one or a list); - for stdin")
    risk.add_argument("--table", action="store_true", help="a human table instead of JSON")
    risk.set_defaults(run=cmd_risk)

    scenario = commands.add_parser("scenario", help="the risk report after moving some marks")
    scenario.add_argument("file", metavar="FILE", help="portfolio JSON; - for stdin")
    scenario.add_argument(
        "--shock",
        action="append",
        default=[],
        metavar="SYMBOL=CHANGE",
        help="e.g. ETHUSDT=-20%% (relative) or BTCUSDT=25000 (new price); repeatable",
    )
    scenario.add_argument("--table", action="store_true", help="a human table instead of JSON")
    scenario.set_defaults(run=cmd_scenario)

    demo = commands.add_parser("demo", help="the worked example: cross vs isolated, two paths")
    demo.set_defaults(run=cmd_demo)
    register_engine_commands(commands)
    register_backtest(commands)
    register_serve(commands)
    register_stress(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
