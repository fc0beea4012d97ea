"""The event codec: exact Decimals, canonical text, stable hashes, schema envelope."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crossmargin.core.errors import InvalidInput, StorageError
from crossmargin.ledger.codec import (
    SCHEMA_VERSION,
    canonical_json,
    decode,
    decode_record,
    encode_record,
    state_hash,
    text_hash,
)
from tests.strategies import PROPERTY_SETTINGS


class Side(Enum):
    LONG = "long"


@dataclass(frozen=True, slots=True, kw_only=True)
class Deposited:
    account: str
    amount: Decimal
    tags: tuple[str, ...]


finite_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | finite_decimals,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text().filter(lambda key: not key.startswith("$")), children, max_size=4
        )
    ),
    max_leaves=20,
)


@PROPERTY_SETTINGS
@given(json_values)
def test_decode_inverts_canonical_json_for_any_value(value: object) -> None:
    assert decode(canonical_json(value)) == value


@PROPERTY_SETTINGS
@given(finite_decimals)
def test_decimals_come_back_as_equal_decimals_never_floats(number: Decimal) -> None:
    decoded = decode(canonical_json({"n": number}))
    assert isinstance(decoded, dict)
    assert isinstance(decoded["n"], Decimal)
    assert decoded["n"] == number


def test_equal_decimals_with_different_exponents_encode_identically() -> None:
    assert canonical_json(Decimal("1.50")) == canonical_json(Decimal("1.5"))
    assert canonical_json(Decimal("-0.00")) == canonical_json(Decimal(0)) == '{"$decimal":"0"}'
    assert canonical_json(Decimal("1E+3")) == '{"$decimal":"1000"}'


def test_a_decimal_longer_than_the_context_precision_is_kept_exactly() -> None:
    long = Decimal("13.9485008932510254567594096580000")
    assert canonical_json(long) == '{"$decimal":"13.948500893251025456759409658"}'
    assert decode(canonical_json(long)) == long


def test_canonical_text_sorts_keys_and_has_no_whitespace() -> None:
    text = canonical_json({"b": 1, "a": [Decimal("2.50"), "x y"], "é": None})
    assert text == '{"a":[{"$decimal":"2.5"},"x y"],"b":1,"é":null}'


def test_the_state_hash_ignores_key_order_and_decimal_exponent() -> None:
    one = {"wallet": Decimal("10.10"), "positions": [{"side": Side.LONG, "qty": Decimal(2)}]}
    two = {"positions": [{"qty": Decimal("2.000"), "side": "long"}], "wallet": Decimal("10.1")}
    assert state_hash(one) == state_hash(two)
    assert state_hash(one) != state_hash({**two, "wallet": Decimal("10.11")})
    assert len(state_hash(one)) == 64


def test_a_string_that_looks_like_a_number_stays_a_string() -> None:
    assert decode(canonical_json({"label": "1.5"})) == {"label": "1.5"}


def test_enums_tuples_and_dataclasses_encode_as_plain_json() -> None:
    event = Deposited(account="alice", amount=Decimal("5.00"), tags=("a", "b"))
    assert decode(canonical_json({"side": Side.LONG, "event": event})) == {
        "side": "long",
        "event": {"account": "alice", "amount": Decimal(5), "tags": ["a", "b"]},
    }


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"price": 1.5}, "$.price"),
        ({"list": [Decimal(1), Decimal("Infinity")]}, "$.list[1]"),
        ({"q": Decimal("NaN")}, "$.q"),
        ({"$decimal": "1"}, "$.$decimal"),
        ({1: "int key"}, "$"),
        ({"when": object()}, "$.when"),
    ],
)
def test_values_that_cannot_be_stored_exactly_are_refused_with_their_path(
    value: object, field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        canonical_json(value)
    assert raised.value.field == field


def test_a_hand_written_json_number_with_a_fraction_decodes_as_a_decimal() -> None:
    assert decode('{"x": 0.1}') == {"x": Decimal("0.1")}


@pytest.mark.parametrize(
    "text",
    ['{"x": NaN}', '{"x": {"$decimal": "abc"}}', '{"x": {"$decimal": "1", "y": 2}}', "{oops"],
)
def test_malformed_stored_text_is_a_storage_error(text: str) -> None:
    with pytest.raises(StorageError):
        decode(text)


def test_records_carry_the_schema_version_and_refuse_others() -> None:
    text = encode_record({"amount": Decimal("1.25")})
    assert json.loads(text)["schema"] == SCHEMA_VERSION
    assert decode_record(text) == {"amount": Decimal("1.25")}
    newer = json.dumps({"body": {}, "schema": SCHEMA_VERSION + 1})
    with pytest.raises(StorageError, match="schema version"):
        decode_record(newer)
    with pytest.raises(StorageError, match="envelope"):
        decode_record('{"amount": 1}')


def test_text_hash_is_sha256_of_the_utf8_bytes() -> None:
    assert text_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert text_hash(canonical_json({"a": 1})) == state_hash({"a": 1})
