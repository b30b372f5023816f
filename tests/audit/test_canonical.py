"""Canonical bytes: exactly json.dumps with sorted keys and no spaces, and a named refusal for anything else."""

from __future__ import annotations

import enum
import json
import math
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.canonical import canonical_bytes

ENTRY = {
    "id": 7,
    "action": "ballot.recorded",
    "actor": "tlv-01",
    "payload": {"station": "tlv-01"},
    "created_at": "2011-09-12T07:00:00.123456Z",
}


def test_it_sorts_keys_and_writes_no_spaces():
    assert canonical_bytes(ENTRY) == (
        b'{"action":"ballot.recorded","actor":"tlv-01","created_at":"2011-09-12T07:00:00.123456Z","id":7,'
        b'"payload":{"station":"tlv-01"}}'
    )


def test_it_writes_hebrew_as_utf8_not_escapes():
    assert canonical_bytes({"name": "שלי"}) == '{"name":"שלי"}'.encode()


def test_it_writes_booleans_null_and_big_integers():
    assert (
        canonical_bytes([True, False, None, 0, -1, 10**30]) == b"[true,false,null,0,-1,1000000000000000000000000000000]"
    )


def test_it_writes_str_and_int_enum_members_as_their_values():
    class Action(enum.StrEnum):
        BALLOT = "ballot.recorded"

    class Level(enum.IntEnum):
        TWO = 2

    assert canonical_bytes({"action": Action.BALLOT, "level": Level.TWO}) == b'{"action":"ballot.recorded","level":2}'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"payload": {"share": 32.2}}, "no floats: 32.2 at $.payload.share"),
        ({"payload": {"shares": [1, 2.0]}}, "no floats: 2.0 at $.payload.shares[1]"),
        ({"payload": [{"x": math.nan}]}, "no floats: nan at $.payload[0].x"),
        ({"odd key": {"a": math.inf}}, 'no floats: inf at $["odd key"].a'),
        (1.5, "no floats: 1.5 at $"),
        ({"payload": {1: "one"}}, "string object keys: 1 (int) at $.payload"),
        ({"payload": {None: "none"}}, "string object keys: None (NoneType) at $.payload"),
        ({"counts": (1, 2)}, "lists, not tuples: tuple at $.counts"),
        ({"when": datetime(2011, 9, 12)}, "null: datetime at $.when"),
        ({"percent": Decimal("32.20")}, "null: Decimal at $.percent"),
        ({"raw": b"\x00"}, "null: bytes at $.raw"),
        ({"set": {1}}, "null: set at $.set"),
    ],
)
def test_it_refuses_what_is_not_plain_json_and_says_where(value, message):
    with pytest.raises(TypeError) as caught:
        canonical_bytes(value)
    assert message in str(caught.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@given(json_values)
def test_it_is_json_dumps_and_survives_a_round_trip(value):
    data = canonical_bytes(value)
    assert data == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    # What a verifier reads back from an export hashes to the same bytes.
    assert canonical_bytes(json.loads(data)) == data


@given(json_values, st.floats())
def test_it_refuses_a_float_wherever_it_hides(value, number):
    with pytest.raises(TypeError, match="no floats"):
        canonical_bytes({"value": value, "payload": [value, {"deep": [number]}]})
