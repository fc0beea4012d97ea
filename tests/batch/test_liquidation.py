"""Batch liquidation prices: both backends walk the same segments and give the same bits."""

from __future__ import annotations

import numpy as np

from crossmargin.batch.convert import from_books
from crossmargin.batch.liquidation import liquidation_prices, position_scopes, solve
from crossmargin.batch.risk import revalue
from crossmargin.batch.synthetic import synthetic_book
from crossmargin.contract.portfolio import parse_portfolio
from crossmargin.core.risk import account_report


def test_numba_and_numpy_liquidation_prices_are_identical() -> None:
    arrays = synthetic_book(4000, seed=51).arrays
    valuation = revalue(arrays, arrays.marks * 0.97)
    fast = liquidation_prices(arrays, valuation, backend="numba")
    slow = liquidation_prices(arrays, valuation, backend="numpy")
    assert np.array_equal(fast, slow, equal_nan=True)
    assert np.isfinite(fast).mean() > 0.5


def test_a_jump_in_maintenance_above_the_mark_can_be_the_nearest_root(backend: str) -> None:
    # OKX charges the whole notional at the tier rate: crossing the 50,000 cap upward adds
    # 50,000 x 0.5% = 250 of maintenance at once, more than this thin long gains by then.
    book = parse_portfolio(
        {
            "venue": "okx-swap",
            "wallet_balance": "0",
            "positions": [
                {
                    "symbol": "XYZ-USDT-SWAP",
                    "side": "long",
                    "quantity": "1000",
                    "entry_price": "49.95",
                    "leverage": "10",
                    "margin_mode": "isolated",
                    "isolated_margin": "200",
                }
            ],
            "mark_prices": {"XYZ-USDT-SWAP": "49.9"},
            "instruments": {
                "XYZ-USDT-SWAP": {
                    "taker_fee_rate": "0",
                    "brackets": [
                        {
                            "notional_floor": "0",
                            "notional_cap": "50000",
                            "maintenance_margin_rate": "0.001",
                            "max_leverage": "20",
                        },
                        {
                            "notional_floor": "50000",
                            "notional_cap": None,
                            "maintenance_margin_rate": "0.006",
                            "max_leverage": "10",
                        },
                    ],
                }
            },
        }
    )
    arrays = from_books([book])
    valuation = revalue(arrays, backend=backend)
    crossings = solve(arrays.tables, position_scopes(arrays, valuation), backend=backend)
    # healthy at 49.9 (f = 200 - 50 - 49.9); below, f reaches 0 at 49,750 / 999 = 49.7998 (0.1002
    # away); above, f jumps to 200 + 50 - 300 < 0 just past 50 (0.1 away): the jump is nearer
    assert crossings.healthy[0]
    assert abs(crossings.down[0] - 49750 / 999) < 1e-9
    assert crossings.up[0] == 50.0
    assert liquidation_prices(arrays, valuation, backend=backend)[0] == 50.0
    core = account_report(book).positions[0].liquidation_price
    assert core == 50
