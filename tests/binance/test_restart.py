"""History endpoints are derived from the log: the same ids and records after a restart.

Orders placed through ``/v1`` show up too (the facade indexes the account's events, whichever
API sent the command), and funding appears as FUNDING_FEE income.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.binance.live import Server, serve


def history(server: Server, credentials: dict[str, str]) -> dict[str, Any]:
    def listing(path: str, **params: str) -> list[dict[str, Any]]:
        response = server.signed("GET", path, credentials, params)
        assert response.status_code == 200, response.text
        rows: list[dict[str, Any]] = response.json()
        # times are when the index saw each entry: not part of what a restart must keep
        return [{k: v for k, v in row.items() if k not in ("time", "updateTime")} for row in rows]

    return {
        "orders": listing("/fapi/v1/allOrders", symbol="ETHUSDT"),
        "trades": listing("/fapi/v1/userTrades", symbol="ETHUSDT"),
        "income": listing("/fapi/v1/income", limit="1000"),
    }


def test_ids_and_records_survive_a_restart(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        server.marks(ETHUSDT="2000", BTCUSDT="40000")
        credentials = server.open_account("alice", "5000")
        bought = server.signed(
            "POST",
            "/fapi/v1/order",
            credentials,
            {
                "symbol": "ETHUSDT",
                "side": "BUY",
                "type": "MARKET",
                "quantity": "1",
                "newClientOrderId": "first-buy",
            },
        )
        assert bought.json()["status"] == "FILLED"
        with server.operator() as operator:
            operator.post(
                "/v1/accounts/alice/orders",
                json={
                    "order_id": "via-v1",
                    "symbol": "ETHUSDT",
                    "side": "sell",
                    "order_type": "limit",
                    "quantity": "0.5",
                    "price": "2100",
                },
            ).raise_for_status()
            operator.post("/v1/funding", json={"symbol": "ETHUSDT", "rate": "0.0001"})
        server.marks(ETHUSDT="2100")  # the resting sell fills as maker
        before = history(server, credentials)

    with serve(tmp_path) as server:
        after = history(server, credentials)  # the same credentials still sign
    assert after == before
    orders = {o["clientOrderId"]: o for o in before["orders"]}
    assert orders["first-buy"]["orderId"] == bought.json()["orderId"]
    assert orders["via-v1"]["status"] == "FILLED" and orders["via-v1"]["price"] == "2100"
    kinds = [i["incomeType"] for i in before["income"]]
    assert kinds == ["TRANSFER", "COMMISSION", "FUNDING_FEE", "REALIZED_PNL", "COMMISSION"]
    funding = next(i for i in before["income"] if i["incomeType"] == "FUNDING_FEE")
    assert funding["income"] == "-0.2"  # a long pays 1 ETH x 2000 x 0.0001
    maker = before["trades"][-1]
    assert maker["maker"] is True and maker["realizedPnl"] == "50"
