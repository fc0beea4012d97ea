"""The core's golden scenarios (the venue reference's worked examples) through the batch path.

Each portfolio is the one of ``tests/scenarios/test_venue_examples.py``; the batch path must give
the published numbers to the cent (within half a cent) and agree with the core within the declared tolerances, on both
backends.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from crossmargin.batch.convert import from_books
from crossmargin.batch.liquidation import liquidation_prices
from crossmargin.batch.risk import revalue
from crossmargin.contract.portfolio import parse_portfolio
from crossmargin.core.risk import account_report
from tests.batch.agreement import check_account
from tests.scenarios.test_venue_examples import B1_PORTFOLIO, bybit, hyperliquid_btc, table

D = Decimal


def _one(
    symbol: str, side: str, quantity: str, price: str, leverage: str, mode: str, **extra: Any
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "side": side,
        "quantity": quantity,
        "entry_price": price,
        "leverage": leverage,
        "margin_mode": mode,
        **extra,
    }


GOLDEN: dict[str, tuple[dict[str, Any], dict[str, list[str | None]]]] = {
    "B1-B4 binance cross": (
        B1_PORTFOLIO,
        {
            "liquidation_price": ["26316.89", "1153.26"],
            "maintenance_margin": ["71200.81", "356512.51"],
        },
    ),
    "B11 binance hedge": (
        {
            "wallet_balance": "10000",
            "position_mode": "hedge",
            "positions": [
                _one("BTCUSDT", "long", "1", "30000", "10", "cross"),
                _one("BTCUSDT", "short", "0.5", "31000", "10", "cross"),
            ],
            "instruments": {"BTCUSDT": {"brackets": table([(None, "0.004")])}},
        },
        {"liquidation_price": ["9109.31", "9109.31"]},
    ),
    "B12 binance isolated": (
        {
            "wallet_balance": "0",
            "positions": [
                _one("BTCUSDT", "long", "1", "30000", "20", "isolated", isolated_margin="1500")
            ],
        },
        {"liquidation_price": ["28614.46"]},
    ),
    "Y1 bybit isolated long": (bybit("long"), {"liquidation_price": ["19700.00"]}),
    "Y2 bybit isolated short": (bybit("short"), {"liquidation_price": ["20300.00"]}),
    "Y3 bybit fee to close": (
        {
            "venue": "bybit-linear",
            "wallet_balance": "10000",
            "positions": [_one("BTCUSDT", "long", "0.5", "50000", "10", "cross")],
        },
        {"initial_margin": ["2512.38"]},
    ),
    "Y4 bybit tiers": (
        {
            "venue": "bybit-linear",
            "wallet_balance": "1000",
            "positions": [_one("XYZUSDT", "long", "100", "35", "10", "cross")],
            "instruments": {
                "XYZUSDT": {
                    "brackets": table(
                        [
                            ("1000", "0.02"),
                            ("2000", "0.025"),
                            ("3000", "0.03"),
                            ("4000", "0.035"),
                            ("5000", "0.04"),
                        ],
                        lev="10",
                    ),
                    "taker_fee_rate": "0",
                }
            },
        },
        {"initial_margin": ["350.00"], "maintenance_margin": ["92.50"]},
    ),
    "H6 hyperliquid second tier": (
        hyperliquid_btc("2000", "100000", "20"),
        {"maintenance_margin": ["3125000.00"]},
    ),
    "H hyperliquid isolated": (
        {
            "venue": "hyperliquid",
            "wallet_balance": "0",
            "positions": [
                _one("BTC", "long", "1", "60000", "40", "isolated", isolated_margin="1500")
            ],
        },
        {"liquidation_price": ["59240.51"]},
    ),
    "D1 dydx isolated short": (
        {
            "venue": "dydx",
            "wallet_balance": "0",
            "positions": [
                _one("ETH-USD", "short", "3", "3000", "9", "isolated", isolated_margin="1000")
            ],
            "instruments": {"ETH-USD": {"brackets": table([(None, "0.05")])}},
        },
        {"liquidation_price": ["3174.60"]},
    ),
    "OKX isolated long": (
        {
            "venue": "okx-swap",
            "wallet_balance": "0",
            "positions": [
                _one(
                    "BTC-USDT-SWAP", "long", "1", "30000", "20", "isolated", isolated_margin="1500"
                )
            ],
        },
        {"liquidation_price": ["28628.83"]},
    ),
    "OKX second tier": (
        {
            "venue": "okx-swap",
            "wallet_balance": "100000",
            "positions": [_one("BTC-USDT-SWAP", "long", "20", "40000", "10", "cross")],
        },
        {"maintenance_margin": ["5200.00"]},
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_golden_scenario_through_the_batch_path(name: str, backend: str) -> None:
    portfolio, expected = GOLDEN[name]
    book = parse_portfolio(portfolio)
    arrays = from_books([book])
    valuation = revalue(arrays, backend=backend)
    prices = liquidation_prices(arrays, valuation, backend=backend)
    batch = {
        "liquidation_price": prices,
        "maintenance_margin": valuation.maintenance_margin,
        "initial_margin": valuation.initial_margin,
    }
    for field, values in expected.items():
        for index, value in enumerate(values):
            assert value is not None
            got = float(batch[field][index])
            assert abs(got - float(value)) <= 0.005 + 1e-9, (name, field, index, got)
    check_account(book, account_report(book), arrays, valuation, prices, 0)
