"""Command ids are scoped to the key that sends them: an account key cannot claim the id the
operator, the feed or another account uses next, nor receive another key's result; nor learn
whether another account uses an order id."""

from __future__ import annotations

from decimal import Decimal

from crossmargin.app.writer import FEED
from tests.service.conftest import World

ORDER = {"symbol": "ETHUSDT", "side": "buy", "order_type": "limit", "quantity": "0.01"}


def fund(world: World) -> Decimal:
    with world.server.client() as operator:
        return Decimal(operator.get("/v1/engine").json()["insurance_fund"])


def wallet(world: World, account: str) -> Decimal:
    with world.server.client() as operator:
        view = operator.get(f"/v1/accounts/{account}").json()
    return Decimal(view["summary"]["wallet_balance"])


def test_an_account_cannot_claim_the_id_the_operator_uses_next(world: World) -> None:
    with world.server.client(world.alice) as alice:
        taken = alice.post(
            "/v1/accounts/alice/deposits", json={"amount": "1", "command_id": "op-seed-7"}
        )
    assert taken.status_code == 200 and "duplicate" not in taken.json()
    before = fund(world)
    with world.server.client() as operator:
        seeded = operator.post(
            "/v1/insurance-fund", json={"amount": "50", "command_id": "op-seed-7"}
        )
    assert seeded.status_code == 200, seeded.text
    assert "duplicate" not in seeded.json()
    assert fund(world) == before + 50


def test_an_account_cannot_claim_the_id_the_feed_uses_next(world: World) -> None:
    feed_id = "replay.may-2021.20210519T120000000000"
    with world.server.client(world.bob) as bob:
        taken = bob.post("/v1/accounts/bob/deposits", json={"amount": "1", "command_id": feed_id})
    assert taken.status_code == 200
    host = world.server.context.host
    command = {"type": "update_marks", "command_id": feed_id, "prices": {"BNBUSDT": "321"}}
    [result] = world.server.on_server(host.submit_many([command], principal=FEED))
    assert result["status"] == "accepted" and "duplicate" not in result
    with world.server.client(world.bob) as bob:
        assert bob.get("/v1/marks").json()["marks"]["BNBUSDT"]["price"] == "321"


def test_another_accounts_command_id_is_neither_blocked_nor_answered(world: World) -> None:
    alice_before, bob_before = wallet(world, "alice"), wallet(world, "bob")
    with world.server.client(world.alice) as alice:
        first = alice.post(
            "/v1/accounts/alice/deposits", json={"amount": "3", "command_id": "shared-id"}
        )
    with world.server.client(world.bob) as bob:
        second = bob.post(
            "/v1/accounts/bob/deposits", json={"amount": "7", "command_id": "shared-id"}
        )
    assert first.status_code == second.status_code == 200
    assert "duplicate" not in second.json()
    assert wallet(world, "alice") == alice_before + 3
    assert wallet(world, "bob") == bob_before + 7


def test_the_operators_command_on_an_account_does_not_answer_the_accounts_own(
    world: World,
) -> None:
    before = wallet(world, "alice")
    with world.server.client() as operator:
        operator.post(
            "/v1/accounts/alice/deposits", json={"amount": "2", "command_id": "top-up-9"}
        ).raise_for_status()
    with world.server.client(world.alice) as alice:
        own = alice.post(
            "/v1/accounts/alice/deposits", json={"amount": "4", "command_id": "top-up-9"}
        )
        again = alice.post(
            "/v1/accounts/alice/deposits", json={"amount": "4", "command_id": "top-up-9"}
        )
    assert "duplicate" not in own.json() and again.json()["duplicate"] is True
    assert wallet(world, "alice") == before + 6


def test_an_order_id_in_use_by_another_account_is_not_revealed(world: World) -> None:
    with world.server.client(world.alice) as alice:
        resting = alice.post(
            "/v1/accounts/alice/orders", json={**ORDER, "order_id": "mine-1", "price": "1000"}
        )
        other = alice.post(
            "/v1/accounts/alice/orders", json={**ORDER, "order_id": "mine-2", "price": "1000"}
        )
    assert resting.status_code == other.status_code == 200, (resting.text, other.text)
    with world.server.client(world.bob) as bob:
        same = bob.post(
            "/v1/accounts/bob/orders", json={**ORDER, "order_id": "mine-1", "price": "1000"}
        )
        fresh = bob.post(
            "/v1/accounts/bob/orders", json={**ORDER, "order_id": "never-used", "price": "1000"}
        )
        cancel_hers = bob.delete("/v1/accounts/bob/orders/mine-2")
        cancel_nobodys = bob.delete("/v1/accounts/bob/orders/nobody-has-2")
    # bob's answer for an id alice holds is the answer for an id nobody holds
    assert same.status_code == fresh.status_code == 200, (same.text, fresh.text)
    assert same.json().keys() == fresh.json().keys()
    assert cancel_hers.status_code == cancel_nobodys.status_code == 404
    assert cancel_hers.json()["reason"] == cancel_nobodys.json()["reason"] == "UNKNOWN_ORDER"
    assert "alice" not in cancel_hers.text
    with world.server.client(world.alice) as alice:
        cancelled = alice.delete("/v1/accounts/alice/orders/mine-1")
    assert cancelled.status_code == 200
