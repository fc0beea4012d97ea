"""An account key never sees another account: events are copied through an allow-list per type
(fields the engine adds later stay hidden), checked over every documented event type and over a
real auto-deleveraging through HTTP and the account streams."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import websockets

from crossmargin.service.redaction import ALLOWED, COMMON, NESTED, redact_for
from tests.service.server import Running, serve

DOCS = Path(__file__).resolve().parents[2] / "docs" / "engine.md"
INTRUDER = "intruder-7"
ME = "me"


def documented_event_types() -> set[str]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Events", 1)[1].split("\n## ", 1)[0]
    found: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            found.update(re.findall(r"`([A-Z][A-Za-z]+)`", first_cell))
    return found


def test_every_documented_event_type_has_an_allow_list() -> None:
    documented = documented_event_types()
    assert len(documented) >= 20
    assert documented <= set(ALLOWED), sorted(documented - set(ALLOWED))


def hostile_event(kind: str) -> dict[str, Any]:
    """An event of ``kind`` naming ``me`` and, everywhere else it can, the intruder."""
    event: dict[str, Any] = {"type": kind, "account": ME}
    for field in ALLOWED[kind] | COMMON:
        if field in ("account", "postings", "payments") or field in NESTED:
            continue
        event[field] = {"account": INTRUDER}  # a structured value where a scalar belongs
    event.update(
        {
            "against": INTRUDER,
            "taken_over_by": INTRUDER,
            "counterparty": {"account": INTRUDER, "quantity": "1"},
            "position": {"account": INTRUDER, "symbol": "ETHUSDT", "slot": "BOTH", "after": None},
            "order": {"account": INTRUDER, "order_id": "o-1"},
            "accepted": {"account": INTRUDER, "order_id": "o-2"},
            "payments": [
                {"account": INTRUDER, "slot": "BOTH", "paid": "3"},
                {"account": ME, "slot": "BOTH", "paid": "1"},
            ],
            "postings": [
                [f"wallet:{INTRUDER}", "-3"],
                [f"isolated:{INTRUDER}:ETHUSDT:BOTH", "-2"],
                [f"takeover:{INTRUDER}", "5"],
                [f"wallet:{ME}", "-1"],
                ["insurance_fund", "1"],
            ],
        }
    )
    return event


@pytest.mark.parametrize("kind", [*sorted(ALLOWED), "SomethingNew"])
def test_no_field_of_any_event_names_another_account(kind: str) -> None:
    if kind not in ALLOWED:
        event = hostile_event("OrderFilled") | {"type": kind}
    else:
        event = hostile_event(kind)
    copy = redact_for(event, ME)
    assert INTRUDER not in json.dumps(copy), copy
    assert "against" not in copy and "taken_over_by" not in copy and "counterparty" not in copy


def test_a_takeover_by_the_fund_is_shown_and_by_anyone_else_hidden() -> None:
    fill = {"type": "PositionLiquidated", "account": ME, "taken_over_by": "insurance_fund"}
    assert redact_for(fill, ME)["taken_over_by"] == "insurance_fund"
    assert "taken_over_by" not in redact_for({**fill, "taken_over_by": INTRUDER}, ME)


def test_an_unknown_event_type_keeps_only_the_common_fields() -> None:
    event = {"type": "ScopeTakenOver", "account": ME, "scope": "cross", "by": INTRUDER, "x": "1"}
    assert redact_for(event, ME) == {"type": "ScopeTakenOver", "account": ME, "scope": "cross"}


def test_own_fields_are_kept() -> None:
    fill = {
        "type": "PositionAutoDeleveraged",
        "account": ME,
        "symbol": "ETHUSDT",
        "quantity": Decimal("2"),
        "price": Decimal("1900"),
        "liquidity": "adl",
        "position": {"account": ME, "symbol": "ETHUSDT", "slot": "BOTH", "after": None},
        "postings": [[f"wallet:{ME}", Decimal("5")], ["external:trading", Decimal("-5")]],
        "against": INTRUDER,
    }
    copy = redact_for(fill, ME)
    assert copy == {key: value for key, value in fill.items() if key != "against"}


def test_house_postings_of_a_shared_event_are_hidden() -> None:
    funding = {
        "type": "FundingSettled",
        "symbol": "ETHUSDT",
        "rate": Decimal("0.0001"),
        "payments": [
            {"account": ME, "slot": "BOTH", "paid": Decimal("1")},
            {"account": "other", "slot": "BOTH", "paid": Decimal("40")},
        ],
        "postings": [
            [f"wallet:{ME}", Decimal("-1")],
            ["external:funding", Decimal("1")],
            ["wallet:other", Decimal("-40")],
            ["external:funding", Decimal("40")],
        ],
    }
    copy = redact_for(funding, ME)
    assert copy["payments"] == [{"account": ME, "slot": "BOTH", "paid": Decimal("1")}]
    assert copy["postings"] == [[f"wallet:{ME}", Decimal("-1")]]  # 40 would tell other's size


# -- a real auto-deleveraging ------------------------------------------------------------------

ORDER = {"symbol": "ETHUSDT", "order_type": "market", "quantity": "10"}


@pytest.fixture(scope="module")
def deleveraged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Running, str, str]]:
    folder = tmp_path_factory.mktemp("adl")
    with serve(str(folder / "log.db")) as server:
        whale = server.open_account("secret-whale", "1100")
        minnow = server.open_account("minnow", "10000")
        server.post_marks(ETHUSDT="2000")
        with server.client(whale) as client:
            client.put(
                "/v1/accounts/secret-whale/leverage", json={"symbol": "ETHUSDT", "leverage": "20"}
            ).raise_for_status()
            client.post(
                "/v1/accounts/secret-whale/orders", json={**ORDER, "order_id": "w", "side": "buy"}
            ).raise_for_status()
        with server.client(minnow) as client:
            client.post(
                "/v1/accounts/minnow/orders", json={**ORDER, "order_id": "m", "side": "sell"}
            ).raise_for_status()
        yield server, whale, minnow


def _stream_until_adl(server: Running, account: str, key: str) -> list[Any]:
    async def run() -> list[Any]:
        received: list[Any] = []
        async with websockets.connect(f"{server.ws_url}/v1/ws/accounts/{account}") as socket:
            await socket.send(json.dumps({"key": key}))
            for _ in range(3):
                received.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
            await asyncio.to_thread(server.post_marks, ETHUSDT="1800")  # the whale is bankrupt
            async with asyncio.timeout(20):
                while not any(
                    m.get("type") == "event" and m["event"].get("liquidity") == "adl"
                    for m in received
                ):
                    received.append(json.loads(await socket.recv()))
                received.append(json.loads(await socket.recv()))  # the fresh view follows
        return received

    return asyncio.run(run())


def test_after_auto_deleveraging_neither_side_learns_the_other(
    deleveraged: tuple[Running, str, str],
) -> None:
    server, whale, minnow = deleveraged
    streamed = _stream_until_adl(server, "minnow", minnow)
    with server.client(minnow) as client:
        minnow_texts = [
            client.get("/v1/accounts/minnow/events").text,
            client.get("/v1/accounts/minnow").text,
            client.get("/v1/accounts/minnow/risk").text,
        ]
        kinds = [
            e["event"]["type"] for e in client.get("/v1/accounts/minnow/events").json()["events"]
        ]
    with server.client(whale) as client:
        whale_events = client.get("/v1/accounts/secret-whale/events").json()["events"]
    assert "PositionAutoDeleveraged" in kinds  # the scenario really deleveraged
    assert any(e["event"].get("liquidity") == "adl" for e in whale_events)
    for text in [json.dumps(streamed), *minnow_texts]:
        assert "secret-whale" not in text
    assert "minnow" not in json.dumps(whale_events)
