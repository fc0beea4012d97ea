"""Candle loading: the validation rules, warnings, slicing and the float view."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from crossmargin.core.errors import InvalidInput
from crossmargin.core.position import Side
from crossmargin.sim.candles import TimeWindow, parse_utc_datetime
from crossmargin.sim.market import load_candles
from crossmargin.sim.market_warnings import ValidationThresholds, WarningKind
from tests.sim.candles import HEADER, START, csv_text, row, rows


def write(tmp_path: Path, text: str, name: str = "BTCUSDT_1h.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file_loads_exact_decimals_and_symbol_from_name(tmp_path: Path) -> None:
    path = write(
        tmp_path, csv_text([row(0, "7189.43", "7190.52", "7170.15", "7171.55", "2449.049")])
    )
    loaded = load_candles(path)
    candle = loaded.series.candles[0]
    assert loaded.series.symbol == "BTCUSDT"
    assert candle.timestamp == START
    assert candle.open == Decimal("7189.43")
    assert candle.low == Decimal("7170.15")
    assert candle.volume == Decimal("2449.049")
    assert loaded.warnings == ()


def test_byte_order_mark_and_crlf_line_ends_are_read(tmp_path: Path) -> None:
    path = tmp_path / "ETHUSDT_1h.csv"
    path.write_bytes(("\ufeff" + csv_text(rows(2)).replace("\n", "\r\n")).encode("utf-8"))
    assert len(load_candles(path).series) == 2


def test_series_built_by_hand_must_be_ordered_and_non_empty(tmp_path: Path) -> None:
    series = load_candles(write(tmp_path, csv_text(rows(2)))).series
    with pytest.raises(InvalidInput, match="strictly increasing"):
        replace(series, candles=series.candles[::-1])
    with pytest.raises(InvalidInput, match="at least one candle"):
        replace(series, candles=())


def test_non_utc_offset_is_converted_to_utc(tmp_path: Path) -> None:
    line = "2021-05-19 02:00:00+02:00,1,2,1,2,0"
    loaded = load_candles(write(tmp_path, csv_text([line])))
    assert loaded.series.candles[0].timestamp == START


BAD_FILES = [
    pytest.param(
        csv_text(rows(2), header="Date,Open,High,Low,Close"),
        ":1",
        "missing column(s) Volume",
        id="missing-column",
    ),
    pytest.param(
        csv_text(rows(2), header=HEADER + ",Trades"),
        ":1",
        "unexpected column(s) 'Trades'",
        id="extra-column",
    ),
    pytest.param(
        csv_text(rows(2), header="Date,High,Open,Low,Close,Volume"),
        ":1",
        "wrong order",
        id="columns-reordered",
    ),
    pytest.param("", ":1", "empty file", id="empty-file"),
    pytest.param(csv_text([]), "", "no candles", id="header-only"),
    pytest.param(
        csv_text([*rows(1), row(1, "1", "2", "1", "2") + ",7"]),
        ":3",
        "expected 6 fields, got 7",
        id="extra-field",
    ),
    pytest.param(
        csv_text([*rows(2), "yesterday,1,2,1,2,3"]),
        ":4:Date",
        "not a timestamp",
        id="bad-timestamp",
    ),
    pytest.param(
        csv_text(["2021-05-19 00:00:00,1,2,1,2,3"]),
        ":2:Date",
        "without a UTC offset",
        id="naive-timestamp",
    ),
    pytest.param(
        csv_text(["2021-05-19 00:30:00+00:00,1,2,1,2,3"]),
        ":2:Date",
        "not on the 1h grid",
        id="off-grid",
    ),
    pytest.param(
        csv_text([row(0, "1", "2", "abc", "2")]), ":2:Low", "not a number: 'abc'", id="not-a-number"
    ),
    pytest.param(csv_text([row(0, "1", "2", "1", "NaN")]), ":2:Close", "finite", id="nan-price"),
    pytest.param(
        csv_text([row(0, "1", "Infinity", "1", "2")]), ":2:High", "finite", id="infinite-price"
    ),
    pytest.param(csv_text([row(0, "0", "2", "0", "2")]), ":2:Open", "positive", id="zero-price"),
    pytest.param(
        csv_text([row(0, "1", "2", "-1", "2")]), ":2:Low", "positive", id="negative-price"
    ),
    pytest.param(
        csv_text([row(0, "1", "2", "1", "2", "-5")]), ":2:Volume", "negative", id="negative-volume"
    ),
    pytest.param(
        csv_text([*rows(2), row(2, "100", "104", "99", "105")]),
        ":4:High",
        "High 104 is below max(Open, Close) 105",
        id="high-below-close",
    ),
    pytest.param(
        csv_text([row(0, "100", "104", "101", "103")]),
        ":2:Low",
        "Low 101 is above min(Open, Close) 100",
        id="low-above-open",
    ),
    pytest.param(
        csv_text([*rows(3), rows(1, start_hour=1)[0]]),
        ":5",
        "duplicate timestamp 2021-05-19T01:00:00Z (first on line 3)",
        id="duplicate",
    ),
    pytest.param(
        csv_text([*rows(1, start_hour=0), *rows(1, start_hour=2), *rows(1, start_hour=1)]),
        ":4",
        "rows out of order",
        id="unordered",
    ),
]


@pytest.mark.parametrize(("text", "where", "problem"), BAD_FILES)
def test_bad_file_is_refused_naming_file_line_and_problem(
    tmp_path: Path, text: str, where: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InvalidInput) as caught:
        load_candles(path)
    assert caught.value.field == f"{path}{where}"
    assert problem in caught.value.problem


def test_unreadable_file_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        load_candles(tmp_path / "missing.csv")


def test_gap_is_a_warning_not_an_error_and_rows_are_not_filled(tmp_path: Path) -> None:
    path = write(tmp_path, csv_text([*rows(3), *rows(2, start_hour=6)]))
    loaded = load_candles(path)
    assert len(loaded.series) == 5
    (warning,) = loaded.warnings
    assert warning.kind is WarningKind.GAP
    assert warning.line == 5
    assert warning.timestamp == START + timedelta(hours=6)
    assert "3 candle(s) missing" in warning.message


def test_wick_beyond_threshold_warns_and_smaller_one_does_not(tmp_path: Path) -> None:
    lines = [
        row(0, "100", "150", "99", "120"),  # exactly 50%: not beyond the threshold
        row(1, "120", "121", "59", "100"),  # 50.8% down
        row(2, "100", "151", "100", "150"),  # 51% up
    ]
    loaded = load_candles(write(tmp_path, csv_text(lines)))
    assert [(w.kind, w.line) for w in loaded.warnings] == [
        (WarningKind.ABSURD_WICK, 3),
        (WarningKind.ABSURD_WICK, 4),
    ]
    assert "50.8%" in loaded.warnings[0].message


def test_jump_between_consecutive_candles_warns(tmp_path: Path) -> None:
    lines = [row(0, "100", "101", "99", "100"), row(1, "130", "131", "129", "130")]
    loaded = load_candles(write(tmp_path, csv_text(lines)))
    (warning,) = loaded.warnings
    assert warning.kind is WarningKind.ABSURD_JUMP
    assert "30.0%" in warning.message


def test_thresholds_are_configurable(tmp_path: Path) -> None:
    lines = [row(0, "100", "111", "99", "100"), row(1, "100", "101", "99", "100")]
    path = write(tmp_path, csv_text(lines))
    assert load_candles(path).warnings == ()
    strict = ValidationThresholds(wick_fraction=Decimal("0.1"))
    assert [w.kind for w in load_candles(path, thresholds=strict).warnings] == [
        WarningKind.ABSURD_WICK
    ]


def test_window_is_half_open_and_keeps_only_its_warnings(tmp_path: Path) -> None:
    path = write(tmp_path, csv_text([*rows(3), *rows(10, start_hour=5)]))
    window = TimeWindow.parse("2021-05-19T02:00", "2021-05-19 07:00:00+00:00")
    loaded = load_candles(path, window=window)
    assert [c.timestamp.hour for c in loaded.series.candles] == [2, 5, 6]
    assert [w.kind for w in loaded.warnings] == [WarningKind.GAP]
    later = load_candles(path, window=TimeWindow.parse("2021-05-19T06:00", None))
    assert later.warnings == ()
    assert later.series.start == START + timedelta(hours=6)
    assert later.series.end == START + timedelta(hours=15)


def test_empty_window_and_reversed_window_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path, csv_text(rows(3)))
    with pytest.raises(InvalidInput, match="no BTCUSDT candles"):
        load_candles(path, window=TimeWindow.parse("2022-01-01", None))
    with pytest.raises(InvalidInput) as caught:
        TimeWindow.parse("2021-05-20", "2021-05-19")
    assert caught.value.field == "to"


def test_parse_utc_datetime_forms() -> None:
    expected = datetime(2020, 3, 12, 10, tzinfo=UTC)
    for text in (
        "2020-03-12T10:00",
        "2020-03-12 10:00:00+00:00",
        "2020-03-12T10:00Z",
        "2020-03-12T12:00+02:00",
    ):
        assert parse_utc_datetime(text, "from") == expected
    assert parse_utc_datetime("2020-03-12", "from") == datetime(2020, 3, 12, tzinfo=UTC)
    with pytest.raises(InvalidInput) as caught:
        parse_utc_datetime("12/03/2020", "from")
    assert caught.value.field == "from"


def test_series_lookup_and_worst_price_for_each_side(tmp_path: Path) -> None:
    series = load_candles(write(tmp_path, csv_text(rows(3)))).series
    candle = series.at(START + timedelta(hours=1))
    assert candle is not None
    assert candle.worst_for(Side.LONG) == candle.low == Decimal(100)
    assert candle.worst_for(Side.SHORT) == candle.high == Decimal(103)
    assert candle.best_for(Side.LONG) == candle.high
    assert series.at(START + timedelta(hours=7)) is None


def test_arrays_are_read_only_float_copies(tmp_path: Path) -> None:
    series = load_candles(write(tmp_path, csv_text(rows(4)))).series
    arrays = series.arrays()
    assert arrays.close.dtype == np.float64
    np.testing.assert_array_equal(arrays.close, [101.0, 102.0, 103.0, 104.0])
    assert np.all(np.diff(arrays.time_s) == 3600)
    assert arrays.time_s[0] == int(START.timestamp())
    with pytest.raises(ValueError):
        arrays.low[0] = 1.0
