"""The station API reads a plain body without its serializer (ballots.api._plain): only when the
serializer would have returned exactly the same data."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from ballots.api import BallotInput, CheckInView, _plain

# Strings near every edge the CharField has: length, blanks, whitespace around, NUL, non-ASCII,
# surrogates; and values that are not strings at all.
edgy_text = st.one_of(
    st.text(max_size=70),
    st.text(alphabet=st.sampled_from("ab1-\x00 \t\n\u00e9\ud800\u05d0"), max_size=6),
    st.sampled_from(["", " ", "1001", " 1001", "1001 ", "1" * 32, "1" * 33, "a" * 64, "a" * 65]),
)
values = st.one_of(edgy_text, st.none(), st.integers(), st.booleans(), st.floats(allow_nan=False), st.lists(st.text()))


def agrees(serializer_class, body) -> None:
    plain = _plain(body, serializer_class)
    if plain is None:
        return  # the serializer decides, as before
    serializer = serializer_class(data=body)
    assert serializer.is_valid(), (body, serializer.errors)
    assert dict(serializer.validated_data) == plain


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["member_no", "other"]), values, max_size=2))
@example({"member_no": "1001"})
@example({"member_no": "1001", "other": 5})
def test_a_plain_check_in_body_is_what_the_serializer_returns(body):
    agrees(CheckInView.InputSerializer, body)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "choice", "other"]), values, max_size=3))
@example({"id": "6f1c1a3e-4b5d-4c8e-9a7b-2d3e4f5a6b7c", "choice": "peretz"})
def test_a_plain_ballot_body_is_what_the_serializer_returns(body):
    agrees(BallotInput, body)


def test_anything_else_goes_to_the_serializer():
    for body in ({"member_no": " 1001"}, {"member_no": "1" * 33}, {"member_no": ""}, {"member_no": 1001},
                 {"member_no": "10\x0001"}, {"member_no": "\u05d0"}, {}, [], "1001"):  # fmt: skip
        assert _plain(body, CheckInView.InputSerializer) is None, body
    assert _plain({"member_no": "1001", "other": 1}, CheckInView.InputSerializer) == {"member_no": "1001"}
