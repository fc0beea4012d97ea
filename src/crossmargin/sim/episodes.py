"""Built-in crash episodes: small slices of real hourly candles bundled with the package.

Each episode is a window ``[start, end)`` of Binance hourly candles around a market crash, stored
as ``crossmargin/data/episodes/<name>/<SYMBOL>_1h.csv`` in the same shape as any candle file (see
:mod:`crossmargin.sim.market`) and validated by the same loader, so a bundled episode obeys every
rule a user's file does. Provenance and windows are in ``data/episodes/README.md``.

Invariants: every listed episode has BTCUSDT and ETHUSDT; every file of an episode covers exactly
the episode window, one candle per hour, no gaps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from types import MappingProxyType

from crossmargin.core.errors import InvalidInput
from crossmargin.sim.candles import CandleSeries, TimeWindow
from crossmargin.sim.market import parse_candles
from crossmargin.sim.market_warnings import DataWarning

FILE_SUFFIX = "_1h.csv"


@dataclass(frozen=True, slots=True, kw_only=True)
class Episode:
    """A named window of real market history; ``crash_at`` is the hour of the headline fall."""

    name: str
    title: str
    start: datetime
    end: datetime
    crash_at: datetime
    summary: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeData:
    """An episode's validated series by symbol, and the data warnings they produced."""

    episode: Episode
    series: Mapping[str, CandleSeries]
    warnings: tuple[DataWarning, ...]


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


EPISODES: tuple[Episode, ...] = (
    Episode(
        name="march-2020",
        title="COVID crash, March 2020",
        start=_utc("2020-03-05"),
        end=_utc("2020-03-20"),
        crash_at=_utc("2020-03-12T10:00"),
        summary="BTC fell from about 7,950 to 3,621.81 in some 27 hours on 12-13 March; the "
        "candle of 2020-03-13 02:00 holds every symbol's low (and an ETH wick to 323).",
    ),
    Episode(
        name="may-2021",
        title="May 2021 crash",
        start=_utc("2021-05-12"),
        end=_utc("2021-05-26"),
        crash_at=_utc("2021-05-19T12:00"),
        summary="ETH fell from 3,377 at the day's open to 1,400.73 at 13:00 on 19 May (-58%); "
        "BNB, LINK and AVAX made their lows on 23 May.",
    ),
    Episode(
        name="luna-2022",
        title="LUNA/UST collapse, May 2022",
        start=_utc("2022-05-04"),
        end=_utc("2022-05-18"),
        crash_at=_utc("2022-05-12T07:00"),
        summary="The UST depeg dragged BTC from about 39,700 on 5 May to 26,631 on 12 May.",
    ),
    Episode(
        name="ftx-2022",
        title="FTX collapse, November 2022",
        start=_utc("2022-11-04"),
        end=_utc("2022-11-16"),
        crash_at=_utc("2022-11-09T22:00"),
        summary="FTX halted withdrawals on 8 November; BTC fell from about 20,900 on 7 November "
        "to 15,462.6 late on 9 November.",
    ),
)

_BY_NAME = {episode.name: episode for episode in EPISODES}


def episode_names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def get_episode(name: str) -> Episode:
    """The episode called ``name``; an unknown name lists the known ones."""
    episode = _BY_NAME.get(name)
    if episode is None:
        raise InvalidInput(
            "episode", f"unknown episode {name!r}; known episodes: {', '.join(episode_names())}"
        )
    return episode


def episode_symbols(name: str) -> tuple[str, ...]:
    """Symbols bundled for an episode, sorted."""
    return tuple(sorted(_files(get_episode(name))))


def load_episode(name: str, symbols: Sequence[str] | None = None) -> EpisodeData:
    """Load and validate an episode's candles (all bundled symbols, or the ``symbols`` asked for)."""
    episode = get_episode(name)
    files = _files(episode)
    wanted = sorted(files) if symbols is None else list(dict.fromkeys(symbols))
    unknown = [symbol for symbol in wanted if symbol not in files]
    if unknown:
        raise InvalidInput(
            "symbols",
            f"episode {name!r} has no data for {', '.join(unknown)}; "
            f"available: {', '.join(sorted(files))}",
        )
    window = TimeWindow(start=episode.start, end=episode.end)
    series: dict[str, CandleSeries] = {}
    warnings: list[DataWarning] = []
    for symbol in wanted:
        resource = files[symbol]
        loaded = parse_candles(
            resource.read_text(encoding="utf-8").splitlines(),
            source=f"episodes/{name}/{resource.name}",
            symbol=symbol,
            window=window,
        )
        series[symbol] = loaded.series
        warnings.extend(loaded.warnings)
    return EpisodeData(episode=episode, series=MappingProxyType(series), warnings=tuple(warnings))


def _files(episode: Episode) -> dict[str, Traversable]:
    folder = resources.files("crossmargin.data").joinpath("episodes", episode.name)
    return {
        entry.name.removesuffix(FILE_SUFFIX): entry
        for entry in folder.iterdir()
        if entry.is_file() and entry.name.endswith(FILE_SUFFIX)
    }
