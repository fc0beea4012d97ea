"""Every linear worked example of the venue reference, through the `crossmargin risk` contract.

Vector ids (B1, Y1, ...) are those of the reference's section 8. Inverse (COIN-M) vectors B9, B10,
Y5-Y7 are out of scope: crossmargin models linear contracts only.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest

from crossmargin.core.instrument import BracketRow, make_brackets
from crossmargin.core.margin import open_order_cost
from crossmargin.core.position import Side
from crossmargin.core.venues import BINANCE_USDM, VENUES, _bundled_table
from tests.helpers import cents, risk

D = Decimal


def table(rows: list[tuple[str | None, str]], lev: str | None = None) -> list[dict[str, Any]]:
    """Bracket rows from (cap, rate) pairs, floors chained from 0, maintenance amounts derived."""
    result, floor = [], "0"
    for cap, rate in rows:
        row: dict[str, Any] = {
            "notional_floor": floor,
            "notional_cap": cap,
            "maintenance_margin_rate": rate,
        }
        if lev is not None:
            row["max_leverage"] = lev
        result.append(row)
        floor = cap if cap is not None else floor
    return result


BTC_2021 = table(
    [
        ("50000", "0.004"),
        ("250000", "0.005"),
        ("1000000", "0.01"),
        ("10000000", "0.025"),
        ("20000000", "0.05"),
        ("50000000", "0.10"),
        ("100000000", "0.125"),
        ("200000000", "0.15"),
        ("300000000", "0.25"),
        ("500000000", "0.50"),
    ]
)
ETH_2021 = table(
    [
        ("10000", "0.005"),
        ("100000", "0.0065"),
        ("500000", "0.01"),
        ("1000000", "0.02"),
        ("2000000", "0.05"),
        ("5000000", "0.10"),
        ("10000000", "0.125"),
        ("20000000", "0.15"),
        (None, "0.25"),
    ]
)

B1_PORTFOLIO: dict[str, Any] = {
    "venue": "binance-usdm",
    "wallet_balance": "1535443.01",
    "positions": [
        {
            "symbol": "BTCUSDT",
            "side": "long",
            "quantity": "109.488",
            "entry_price": "32481.98",
            "leverage": "10",
            "margin_mode": "cross",
        },
        {
            "symbol": "ETHUSDT",
            "side": "long",
            "quantity": "3683.979",
            "entry_price": "1456.84",
            "leverage": "10",
            "margin_mode": "cross",
        },
    ],
    "mark_prices": {"BTCUSDT": "31967.27", "ETHUSDT": "1335.18"},
    "instruments": {"BTCUSDT": {"brackets": BTC_2021}, "ETHUSDT": {"brackets": ETH_2021}},
}


def test_b1_b2_binance_cross_liquidation_prices_match_the_faq_to_the_cent() -> None:
    result = risk(B1_PORTFOLIO)
    btc, eth = result["positions"]
    assert cents(btc["liquidation_price"]) == D("26316.89")
    assert cents(eth["liquidation_price"]) == D("1153.26")


def test_b3_binance_maintenance_margins_use_bracket_rate_and_cum() -> None:
    btc, eth = risk(B1_PORTFOLIO)["positions"]
    # The FAQ prints the notional rounded (3,500,032.458); the exact q x MP is 3,500,032.45776.
    assert D(btc["notional"]) == D("109.488") * D("31967.27")
    assert cents(btc["maintenance_margin"]) == D("71200.81")
    assert cents(eth["maintenance_margin"]) == D("356512.51")
    assert btc["bracket"] == 4 and eth["bracket"] == 6


def test_b4_binance_account_margin_ratio() -> None:
    result = risk(B1_PORTFOLIO)
    assert D(result["margin_ratio"]).quantize(D("0.0001")) == D("0.4149")
    assert result["liquidatable"] is False


def test_b7_maintenance_amount_is_derived_cumulatively() -> None:
    rows = [
        BracketRow(
            floor=D(0),
            cap=D(50000),
            maintenance_margin_rate=D("0.004"),
            maintenance_amount=None,
            max_leverage=None,
        ),
        BracketRow(
            floor=D(50000),
            cap=D(250000),
            maintenance_margin_rate=D("0.005"),
            maintenance_amount=None,
            max_leverage=None,
        ),
        BracketRow(
            floor=D(250000),
            cap=D(1000000),
            maintenance_margin_rate=D("0.01"),
            maintenance_amount=None,
            max_leverage=None,
        ),
    ]
    brackets = make_brackets(rows, "brackets")
    assert [b.maintenance_amount for b in brackets] == [0, 50, 1300]


def test_b7_derived_amounts_reproduce_the_published_2021_tables() -> None:
    result = risk(B1_PORTFOLIO)  # the 2021 tables give cum 16,300 (BTC) and 135,365 (ETH)
    btc, eth = result["positions"]
    assert D(btc["maintenance_margin"]) == D("109.488") * D("31967.27") * D("0.025") - 16300
    assert D(eth["maintenance_margin"]) == D("3683.979") * D("1335.18") * D("0.10") - 135365


def test_b8_binance_cost_to_open_a_limit_order() -> None:
    kwargs = {"quantity": D(1), "price": D("9253.30"), "mark": D("9259.84"), "leverage": D(20)}
    long_cost = open_order_cost(side=Side.LONG, **kwargs)
    short_cost = open_order_cost(side=Side.SHORT, **kwargs)
    assert cents(str(long_cost)) == D("462.66")
    assert cents(str(short_cost)) == D("469.20")
    assert short_cost - long_cost == D("6.54")


def test_b11_binance_hedge_cross_long_and_short_share_one_liquidation_price() -> None:
    result = risk(
        {
            "wallet_balance": "10000",
            "position_mode": "hedge",
            "positions": [
                {
                    "symbol": "BTCUSDT",
                    "side": "long",
                    "quantity": "1",
                    "entry_price": "30000",
                    "leverage": "10",
                    "margin_mode": "cross",
                },
                {
                    "symbol": "BTCUSDT",
                    "side": "short",
                    "quantity": "0.5",
                    "entry_price": "31000",
                    "leverage": "10",
                    "margin_mode": "cross",
                },
            ],
            "instruments": {"BTCUSDT": {"brackets": table([(None, "0.004")])}},
        }
    )
    long_leg, short_leg = result["positions"]
    assert cents(long_leg["liquidation_price"]) == D("9109.31")
    assert long_leg["liquidation_price"] == short_leg["liquidation_price"]


def test_b12_binance_isolated_uses_mm_at_the_liquidation_price_not_the_shortcut() -> None:
    result = risk(
        {
            "wallet_balance": "0",
            "positions": [
                {
                    "symbol": "BTCUSDT",
                    "side": "long",
                    "quantity": "1",
                    "entry_price": "30000",
                    "leverage": "20",
                    "margin_mode": "isolated",
                    "isolated_margin": "1500",
                },
            ],
        }
    )  # the bundled 2024 table: 30,000 of notional is in bracket 1 (0.4%, cum 0)
    price = result["positions"][0]["liquidation_price"]
    assert cents(price) == D("28614.46")
    assert cents(price) != D(30000) * (1 - D(1) / 20 + D("0.004"))  # the shortcut: 28,620


def bybit(side: str, **extra: Any) -> dict[str, Any]:
    return {
        "venue": "bybit-linear",
        "wallet_balance": "0",
        "positions": [
            {
                "symbol": "BTCUSDT",
                "side": side,
                "quantity": "1",
                "entry_price": "20000",
                "leverage": "50",
                "margin_mode": "isolated",
                "isolated_margin": "400",
            }
        ],
        **extra,
    }


def test_y1_bybit_isolated_long_liquidation_price() -> None:
    position = risk(
        bybit(
            "long",
            instruments={
                "BTCUSDT": {
                    "brackets": table([("2000000", "0.005")], lev="100"),
                    "taker_fee_rate": "0",
                }
            },
        )
    )
    row = position["positions"][0]
    assert D(row["initial_margin"]) == 400 and D(row["maintenance_margin"]) == 100
    assert D(row["liquidation_price"]) == D(19700)


def test_y1_y2_bybit_bundled_preset_gives_the_published_prices() -> None:
    assert D(risk(bybit("long"))["positions"][0]["liquidation_price"]) == D(19700)
    assert D(risk(bybit("short"))["positions"][0]["liquidation_price"]) == D(20300)


@pytest.mark.parametrize(("side", "expected"), [("long", "2512.375"), ("short", "2515.125")])
def test_y3_bybit_initial_margin_includes_the_fee_to_close(side: str, expected: str) -> None:
    result = risk(
        {
            "venue": "bybit-linear",
            "wallet_balance": "10000",
            "positions": [
                {
                    "symbol": "BTCUSDT",
                    "side": side,
                    "quantity": "0.5",
                    "entry_price": "50000",
                    "leverage": "10",
                    "margin_mode": "cross",
                }
            ],
        }
    )
    assert D(result["positions"][0]["initial_margin"]) == D(expected)


def test_y4_bybit_tiered_maintenance_margin() -> None:
    tiers = table(
        [
            ("1000", "0.02"),
            ("2000", "0.025"),
            ("3000", "0.03"),
            ("4000", "0.035"),
            ("5000", "0.04"),
        ],
        lev="10",
    )
    result = risk(
        {
            "venue": "bybit-linear",
            "wallet_balance": "1000",
            "positions": [
                {
                    "symbol": "XYZUSDT",
                    "side": "long",
                    "quantity": "100",
                    "entry_price": "35",
                    "leverage": "10",
                    "margin_mode": "cross",
                }
            ],
            "instruments": {"XYZUSDT": {"brackets": tiers, "taker_fee_rate": "0"}},
        }
    )
    row = result["positions"][0]
    assert D(row["initial_margin"]) == 350
    assert D(row["maintenance_margin"]) == D("92.5") == D(3500) * D("0.035") - 30


def hyperliquid_btc(quantity: str, price: str, leverage: str, **position: Any) -> dict[str, Any]:
    return {
        "venue": "hyperliquid",
        "wallet_balance": "100000000",
        "positions": [
            {
                "symbol": "BTC",
                "side": "long",
                "quantity": quantity,
                "entry_price": price,
                "leverage": leverage,
                "margin_mode": "cross",
                **position,
            }
        ],
    }


def test_h6_hyperliquid_rate_is_half_the_initial_rate_at_max_leverage() -> None:
    small = risk(hyperliquid_btc("1", "60000", "40"))["positions"][0]
    assert D(small["maintenance_margin"]) == D(60000) / 80  # 1/(2 x 40) = 1.25%


def test_h6_hyperliquid_second_tier_deduction_is_1875000() -> None:
    large = risk(hyperliquid_btc("2000", "100000", "20"))["positions"][0]  # 200M notional
    assert D(large["maintenance_margin"]) == D(200_000_000) * D("0.025") - 1_875_000


def test_h_hyperliquid_published_liquidation_formula() -> None:
    row = risk(
        {
            "venue": "hyperliquid",
            "wallet_balance": "0",
            "positions": [
                {
                    "symbol": "BTC",
                    "side": "long",
                    "quantity": "1",
                    "entry_price": "60000",
                    "leverage": "40",
                    "margin_mode": "isolated",
                    "isolated_margin": "1500",
                }
            ],
        }
    )["positions"][0]
    # liq = price - side * margin_available / size / (1 - l * side), l = 1/(2 x 40)
    available = D(1500) - D(750)
    expected = D(60000) - available / 1 / (1 - D("0.0125"))
    assert abs(D(row["liquidation_price"]) - expected) < D("1e-8")


def test_h_hyperliquid_leverage_above_tier_maximum_is_refused() -> None:
    import json

    from tests.helpers import run_cli

    code, out, err = run_cli("risk", "-", stdin=json.dumps(hyperliquid_btc("1", "60000", "50")))
    assert code == 2 and out == ""
    assert "positions[0].leverage" in err and "40x" in err


def test_d1_dydx_isolated_short() -> None:
    row = risk(
        {
            "venue": "dydx",
            "wallet_balance": "0",
            "positions": [
                {
                    "symbol": "ETH-USD",
                    "side": "short",
                    "quantity": "3",
                    "entry_price": "3000",
                    "leverage": "9",
                    "margin_mode": "isolated",
                    "isolated_margin": "1000",
                }
            ],
            "instruments": {"ETH-USD": {"brackets": table([(None, "0.05")])}},
        }
    )["positions"][0]
    assert cents(row["liquidation_price"]) == D("3174.60")
    # p' = (e - s*p) / (|s|*MMF - s)
    assert abs(D(row["liquidation_price"]) - D(10000) / D("3.15")) < D("1e-8")


def test_okx_isolated_liquidation_price_has_fee_buffer_and_no_deduction() -> None:
    portfolio = {
        "venue": "okx-swap",
        "wallet_balance": "0",
        "positions": [
            {
                "symbol": "BTC-USDT-SWAP",
                "side": "long",
                "quantity": "1",
                "entry_price": "30000",
                "leverage": "20",
                "margin_mode": "isolated",
                "isolated_margin": "1500",
            }
        ],
    }
    row = risk(portfolio)["positions"][0]
    # LP_long = (F*EP - margin) / (F*(1 - MMR - fee)), bundled tier 1: MMR 0.4%, taker 0.05%
    expected = (D(30000) - D(1500)) / (1 - D("0.004") - D("0.0005"))
    assert abs(D(row["liquidation_price"]) - expected) < D("1e-8")
    portfolio["positions"][0]["side"] = "short"
    row = risk(portfolio)["positions"][0]
    expected = (D(30000) + D(1500)) / (1 + D("0.004") + D("0.0005"))
    assert abs(D(row["liquidation_price"]) - expected) < D("1e-8")


def test_okx_second_tier_charges_the_whole_notional_at_its_rate() -> None:
    row = risk(
        {
            "venue": "okx-swap",
            "wallet_balance": "100000",
            "positions": [
                {
                    "symbol": "BTC-USDT-SWAP",
                    "side": "long",
                    "quantity": "20",
                    "entry_price": "40000",
                    "leverage": "10",
                    "margin_mode": "cross",
                }
            ],
        }
    )["positions"][0]  # 800,000 of notional: tier 2 (0.6%) with no deduction, + 0.05% taker
    assert D(row["maintenance_margin"]) == D(800000) * (D("0.006") + D("0.0005"))


def test_bundled_binance_table_maintenance_amounts_are_continuous() -> None:
    symbols = _bundled_table(BINANCE_USDM.data_file)["symbols"]
    assert len(symbols) == 349
    for symbol in ("BTCUSDT", "ETHUSDT", "DOGEUSDT", "1000BONKUSDC"):
        instrument = BINANCE_USDM.instrument(symbol)
        assert instrument is not None
        for lower, upper in itertools.pairwise(instrument.brackets):
            assert upper.cap is None or upper.cap > upper.floor
            below = upper.floor * lower.maintenance_margin_rate - lower.maintenance_amount
            above = upper.floor * upper.maintenance_margin_rate - upper.maintenance_amount
            assert below == above, (symbol, upper.floor)


def test_every_preset_bundles_btc_and_eth() -> None:
    names = {
        "binance-usdm": ("BTCUSDT", "ETHUSDT"),
        "bybit-linear": ("BTCUSDT", "ETHUSDT"),
        "okx-swap": ("BTC-USDT-SWAP", "ETH-USDT-SWAP"),
        "hyperliquid": ("BTC", "ETH"),
        "dydx": ("BTC-USD", "ETH-USD"),
    }
    assert set(names) == set(VENUES)
    for venue_name, symbols in names.items():
        for symbol in symbols:
            assert VENUES[venue_name].instrument(symbol) is not None, (venue_name, symbol)


@pytest.mark.parametrize("venue", ["hyperliquid", "dydx"])
def test_venues_without_a_hedge_mode_refuse_a_hedge_portfolio(venue: str) -> None:
    import json

    from tests.helpers import run_cli

    portfolio = {
        "venue": venue,
        "wallet_balance": "1000",
        "position_mode": "hedge",
        "positions": [],
    }
    code, out, err = run_cli("risk", "-", stdin=json.dumps(portfolio))
    assert code == 2 and out == ""
    assert err.startswith("crossmargin: error: position_mode:") and "no hedge mode" in err
