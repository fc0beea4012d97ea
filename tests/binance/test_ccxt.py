"""ccxt's ``binanceusdm`` class, unmodified, trading on ``crossmargin serve`` through /fapi.

Only the API URLs are pointed at the local server. The flow is a user's: load markets, read the
balance, set leverage and margin type, open market positions (isolated and cross), read the
positions (their ``liquidationPrice`` is crossmargin's own), add isolated margin, place and
cancel a limit order, read open orders and income; then a crash posted through the operator's
mark feed liquidates the isolated position, and ccxt sees it gone, the forced close among the
orders and the liquidation in the income.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from crossmargin.core.venues import venue
from tests.binance.live import Server, binance_urls, serve

ETH, BTC = "ETH/USDT:USDT", "BTC/USDT:USDT"


def client(server: Server, credentials: dict[str, str]) -> Any:
    exchange = ccxt.binanceusdm(
        {
            "apiKey": credentials["api_key"],
            "secret": credentials["secret"],
            "options": {"fetchCurrencies": False},
        }
    )
    exchange.urls["api"] = binance_urls(server.url)
    return exchange


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Any]]:
    folder: Path = tmp_path_factory.mktemp("ccxt")
    with serve(folder) as server:
        with server.operator() as operator:
            operator.post("/v1/insurance-fund", json={"amount": "100000"}).raise_for_status()
        server.marks(ETHUSDT="2000", BTCUSDT="40000")
        credentials = server.open_account("trader", "10000")
        yield server, client(server, credentials)


def own_liquidation_prices(server: Server) -> dict[str, str]:
    """crossmargin's liquidation price per symbol (the ``crossmargin risk`` report)."""
    return {p["symbol"]: p["liquidation_price"] for p in server.risk("trader")["positions"]}


def test_markets_carry_the_symbols_filters_and_margin_asset(world: tuple[Server, Any]) -> None:
    _, exchange = world
    markets = exchange.load_markets()
    assert sorted(markets) == [BTC, ETH]
    eth = markets[ETH]
    assert eth["swap"] and eth["linear"] and eth["settle"] == "USDT"
    assert eth["precision"] == {"amount": 0.001, "price": 0.01, "base": 1e-8, "quote": 1e-8}
    assert eth["limits"]["amount"]["min"] == 0.001 and eth["limits"]["cost"]["min"] == 5
    assert eth["info"]["contractType"] == "PERPETUAL" and eth["info"]["marginAsset"] == "USDT"


def test_market_data_fees_and_tiers_read_through_ccxt(world: tuple[Server, Any]) -> None:
    _, exchange = world
    exchange.load_markets()
    # the preset's rates per symbol; fetch_trading_fees reads ccxt's own table at fee tier 0
    assert exchange.fetch_trading_fee(ETH)["taker"] == 0.0005
    assert exchange.fetch_trading_fees()[ETH]["taker"] == 0.0004
    table = venue("binance-usdm").instrument("ETHUSDT")
    assert table is not None
    tiers = exchange.fetch_leverage_tiers([ETH])[ETH]
    assert [(t["maxNotional"], t["maintenanceMarginRate"], t["maxLeverage"]) for t in tiers] == [
        (float(b.cap or 10**12), float(b.maintenance_margin_rate), float(b.max_leverage or 1))
        for b in table.brackets
    ]
    assert exchange.fetch_ohlcv(ETH, "1m")[-1][4] == 2000
    assert exchange.fetch_order_book(ETH, 5)["bids"][0][0] == 2000
    assert exchange.fetch_funding_rate(ETH)["markPrice"] == 2000
    assert exchange.fetch_ticker(ETH)["last"] == 2000


def test_a_ccxt_session_from_balance_to_a_liquidation(world: tuple[Server, Any]) -> None:
    server, exchange = world
    exchange.load_markets()
    assert exchange.fetch_balance()["USDT"] == {"free": 10000.0, "used": 0.0, "total": 10000.0}

    # leverage and margin type; a repeated margin type is Binance's -4046
    assert exchange.set_leverage(10, ETH)["leverage"] == 10
    assert exchange.set_leverage(5, BTC)["leverage"] == 5
    assert exchange.set_margin_mode("isolated", ETH)["code"] == 200
    with pytest.raises(ccxt.MarginModeAlreadySet, match="No need to change margin type"):
        exchange.set_margin_mode("isolated", ETH)

    # market positions: isolated long ETH, cross short BTC
    bought = exchange.create_order(ETH, "market", "buy", 1)
    sold = exchange.create_order(BTC, "market", "sell", 0.05)
    assert bought["status"] == sold["status"] == "closed"
    assert bought["average"] == 2000 and bought["filled"] == 1
    with pytest.raises(ccxt.OperationRejected, match="exists position"):
        exchange.set_margin_mode("cross", ETH)
    # ccxt keys its futures-only codes (-2019 among them) to Binance's own host names, so at a
    # local URL it raises the base ExchangeError, carrying Binance's code and text
    with pytest.raises(
        ccxt.ExchangeError, match=re.escape('"code":-2019,"msg":"Margin is insufficient."')
    ):
        exchange.create_order(BTC, "market", "sell", 2)

    # positions: the liquidation price is crossmargin's own, to the last digit
    positions = {p["symbol"]: p for p in exchange.fetch_positions()}
    own = own_liquidation_prices(server)
    assert positions[ETH]["marginMode"] == "isolated" and positions[BTC]["marginMode"] == "cross"
    assert positions[ETH]["side"] == "long" and positions[BTC]["side"] == "short"
    assert positions[BTC]["info"]["notional"] == "-2000"  # signed, as Binance writes it
    for symbol, name in ((ETH, "ETHUSDT"), (BTC, "BTCUSDT")):
        assert positions[symbol]["info"]["liquidationPrice"] == own[name]
        assert positions[symbol]["liquidationPrice"] == float(Decimal(own[name]))

    # isolated margin: more margin, a lower liquidation price, still crossmargin's
    before = Decimal(positions[ETH]["info"]["isolatedWallet"])
    assert exchange.add_margin(ETH, 50)["status"] == "ok"
    after = {p["symbol"]: p for p in exchange.fetch_positions()}[ETH]
    assert Decimal(after["info"]["isolatedWallet"]) == before + 50
    assert after["liquidationPrice"] < positions[ETH]["liquidationPrice"]
    assert after["info"]["liquidationPrice"] == own_liquidation_prices(server)["ETHUSDT"]

    # a limit order rests below the mark, shows among open orders, and is cancelled
    resting = exchange.create_order(ETH, "limit", "buy", 0.5, 1900)
    assert resting["status"] == "open"
    assert [o["id"] for o in exchange.fetch_open_orders(ETH)] == [resting["id"]]
    assert exchange.cancel_order(resting["id"], ETH)["status"] == "canceled"
    assert exchange.fetch_open_orders(ETH) == []
    assert exchange.fetch_order(resting["id"], ETH)["status"] == "canceled"

    # income: the deposit and the fees of the two fills
    kinds = [entry["info"]["incomeType"] for entry in exchange.fetch_ledger("USDT")]
    assert kinds.count("TRANSFER") == 1 and kinds.count("COMMISSION") == 2

    # the crash: a mark posted through the operator's feed, one dollar below the liquidation
    # price, liquidates the isolated long (the clearance fee takes what margin is left)
    crash = (Decimal(own_liquidation_prices(server)["ETHUSDT"]) - 1).quantize(Decimal("0.01"))
    server.marks(ETHUSDT=crash)
    assert [p["symbol"] for p in exchange.fetch_positions()] == [BTC]
    forced = [o for o in exchange.fetch_orders(ETH) if o["clientOrderId"].startswith("autoclose-")]
    assert len(forced) == 1 and forced[0]["status"] == "closed" and forced[0]["side"] == "sell"
    assert forced[0]["average"] == float(crash) and forced[0]["filled"] == 1
    since = forced[0]["timestamp"]
    income = {
        i["info"]["incomeType"]: Decimal(i["info"]["income"])
        for i in exchange.fetch_ledger("USDT", since)
    }
    (fee,) = [e["amount"] for e in server.events("trader") if e["type"] == "LiquidationFeeCharged"]
    assert income["REALIZED_PNL"] == crash - 2000
    assert income["INSURANCE_CLEAR"] == -Decimal(fee) < 0
    trade = exchange.fetch_my_trades(ETH)[-1]
    assert trade["order"] == forced[0]["id"] and trade["price"] == float(crash)
    liquidations = exchange.fetch_my_liquidations(ETH)
    assert [str(item["info"]["orderId"]) for item in liquidations] == [forced[0]["id"]]
    assert liquidations[0]["price"] == float(crash) and liquidations[0]["contracts"] == 1
