"""``crossmargin engine``, ``replay`` and ``check``: the engine over an event log.

``crossmargin engine DB`` reads one JSON command per line on stdin and writes one JSON result per
line on stdout, flushed after the command is durable (that line is the acknowledgement).
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

from crossmargin.app.audit import check, replay
from crossmargin.app.writer import DEFAULT_SYMBOLS, Engine
from crossmargin.core.errors import CrossmarginError, InvalidInput, NoEventStore
from crossmargin.core.json_input import load_json
from crossmargin.core.numbers import format_decimal
from crossmargin.ledger import EventStore, open_store


def _default(value: object) -> Any:
    if isinstance(value, Decimal):
        return format_decimal(value)
    raise TypeError(type(value).__name__)


def dumps(value: object) -> str:
    return json.dumps(value, default=_default, sort_keys=True, ensure_ascii=True)


def _answer(engine: Engine, line: bytes) -> dict[str, Any]:
    """The result for one input line: whatever the line holds, an answer and never an exception."""
    try:
        command = load_json(line, field="line")
    except InvalidInput as error:
        return {
            "status": "rejected",
            "reason": "INVALID_COMMAND",
            "message": str(error),
            "field": error.field,
        }
    return engine.execute(command)


def cmd_engine(args: argparse.Namespace) -> str:
    store = open_store(args.db, schema=args.schema)
    engine = Engine(
        store,
        venue_name=args.venue,
        symbols=args.symbols.split(",") if args.symbols else DEFAULT_SYMBOLS,
        matching=args.matching,
    )
    # bytes, not text: a line that is not UTF-8 is refused on its own instead of ending the loop
    for line in sys.stdin.buffer:
        if not line.strip():
            continue
        sys.stdout.write(dumps(_answer(engine, line)) + "\n")
        sys.stdout.flush()
    engine.snapshot()
    store.close()
    return ""


def _existing_log(db: str) -> str:
    """``db`` when it may name an existing log; a local file that is missing (or a folder) is the
    user's mistake (exit 2), not a storage failure. PostgreSQL URLs are checked by the store."""
    text = db.strip()
    if text.startswith(("postgresql://", "postgres://")):
        return db
    path = Path(text.removeprefix("sqlite://"))
    if path.is_dir():
        raise InvalidInput(
            "DB", f"{db} is a directory; give the log's file (e.g. var/crossmargin.db)"
        )
    if not path.exists():
        raise InvalidInput(
            "DB", f"no such file: {db} (give the path of an existing log, e.g. var/crossmargin.db)"
        )
    return db


def _open_existing(args: argparse.Namespace) -> EventStore:
    """The log ``replay`` and ``check`` read: one that is not there is bad input (exit 2)."""
    try:
        return open_store(_existing_log(args.db), create=False, schema=args.schema)
    except NoEventStore as error:
        raise InvalidInput("DB", str(error)) from None


def cmd_replay(args: argparse.Namespace) -> str:
    store = _open_existing(args)
    report = replay(store)
    store.close()
    lines = [
        f"entries replayed: {report.entries}, events: {report.events}",
        f"state hash: {report.state_hash}",
    ]
    if report.snapshot_seq is None:
        lines.append("no snapshot to compare with")
    else:
        verdict = "matches" if report.snapshot_matches else "DOES NOT MATCH"
        lines.append(f"snapshot at entry {report.snapshot_seq}: {verdict}")
    if report.snapshot_matches is False:
        raise SystemExit("\n".join(lines))
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> str:
    store = _open_existing(args)
    report = check(store)
    store.close()
    lines = [f"events checked: {report.events}"]
    lines += [f"  {name}: {format_decimal(value)}" for name, value in report.totals.items()]
    if not report.ok:
        raise SystemExit("\n".join([*lines, "violations:", *report.violations]))
    lines.append("conservation holds after every event")
    return "\n".join(lines)


SCHEMA_HELP = "PostgreSQL schema holding the log's tables (default public)"
MATCHING_HELP = (
    "simulated: market orders fill at the mark, limits when the mark reaches them; "
    "external: the caller reports fills (default %(default)s)"
)
DB_HELP = "the event log: SQLite path or postgresql:// URL"


def register(commands: Any) -> None:
    engine = commands.add_parser("engine", help="run the engine: JSON commands in, results out")
    engine.add_argument("db", metavar="DB", help=DB_HELP + " (created when missing)")
    engine.add_argument(
        "--venue",
        default="binance-usdm",
        help="venue rules (default %(default)s; first start only)",
    )
    engine.add_argument("--symbols", default="", help="comma-separated (first start only)")
    engine.add_argument(
        "--matching", default="simulated", choices=["simulated", "external"], help=MATCHING_HELP
    )
    engine.add_argument("--schema", default=None, help=SCHEMA_HELP)
    engine.set_defaults(run=cmd_engine)
    replay_parser = commands.add_parser("replay", help="rebuild state from the log and verify it")
    replay_parser.add_argument("db", metavar="DB", help=DB_HELP)
    replay_parser.add_argument("--schema", default=None, help=SCHEMA_HELP)
    replay_parser.set_defaults(run=cmd_replay)
    check_parser = commands.add_parser("check", help="verify conservation after every event")
    check_parser.add_argument("db", metavar="DB", help=DB_HELP)
    check_parser.add_argument("--schema", default=None, help=SCHEMA_HELP)
    check_parser.set_defaults(run=cmd_check)


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed ``crossmargin`` command: print its output; an error is one line on stderr.

    Exit codes: 0 success, 2 bad input (the line names the field), 1 any other refusal."""
    try:
        output = args.run(args)
    except InvalidInput as error:
        print(f"crossmargin: error: {error}", file=sys.stderr)
        return 2
    except CrossmarginError as error:
        print(f"crossmargin: error: {error}", file=sys.stderr)
        return 1
    if output:
        print(output)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m crossmargin.cli.engine_cmd engine|replay|check ...``: the same commands without
    importing the rest of the CLI (batch, sim, service), so an engine restarts faster after a
    crash. Errors are reported as ``crossmargin`` reports them."""
    parser = argparse.ArgumentParser(prog="crossmargin")
    register(parser.add_subparsers(dest="command", required=True))
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
