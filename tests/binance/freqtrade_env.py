"""freqtrade in its own virtual environment, configured to trade live against a local server.

The venv lives in ``.cache/freqtrade-<version>`` (ignored by git; ``CROSSMARGIN_FREQTRADE_VENV``
overrides it). ``.ci/run`` creates it (``setup_freqtrade``); a local run creates it on first use
(``pip install freqtrade==<version> ccxt==<version>``, about 80 s). When the package registry
cannot be reached the test is skipped with that reason, except in CI (``CI=true``), where it
fails instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.binance.live import binance_urls

FREQTRADE_VERSION = "2026.9"
CCXT_VERSION = "4.5.90"  # freqtrade asks for ccxt>=4.5.76; pinned so a new ccxt changes nothing
ROOT = Path(__file__).resolve().parents[2]
INSTALL_TIMEOUT_S = 900

STRATEGY = '''
from freqtrade.strategy import IStrategy


class CrossmarginProbe(IStrategy):
    """Enters long whenever it holds nothing; leaves at +30% of the stake (ROI)."""

    INTERFACE_VERSION = 3
    timeframe = "1m"
    can_short = False
    minimal_roi = {"0": 0.3}
    stoploss = -0.99
    startup_candle_count = 0
    process_only_new_candles = False

    def populate_indicators(self, dataframe, metadata):
        return dataframe

    def populate_entry_trend(self, dataframe, metadata):
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        dataframe["exit_long"] = 0
        return dataframe

    def leverage(self, pair, current_time, current_rate, proposed_leverage, max_leverage,
                 entry_tag, side, **kwargs):
        return 10.0
'''


def venv() -> Path:
    given = os.environ.get("CROSSMARGIN_FREQTRADE_VENV")
    return Path(given) if given else ROOT / ".cache" / f"freqtrade-{FREQTRADE_VERSION}"


def _installed(executable: Path) -> bool:
    if not executable.exists():
        return False
    try:
        shown = subprocess.run(
            [str(executable), "--version"], capture_output=True, text=True, timeout=120, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return f"freqtrade {FREQTRADE_VERSION}" in shown.stdout and CCXT_VERSION in shown.stdout


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"freqtrade is needed in CI: {reason}")
    pytest.skip(reason)


def ensure_freqtrade() -> Path:
    """The pinned freqtrade's executable, installing it into its venv when missing."""
    folder = venv()
    executable = folder / "bin" / "freqtrade"
    if _installed(executable):
        return executable
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300)
    try:
        install = subprocess.run(
            [
                str(folder / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                f"freqtrade=={FREQTRADE_VERSION}",
                f"ccxt=={CCXT_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        _unavailable(f"pip install freqtrade=={FREQTRADE_VERSION} took over {INSTALL_TIMEOUT_S} s")
    if install.returncode != 0:
        tail = (install.stderr or install.stdout)[-2000:]
        network = any(
            word in tail
            for word in ("Could not find a version", "Connection", "NewConnectionError", "resolve")
        )
        if network:
            _unavailable(f"the package registry is unreachable: {tail.strip()[-300:]}")
        pytest.fail(f"pip install freqtrade=={FREQTRADE_VERSION} failed:\n{tail}")
    if not _installed(executable):
        pytest.fail(f"freqtrade {FREQTRADE_VERSION} did not install into {folder}")
    return executable


def config(
    base_url: str,
    credentials: dict[str, str],
    folder: Path,
    *,
    margin_mode: str,
    stake_amount: str | float,
    pair: str = "ETH/USDT:USDT",
) -> Path:
    """A live (not dry-run) futures config pointed at ``base_url``; returns its path."""
    ccxt: dict[str, Any] = {
        "urls": {"api": binance_urls(base_url)},
        "options": {
            "fetchMarkets": {"types": ["linear"]},
            "fetchCurrencies": False,
            "fetchMargins": False,
        },
    }
    document = {
        "max_open_trades": 1,
        "stake_currency": "USDT",
        "stake_amount": stake_amount,
        "tradable_balance_ratio": 0.99,
        "dry_run": False,
        "trading_mode": "futures",
        "margin_mode": margin_mode,
        "liquidation_buffer": 0.0,
        "timeframe": "1m",
        "cancel_open_orders_on_exit": False,
        "unfilledtimeout": {"entry": 10, "exit": 10, "unit": "minutes"},
        "entry_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "exit_pricing": {"price_side": "other", "use_order_book": True, "order_book_top": 1},
        "order_types": {
            "entry": "market",
            "exit": "market",
            "emergency_exit": "market",
            "force_entry": "market",
            "force_exit": "market",
            "stoploss": "market",
            "stoploss_on_exchange": False,
        },
        "exchange": {
            "name": "binance",
            "key": credentials["api_key"],
            "secret": credentials["secret"],
            "ccxt_config": ccxt,
            "ccxt_async_config": ccxt,
            "pair_whitelist": [pair],
            "pair_blacklist": [],
            "only_from_ccxt": True,
        },
        "pairlists": [{"method": "StaticPairList"}],
        "bot_name": f"crossmargin-{margin_mode}",
        "initial_state": "running",
        "internals": {"process_throttle_secs": 1, "heartbeat_interval": 0},
        "db_url": f"sqlite:///{folder / 'trades.sqlite'}",
        "user_data_dir": str(folder),
        "dataformat_ohlcv": "feather",
    }
    path = folder / "config.json"
    path.write_text(json.dumps(document, indent=1), encoding="utf-8")
    (folder / "strategies").mkdir(exist_ok=True)
    (folder / "strategies" / "crossmargin_probe.py").write_text(STRATEGY, encoding="utf-8")
    return path


def log(folder: Path) -> str:
    """What the bot printed (its log goes to stdout)."""
    path = folder / "freqtrade.out"
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def start(executable: Path, folder: Path) -> subprocess.Popen[bytes]:
    output = (folder / "freqtrade.out").open("wb")
    return subprocess.Popen(
        [
            str(executable),
            "trade",
            "--config",
            str(folder / "config.json"),
            "--strategy",
            "CrossmarginProbe",
            "--strategy-path",
            str(folder / "strategies"),
            "--userdir",
            str(folder),
        ],
        stdout=output,
        stderr=subprocess.STDOUT,
        cwd=folder,
        env={**os.environ, "COLUMNS": "400"},  # one log record per line
    )
