"""``crossmargin backtest`` end to end: text and JSON output, the report files, the event log
kept with --store (replayable and conserving), and errors naming the field with exit code 2."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.backtest.scenarios import ETH_CRASH, eth_long_spec, write_candles
from tests.helpers import run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "backtest"


def spec_file(tmp_path: Path, **overrides: object) -> Path:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(eth_long_spec(**overrides)), encoding="utf-8")
    write_candles(tmp_path / "data", "ETHUSDT", ETH_CRASH)
    return path


def test_json_output_reports_exact_liquidations_and_writes_the_report(tmp_path: Path) -> None:
    spec = spec_file(tmp_path)
    out = tmp_path / "report"
    code, stdout, stderr = run_cli(
        "backtest", str(spec), "--data", str(tmp_path / "data"), "--out", str(out), "--json"
    )
    assert code == 0, stderr
    document = json.loads(stdout)
    modes = {m["mode"]: m for m in document["modes"]}
    [isolated] = [a for a in modes["isolated"]["activities"] if a["kind"] == "liquidation"]
    assert (isolated["price"], isolated["time"]) == ("2250", "2021-05-19T01:40:00+00:00")
    assert modes["isolated"]["final_equity"] == "747"
    assert modes["cross"]["final_equity"] == "0"
    html = (out / "backtest.html").read_text(encoding="utf-8")
    assert "Candles approximate the path" in html and "data:image/png;base64," in html
    assert (out / "backtest.png").read_bytes().startswith(b"\x89PNG")
    rows = (out / "backtest-events.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("timestamp,mode,kind")
    assert any(",isolated,liquidation,ETHUSDT,long,1,2250," in row for row in rows)


def test_text_output_has_the_summary_table_and_a_sweep(tmp_path: Path) -> None:
    spec = spec_file(tmp_path)
    code, stdout, stderr = run_cli(
        "backtest",
        str(spec),
        "--data",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "r"),
        "--sweep",
        "leverage=2,10",
    )
    assert code == 0, stderr
    assert "final equity" in stdout and "capital tied up" in stdout
    assert "isolated: liquidation ETHUSDT long 1 @ 2,250.00 at 2021-05-19 01:40" in stdout
    assert "sweep over leverage" in stdout
    assert (tmp_path / "r" / "sweep-leverage.png").is_file()


def test_the_kept_event_log_replays_and_conserves_money(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, modes=["isolated"])
    logs = tmp_path / "logs"
    code, _, stderr = run_cli(
        "backtest",
        str(spec),
        "--data",
        str(tmp_path / "data"),
        "--no-report",
        "--store",
        str(logs),
    )
    assert code == 0, stderr
    code, stdout, stderr = run_cli("check", str(logs / "isolated.db"))
    assert code == 0, stderr
    assert "conservation holds" in stdout
    code, stdout, stderr = run_cli("replay", str(logs / "isolated.db"))
    assert code == 0, stderr
    # a second run refuses to write into an existing log
    code, _, stderr = run_cli(
        "backtest",
        str(spec),
        "--data",
        str(tmp_path / "data"),
        "--no-report",
        "--store",
        str(logs),
    )
    assert code == 2 and "--store" in stderr


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--data", "nowhere"], "--data"),
        ([], "--data"),
        (["--from", "2021-05-20"], "from/to"),
        (["--modes", "cross,sideways"], "--modes[1]"),
    ],
)
def test_bad_input_exits_2_naming_the_field(tmp_path: Path, extra: list[str], field: str) -> None:
    spec = spec_file(tmp_path)
    if extra and extra[0] != "--data":
        extra = ["--data", str(tmp_path / "data"), *extra]
    code, stdout, stderr = run_cli("backtest", str(spec), "--no-report", *extra)
    assert code == 2, stdout
    assert field in stderr


def test_an_open_time_that_is_not_a_candle_is_refused(tmp_path: Path) -> None:
    spec = eth_long_spec()
    spec["positions"][0]["open_at"] = "2021-05-19T01:30"
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    write_candles(tmp_path / "data", "ETHUSDT", ETH_CRASH)
    code, _, stderr = run_cli("backtest", str(path), "--data", str(tmp_path / "data"))
    assert code == 2 and "positions[0].open_at" in stderr


def test_a_position_the_wallet_cannot_open_is_refused_naming_it(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, wallet="10")
    code, _, stderr = run_cli(
        "backtest", str(spec), "--data", str(tmp_path / "data"), "--no-report"
    )
    assert code == 2 and "positions[0]" in stderr and "INSUFFICIENT_MARGIN" in stderr


@pytest.mark.slow
@pytest.mark.parametrize("episode", ["march-2020", "may-2021", "ftx-2022"])
def test_each_required_episode_runs_the_worked_example_and_writes_the_report(
    tmp_path: Path, episode: str
) -> None:
    out = tmp_path / episode
    code, stdout, stderr = run_cli(
        "backtest",
        str(EXAMPLES / "worked-example.yaml"),
        "--episode",
        episode,
        "--out",
        str(out),
        "--json",
    )
    assert code == 0, stderr
    document = json.loads(stdout)
    assert [m["mode"] for m in document["modes"]] == ["cross", "isolated"]
    for mode in document["modes"]:
        assert Decimal(mode["final_equity"]) >= 0
    assert (out / "backtest.html").stat().st_size > 10_000
    assert (out / "sweep-leverage.png").is_file()


def test_the_managed_example_spec_is_valid() -> None:
    from crossmargin.sim.spec_load import load_spec

    spec = load_spec(EXAMPLES / "managed-hedge.yaml")
    assert spec.top_up is not None and spec.rebalance is not None
    assert spec.modes == ("cross", "isolated", "mixed")


def test_from_and_to_narrow_the_window(tmp_path: Path) -> None:
    """Hours 1 and 2 only: the long enters at hour 1's open (2,495), not 2,490."""
    spec = spec_file(tmp_path, modes=["cross"])
    code, stdout, stderr = run_cli(
        "backtest",
        str(spec),
        "--data",
        str(tmp_path / "data"),
        "--no-report",
        "--json",
        "--from",
        "2021-05-19T01:00",
        "--to",
        "2021-05-19T03:00",
    )
    assert code == 0, stderr
    document = json.loads(stdout)
    assert document["candles"] == 2
    [opened] = [a for a in document["modes"][0]["activities"] if a["kind"] == "open"]
    assert (opened["price"], opened["time"]) == ("2495", "2021-05-19T01:00:00+00:00")


def test_without_a_spec_the_worked_example_book_runs_and_is_told_in_words(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = run_cli("backtest", "--episode", "may-2021")
    assert code == 0, stderr
    assert stdout.startswith("no SPEC given: the worked example book ($1,000 of margin")
    assert "backtest worked-example: binance-usdm, episode may-2021" in stdout
    # money in cents with separators, prices to six digits, a profitable leg's close is a gain
    assert "cross: liquidation ETHUSDT long 0.957888 @ 2,181.24 at 2021-05-19 12:40" in stdout
    assert "(loss 1,927.28 USD)" in stdout
    assert "cross: liquidation BTCUSDT short 0.052898 @ 39,263.52" in stdout
    assert "(gain 923.03 USD)" in stdout and "loss -" not in stdout
    assert "1,305.68 (100.00%)" in stdout and "received 8.76" in stdout
    assert "ran 2 modes" in stdout
    assert (tmp_path / "worked-example-may-2021-report" / "backtest.html").is_file()


def test_the_default_book_is_the_worked_example_spec() -> None:
    from dataclasses import replace

    from crossmargin.sim.demo import backtest_spec
    from crossmargin.sim.spec_load import load_spec

    example = load_spec(EXAMPLES / "worked-example.yaml")
    assert replace(backtest_spec(), name=example.name) == example


def test_reports_of_two_data_sets_go_to_two_folders_and_a_foreign_one_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps(eth_long_spec(modes=["isolated"])), encoding="utf-8")
    for folder in ("calm", "storm"):
        write_candles(tmp_path / folder, "ETHUSDT", ETH_CRASH)
        code, _, stderr = run_cli("backtest", str(spec), "--data", folder)
        assert code == 0, stderr
    calm, storm = tmp_path / "eth-crash-calm-report", tmp_path / "eth-crash-storm-report"
    assert (calm / "backtest.html").is_file() and (storm / "backtest.html").is_file()
    written = (calm / "backtest.html").read_bytes()
    code, stdout, stderr = run_cli("backtest", str(spec), "--data", "storm", "--out", str(calm))
    assert code == 2 and stdout == ""
    assert stderr.startswith("crossmargin: error: --out: ") and "another run" in stderr
    assert (calm / "backtest.html").read_bytes() == written
    code, _, stderr = run_cli("backtest", str(spec), "--data", "calm")  # the same run again
    assert code == 0, stderr
    code, _, stderr = run_cli(
        "backtest", str(spec), "--data", "storm", "--out", str(calm), "--force"
    )
    assert code == 0, stderr
    assert "storm" in (calm / "backtest-run.txt").read_text(encoding="utf-8")
