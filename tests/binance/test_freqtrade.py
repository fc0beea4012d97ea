"""freqtrade (pinned, from the package registry, unmodified) trades live futures on crossmargin.

One ``crossmargin serve`` process and two freqtrade bots in live mode (``dry_run`` false), one
isolated and one cross, both on ETH/USDT:USDT at 10x, fed the real May 2021 marks through the
operator's mark feed:

1. calm (18 May 03:00 close): each bot opens a long once its first candle closes;
2. the 18 May 04:00 candle (+4%): the ROI exit closes the trade and the bot opens again;
3. the feed gaps into the 19 May crash (11:00 and 12:00 candles): crossmargin liquidates both
   positions; each bot finds its position gone, finds the forced close among the account's
   orders (``autoclose-...``) and closes its trade with it.

It takes a few minutes (the first entry waits for a closed 1-minute candle).
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.binance import freqtrade_env
from tests.binance.live import Server, serve
from tests.binance.replay import MarkPump, may_2021, stretch

pytestmark = pytest.mark.slow
TICK = Decimal("0.01")  # ETHUSDT's PRICE_FILTER tick
BOTS = {"isolated": ("ft-iso", 100), "cross": ("ft-cross", "unlimited")}


def trades(folder: Path) -> list[dict[str, Any]]:
    path = folder / "trades.sqlite"
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute("SELECT * FROM trades ORDER BY id").fetchall()
        except sqlite3.OperationalError:  # freqtrade has not created its tables yet
            return []
        return [dict(row) for row in rows]


def orders(folder: Path, trade_id: int) -> list[dict[str, Any]]:
    with sqlite3.connect(folder / "trades.sqlite") as db:
        db.row_factory = sqlite3.Row
        rows = db.execute("SELECT * FROM orders WHERE ft_trade_id = ?", (trade_id,))
        return [dict(row) for row in rows.fetchall()]


def wait(what: str, check: Callable[[], bool], bots: dict[str, Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        for name, (process, folder) in bots.items():
            if process.poll() is not None:
                log = freqtrade_env.log(folder)[-4000:]
                pytest.fail(f"freqtrade ({name}) exited while waiting for {what}:\n{log}")
        if time.monotonic() > deadline:
            logs = {n: freqtrade_env.log(f)[-3000:] for n, (_, f) in bots.items()}
            pytest.fail(f"timed out waiting for {what}; logs:\n{logs}")
        time.sleep(1)


def positions(server: Server, account: str) -> list[dict[str, Any]]:
    return list(server.risk(account)["positions"])


@pytest.fixture(scope="module")
def freqtrade() -> Path:
    return freqtrade_env.ensure_freqtrade()


@pytest.fixture
def world(tmp_path: Path, freqtrade: Path) -> Iterator[tuple[Server, dict[str, Any], MarkPump]]:
    tape = may_2021()
    calm = stretch(tape, "2021-05-18T03:00", "2021-05-18T04:00")[-1]
    (tmp_path / "server").mkdir()
    with ExitStack() as stack:
        server = stack.enter_context(serve(tmp_path / "server"))
        with server.operator() as operator:
            operator.post("/v1/insurance-fund", json={"amount": "1000000"}).raise_for_status()
        pump = stack.enter_context(MarkPump(server, calm.prices))
        bots: dict[str, Any] = {}
        for mode, (account, stake) in BOTS.items():
            credentials = server.open_account(account, "1000")
            folder = tmp_path / mode
            folder.mkdir()
            freqtrade_env.config(
                server.url, credentials, folder, margin_mode=mode, stake_amount=stake
            )
            process = freqtrade_env.start(freqtrade, folder)
            stack.callback(_stop, process)
            bots[mode] = (process, folder)
        yield server, bots, pump


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_freqtrade_trades_live_and_reports_a_crossmargin_liquidation(
    world: tuple[Server, dict[str, Any], MarkPump],
) -> None:
    server, bots, pump = world
    tape = may_2021()
    accounts = {mode: account for mode, (account, _) in BOTS.items()}

    def holding(mode: str) -> bool:
        return bool(positions(server, accounts[mode]))

    def knows_liquidation_price(number: int) -> None:
        """Trade ``number`` is open in each bot with crossmargin's own liquidation price."""
        for mode, (_, folder) in bots.items():
            (position,) = positions(server, accounts[mode])
            assert position["margin_mode"] == mode and position["leverage"] == "10"
            wait(
                f"{mode} trade {number} and its liquidation price",
                lambda f=folder: (
                    len(trades(f)) == number and trades(f)[-1]["liquidation_price"] is not None
                ),
                bots,
                timeout=60,
            )
            # freqtrade keeps the exchange's liquidation price rounded to the tick (0.01)
            recorded = trades(folder)[-1]["liquidation_price"]
            assert abs(Decimal(str(recorded)) - Decimal(position["liquidation_price"])) <= TICK / 2

    # 1. each bot opens a long, and knows crossmargin's own liquidation price
    wait("both entries", lambda: all(holding(m) for m in bots), bots, timeout=300)
    knows_liquidation_price(1)

    # 2. +4%: the ROI exit closes trade 1, and the bot opens trade 2
    pump.play(stretch(tape, "2021-05-18T04:00", "2021-05-18T05:00"))

    def reopened(mode: str) -> bool:
        found = trades(bots[mode][1])
        return len(found) == 2 and not found[0]["is_open"] and holding(mode)

    wait("ROI exits and re-entries", lambda: all(reopened(m) for m in bots), bots, timeout=180)
    for _, folder in bots.values():
        first = trades(folder)[0]
        assert first["exit_reason"] == "roi" and first["close_profit"] > 0.3
    knows_liquidation_price(2)

    # 3. the crash: crossmargin liquidates, freqtrade finds the forced close and reports it
    pump.play(stretch(tape, "2021-05-19T11:00", "2021-05-19T13:00"))
    wait("liquidations", lambda: not any(holding(m) for m in bots), bots, timeout=60)
    for mode in bots:
        kinds = [e["type"] for e in server.events(accounts[mode])]
        assert "PositionLiquidated" in kinds, (mode, kinds)

    def reported(mode: str) -> bool:
        found = trades(bots[mode][1])
        return len(found) >= 2 and not found[1]["is_open"]

    wait(
        "freqtrade to close the liquidated trades",
        lambda: all(reported(m) for m in bots),
        bots,
        timeout=180,
    )
    for mode, (_, folder) in bots.items():
        second = trades(folder)[1]
        exits = [o for o in orders(folder, second["id"]) if o["ft_order_side"] == "sell"]
        assert len(exits) == 1 and exits[0]["status"] == "closed", exits
        log = " ".join(freqtrade_env.log(folder).split())
        assert f"Found previously unknown order {exits[0]['order_id']}" in log
        assert second["exit_reason"] == "sold_on_exchange"
        assert second["close_rate"] < trades(folder)[1]["liquidation_price"]
        print(f"{mode}: {trades(folder)}")
    assert not pump.errors
