"""``crossmargin demo``: the worked example in cross and in isolated margin, as tables."""

from __future__ import annotations

import textwrap
from decimal import Decimal

from crossmargin.cli.render import money, percent, table
from crossmargin.core.position import MarginMode
from crossmargin.sim.demo import BTC, ETH, PATHS, START, WALLET, ModeRun, run_path

INTRO = f"""crossmargin demo: one ${WALLET:,} account, two ways to margin it (Binance USD-M rules)

  long  2 ETH     at {START[ETH]:,}  (notional 4,000, 10x; $400 of margin in isolated mode)
  short 0.075 BTC at {START[BTC]:,} (notional 3,000,  5x; $600 of margin in isolated mode)

Cross margin: the whole $1,000 wallet backs both positions; one is liquidated only with the other,
when the account's margin balance falls to its total maintenance margin.
Isolated margin: each leg has only its own margin and dies alone when that margin plus its own PnL
falls to its maintenance margin. A liquidated scope keeps nothing (Binance closes a first-bracket
position whole; the margin left above bankruptcy goes to the insurance fund).
"""

EXPLAIN = {
    "a": (
        "Both prices fall: the short BTC gains while the long ETH loses. In cross the BTC profit "
        "covers the ETH loss, so nothing is liquidated and both positions stay open; in isolated "
        "the ETH leg cannot use the BTC profit and is liquidated alone. At the bottom isolated "
        "shows more equity (its ETH loss stopped at $400 while cross kept carrying ETH), but the "
        "$400 is realised: when prices come back, cross is whole and isolated is $400 down."
    ),
    "b": (
        "ETH falls and BTC rises: both legs lose. (BTC rising hurts the short; it does not help "
        "it.) Cross puts the whole $1,000 behind both losing legs and loses all of it at once; "
        "isolated caps each leg's loss at its own margin, so the BTC leg outlives the ETH leg."
    ),
}


def _move_label(key: str, move: Decimal) -> str:
    pct = f"{move * 100:.0f}%"
    if key == "a":
        return f"ETH -{pct} BTC -{pct}" if move else "start"
    return f"ETH -{pct} BTC +{pct}" if move else "start"


def _cell(run: ModeRun, index: int, scope: str) -> str:
    row = run.rows[index]
    balance = row.balances.get(scope)
    if balance is None:
        return "liquidated"
    return f"{money(balance)} ({percent(row.ratios[scope], 1)})"


def _liquidation_lines(run: ModeRun) -> list[str]:
    if not run.liquidations:
        return [f"  {run.mode.value}: nothing is liquidated on this path"]
    lines = []
    for scope, move, marks in run.liquidations:
        lines.append(
            f"  {run.mode.value}: {scope} liquidated at a {move * 100:.2f}% move "
            f"(ETH {money(marks[ETH])}, BTC {money(marks[BTC])})"
        )
    return lines


def render_path(key: str) -> str:
    title, path = PATHS[key]
    cross = run_path(MarginMode.CROSS, path)
    isolated = run_path(MarginMode.ISOLATED, path)
    rows = []
    for index, row in enumerate(cross.rows):
        iso_row = isolated.rows[index]
        rows.append(
            [
                _move_label(key, row.move),
                _cell(cross, index, "cross account"),
                _cell(isolated, index, "ETH leg"),
                _cell(isolated, index, "BTC leg"),
                money(row.equity),
                money(iso_row.equity),
            ]
        )
    body = table(
        [
            "move",
            "cross: margin bal. (ratio)",
            "iso ETH leg",
            "iso BTC leg",
            "cross equity",
            "iso equity",
        ],
        rows,
    )
    lines = [
        f"({key}) {title}",
        "",
        body,
        "",
        *_liquidation_lines(cross),
        *_liquidation_lines(isolated),
    ]
    lines.append(
        f"  if prices then return to the start: cross keeps {money(cross.kept_after_recovery)}, "
        f"isolated keeps {money(isolated.kept_after_recovery)}"
    )
    lines += ["", textwrap.fill(EXPLAIN[key], width=100)]
    return "\n".join(lines)


def render_demo() -> str:
    parts = [INTRO, render_path("a"), "", render_path("b"), ""]
    parts.append(
        "Try your own book: crossmargin risk examples/worked-example-cross.json --table\n"
        "and shock it:      crossmargin scenario examples/worked-example-cross.json "
        "--shock ETHUSDT=-20% --shock BTCUSDT=+5% --table"
    )
    return "\n".join(parts)
