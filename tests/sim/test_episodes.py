"""Bundled crash episodes: every one loads, covers its window, and ships with the package."""

from __future__ import annotations

import fnmatch
import tomllib
from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest

from crossmargin.core.errors import InvalidInput
from crossmargin.sim.episodes import (
    EPISODES,
    episode_names,
    episode_symbols,
    get_episode,
    load_episode,
)
from crossmargin.sim.market_warnings import WarningKind

ROOT = Path(__file__).resolve().parents[2]


def test_the_four_crashes_are_listed() -> None:
    assert episode_names() == ("march-2020", "may-2021", "luna-2022", "ftx-2022")


@pytest.mark.parametrize("name", [episode.name for episode in EPISODES])
def test_episode_covers_its_window_hour_by_hour(name: str) -> None:
    data = load_episode(name)
    episode = data.episode
    hours = (episode.end - episode.start) // timedelta(hours=1)
    assert 7 * 24 <= hours <= 21 * 24
    assert episode.start < episode.crash_at < episode.end
    assert {"BTCUSDT", "ETHUSDT"} <= set(data.series)
    for series in data.series.values():
        assert len(series) == hours
        assert series.start == episode.start
        assert series.end == episode.end
    assert not [w for w in data.warnings if w.kind is WarningKind.GAP]


@pytest.mark.parametrize("name", [episode.name for episode in EPISODES])
def test_crash_hour_holds_a_deep_btc_low(name: str) -> None:
    data = load_episode(name, ["BTCUSDT"])
    series = data.series["BTCUSDT"]
    lowest = min(series.candles, key=lambda candle: candle.low)
    peak_before = max(c.high for c in series.candles if c.timestamp <= lowest.timestamp)
    assert lowest.low < peak_before * 3 / 4
    assert abs(lowest.timestamp - data.episode.crash_at) <= timedelta(days=2)


def test_march_2020_reports_the_eth_wick_and_nothing_else() -> None:
    data = load_episode("march-2020")
    assert [(w.kind, w.source, w.timestamp.isoformat()) for w in data.warnings] == [
        (
            WarningKind.ABSURD_WICK,
            "episodes/march-2020/ETHUSDT_1h.csv",
            "2020-03-13T02:00:00+00:00",
        )
    ]
    assert episode_symbols("march-2020") == ("BNBUSDT", "BTCUSDT", "ETHUSDT", "LINKUSDT")


def test_unknown_episode_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        get_episode("covid")
    assert caught.value.field == "episode"
    for name in episode_names():
        assert name in caught.value.problem


def test_unknown_symbol_lists_the_available_ones() -> None:
    with pytest.raises(InvalidInput) as caught:
        load_episode("march-2020", ["BTCUSDT", "DOGEUSDT"])
    assert caught.value.field == "symbols"
    assert "DOGEUSDT" in caught.value.problem
    assert "LINKUSDT" in caught.value.problem


def test_readme_names_the_source_and_every_window() -> None:
    readme = resources.files("crossmargin.data").joinpath("episodes", "README.md").read_text()
    assert "PixelAlpha-ai/MarketTrend" in readme
    for episode in EPISODES:
        assert f"`{episode.name}`" in readme
        assert episode.start.strftime("%Y-%m-%d %H:%M") in readme
        assert episode.end.strftime("%Y-%m-%d %H:%M") in readme


def test_package_data_globs_ship_every_episode_file() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["crossmargin"]
    package = ROOT / "src" / "crossmargin"
    files = sorted((package / "data" / "episodes").rglob("*.*"))
    assert len(files) > 20
    for path in files:
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in globs), relative
