"""Every error code of the station API, through HTTP, each in the envelope and each writing nothing.

`not_authenticated` and `permission_denied` are in test_permissions.py (the second is unreachable over
HTTP: every station view authenticates by token alone, so a caller without one gets a 401 first).
"""

from __future__ import annotations

import uuid

import pytest

from ballots.models import CheckIn
from ballots.services.setup import close_round
from tests.ballots.conftest import HAIFA_MEMBERS
from tests.ballots.station_api import (
    cast,
    cast_batch,
    check_in,
    close,
    counters,
    enter,
    figures,
    new_id,
    nothing_written,
    refused,
    url,
)

# -- not_found ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("station", ["tlv-01", None], ids=["with-token", "anonymous"])
@pytest.mark.parametrize("method,path", [("get", "no-such-thing/"), ("post", "voters/1001/check-in/")])
def test_it_answers_an_unknown_station_url_with_the_not_found_envelope(election, station, method, path):
    with nothing_written():
        response = getattr(election.client(station), method)(url(path))
    refused(response, 404, "not_found")


def test_it_answers_a_wrong_method_with_an_envelope_and_a_get_does_not_close(election):
    tlv = election.client("tlv-01")
    with nothing_written():
        refused(tlv.get(url("close/")), 405, "method_not_allowed")
        refused(tlv.get(url("checkins/")), 405, "method_not_allowed")
        refused(tlv.delete(url("ballots/")), 405, "method_not_allowed")
    assert counters("tlv-01") == (0, 0, False)


# -- invalid ------------------------------------------------------------------------------------------


def test_it_refuses_a_check_in_without_a_member_number(election):
    with nothing_written():
        body = refused(election.client("tlv-01").post(url("checkins/"), {}, format="json"), 400, "invalid")
    assert body["extra"] == {"fields": {"member_no": ["This field is required."]}}


def test_it_refuses_a_member_number_longer_than_any_on_the_roster(election):
    with nothing_written():
        body = refused(check_in(election.client("tlv-01"), "1" * 33), 400, "invalid")
    assert list(body["extra"]["fields"]) == ["member_no"]


def test_it_refuses_a_body_that_is_not_json(election):
    with nothing_written():
        response = election.client("tlv-01").post(url("checkins/"), "{member_no", content_type="application/json")
    refused(response, 400, "invalid")


@pytest.mark.parametrize(
    "ballot_id",
    [
        "not-a-uuid",
        str(uuid.uuid1()),
        str(uuid.uuid3(uuid.NAMESPACE_DNS, "kalpi")),
        "00000000-0000-0000-0000-000000000000",
    ],
    ids=["garbage", "uuid1", "uuid3", "nil"],
)
def test_it_refuses_a_ballot_whose_id_is_not_a_random_uuid(election, ballot_id):
    tlv = election.client("tlv-01")
    check_in(tlv, "1001")
    with nothing_written():
        body = refused(cast(tlv, "peretz", ballot_id), 400, "invalid")
    assert body["extra"] == {"fields": {"id": ["A UUIDv4 is required."]}}


def test_it_refuses_a_ballot_without_a_choice(election):
    tlv = election.client("tlv-01")
    check_in(tlv, "1001")
    with nothing_written():
        body = refused(tlv.post(url("ballots/"), {"id": new_id()}, format="json"), 400, "invalid")
    assert body["extra"] == {"fields": {"choice": ["This field is required."]}}


def test_it_refuses_a_whole_batch_when_one_item_has_no_choice(election):
    anywhere = election.client("any-01")
    check_in(anywhere, "1001")
    check_in(anywhere, "1002")
    batch = [{"id": new_id(), "choice": "peretz"}, {"id": new_id()}]
    with nothing_written():
        body = refused(cast_batch(anywhere, batch), 400, "invalid")
    assert body["extra"] == {"fields": {"ballots": [{}, {"choice": ["This field is required."]}]}}


def test_it_refuses_a_whole_batch_when_one_item_has_a_bad_id(election):
    anywhere = election.client("any-01")
    check_in(anywhere, "1001")
    check_in(anywhere, "1002")
    batch = [{"id": new_id(), "choice": "peretz"}, {"id": str(uuid.uuid1()), "choice": "herzog"}]
    with nothing_written():
        body = refused(cast_batch(anywhere, batch), 400, "invalid")
    assert body["extra"] == {"fields": {"ballots[1].id": ["A UUIDv4 is required."]}}


@pytest.mark.parametrize("body", [{"ballots": []}, {}, {"ballots": "many"}], ids=["empty", "missing", "not-a-list"])
def test_it_refuses_a_batch_that_holds_no_list_of_ballots(election, body):
    with nothing_written():
        response = refused(election.client("any-01").post(url("ballots/batch/"), body, format="json"), 400, "invalid")
    assert list(response["extra"]["fields"]) == ["ballots"]


def test_it_refuses_a_return_with_an_entry_other_than_1_or_2_and_counts_that_are_not_an_object(haifa_election):
    haifa = haifa_election.client("hfa-01")
    close(haifa)
    with nothing_written():
        body = refused(enter(haifa, 3, {**figures(), "counts": []}), 400, "invalid")
    assert set(body["extra"]["fields"]) == {"entry", "counts"}


def test_it_refuses_a_return_without_a_total(haifa_election):
    haifa = haifa_election.client("hfa-01")
    close(haifa)
    body = figures()
    del body["total"]
    with nothing_written():
        response = refused(enter(haifa, 1, body), 400, "invalid")
    assert response["extra"] == {"fields": {"total": ["This field is required."]}}


# -- round_not_open -----------------------------------------------------------------------------------

BEFORE_OPEN = {
    "checkin": ("tlv-01", "checkins/", {"member_no": "1001"}),
    "ballot": ("tlv-01", "ballots/", {"id": "6f1c1a3e-4b5d-4c8e-9a7b-2d3e4f5a6b7c", "choice": "peretz"}),
    "batch": (
        "any-01",
        "ballots/batch/",
        {"ballots": [{"id": "6f1c1a3e-4b5d-4c8e-9a7b-2d3e4f5a6b7c", "choice": "peretz"}]},
    ),
    "return": ("hfa-01", "returns/", {"entry": 1, **figures()}),
    "close": ("tlv-01", "close/", None),
}


@pytest.mark.parametrize("operation", BEFORE_OPEN)
def test_it_refuses_every_station_write_before_the_round_opens(scheduled_election, operation):
    station, path, body = BEFORE_OPEN[operation]
    with nothing_written():
        response = scheduled_election.client(station).post(url(path), body, format="json")
    refused(response, 409, "round_not_open")


def test_it_tells_a_device_the_round_is_still_scheduled(scheduled_election):
    body = scheduled_election.client("tlv-01").get(url()).json()
    assert body["round"] == {"number": 1, "status": "scheduled"}


def test_it_refuses_check_ins_and_ballots_after_the_round_is_closed(election):
    tlv = election.client("tlv-01")
    check_in(tlv, "1001")
    close_round(election=election.election, number=1, actor="committee")
    with nothing_written():
        refused(check_in(tlv, "1003"), 409, "round_not_open")
        refused(check_in(election.client("any-01"), "1002"), 409, "round_not_open")
        refused(cast(tlv, "peretz"), 409, "round_not_open")
        refused(cast_batch(tlv, [{"id": new_id(), "choice": "peretz"}]), 409, "round_not_open")
    assert election.client("tlv-01").get(url()).json()["round"] == {"number": 1, "status": "closed"}


# -- station_closed -----------------------------------------------------------------------------------


def test_it_refuses_a_check_in_at_a_closed_station_and_keeps_no_trace_of_it(election):
    tlv = election.client("tlv-01")
    close(tlv)
    with nothing_written():
        refused(check_in(tlv, "1003"), 409, "station_closed")
    assert not CheckIn.objects.exists()
    assert check_in(election.client("any-01"), "1003").status_code == 201  # the round is still open elsewhere


def test_it_refuses_ballots_at_a_closed_station_even_with_check_ins_to_spare(election):
    tlv = election.client("tlv-01")
    check_in(tlv, "1001")
    check_in(tlv, "1003")
    close(tlv)
    with nothing_written():
        refused(cast(tlv, "peretz"), 409, "station_closed")
        refused(cast_batch(tlv, [{"id": new_id(), "choice": "herzog"}]), 409, "station_closed")
    assert counters("tlv-01") == (2, 0, True)


# -- not_in_electorate --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "member_no", ["1004", "1005", "1006", "1007", "9999"], ids=["suspended", "late", "lapsed", "resigned", "unknown"]
)
def test_it_refuses_to_check_in_someone_outside_the_electorate(election, member_no):
    anywhere = election.client("any-01")  # serves every branch, so only the electorate decides
    with nothing_written():
        body = refused(check_in(anywhere, member_no), 403, "not_in_electorate")
    assert body["extra"] == {}
    assert anywhere.get(url(f"voters/{member_no}/")).json() == {
        "member_no": member_no, "in_electorate": False, "station": None, "voted": False
    }  # fmt: skip


# -- wrong_station ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "station,member_no,home",
    [("hfa-01", "1001", "tlv-01"), ("hfa-01", "1003", "tlv-01"), ("tlv-01", "1002", "any-01")],
    ids=["tel-aviv-at-haifa", "tel-aviv-at-haifa-2", "sderot-at-tel-aviv"],
)
def test_it_refuses_a_member_at_a_station_not_serving_their_branch_and_names_theirs(election, station, member_no, home):
    with nothing_written():
        body = refused(check_in(election.client(station), member_no), 403, "wrong_station")
    assert body["extra"] == {"station": home}
    assert election.client(station).get(url(f"voters/{member_no}/")).json()["station"] == home


def test_it_sends_a_haifa_member_from_tel_aviv_to_the_haifa_station(haifa_election):
    with nothing_written():
        body = refused(check_in(haifa_election.client("tlv-01"), HAIFA_MEMBERS[0]), 403, "wrong_station")
    assert body["extra"] == {"station": "hfa-01"}


# -- already_voted ------------------------------------------------------------------------------------


@pytest.mark.parametrize("second", ["any-01", "tlv-01"], ids=["at-another-station", "at-the-same-station"])
def test_it_refuses_a_second_check_in_in_the_round(election, second):
    assert check_in(election.client("tlv-01"), "1001").status_code == 201
    with nothing_written():
        body = refused(check_in(election.client(second), "1001"), 409, "already_voted")
    assert body["extra"] == {}
    assert CheckIn.objects.get().station.code == "tlv-01"


# -- no_voter_for_ballot ------------------------------------------------------------------------------


def test_it_refuses_a_ballot_with_no_check_in_behind_it(election):
    with nothing_written():
        refused(cast(election.client("tlv-01"), "peretz"), 409, "no_voter_for_ballot")


def test_it_refuses_a_second_ballot_for_one_check_in(election):
    tlv = election.client("tlv-01")
    check_in(tlv, "1001")
    assert cast(tlv, "peretz").status_code == 201
    with nothing_written():
        refused(cast(tlv, "herzog"), 409, "no_voter_for_ballot")
    assert counters("tlv-01") == (1, 1, False)


def test_it_refuses_a_whole_batch_of_three_with_two_check_ins(election):
    anywhere = election.client("any-01")
    check_in(anywhere, "1001")
    check_in(anywhere, "1002")
    batch = [{"id": new_id(), "choice": c} for c in ("peretz", "herzog", "blank")]
    with nothing_written():
        refused(cast_batch(anywhere, batch), 409, "no_voter_for_ballot")
    assert counters("any-01") == (2, 0, False)


# -- idempotency_conflict -----------------------------------------------------------------------------


def test_it_refuses_a_ballot_id_replayed_with_another_choice(election):
    tlv = election.client("tlv-01")
    check_in(tlv, "1001")
    check_in(tlv, "1003")
    ballot_id = new_id()
    assert cast(tlv, "peretz", ballot_id).status_code == 201
    with nothing_written():
        body = refused(cast(tlv, "herzog", ballot_id), 409, "idempotency_conflict")
    assert body["extra"] == {"id": ballot_id}


def test_it_refuses_a_ballot_id_replayed_at_another_station(election):
    check_in(election.client("tlv-01"), "1001")
    check_in(election.client("any-01"), "1002")  # any-01 has a voter, so only the id stands in the way
    ballot_id = new_id()
    assert cast(election.client("tlv-01"), "peretz", ballot_id).status_code == 201
    with nothing_written():
        body = refused(cast(election.client("any-01"), "peretz", ballot_id), 409, "idempotency_conflict")
        refused(cast_batch(election.client("any-01"), [{"id": ballot_id, "choice": "peretz"}]), 409, body["code"])
    assert body["extra"] == {"id": ballot_id}


def test_it_refuses_a_batch_that_repeats_an_id_with_two_choices(election):
    anywhere = election.client("any-01")
    for member_no in ("1001", "1002", "1003"):
        check_in(anywhere, member_no)
    twice = new_id()
    batch = [{"id": new_id(), "choice": "blank"}, {"id": twice, "choice": "peretz"}, {"id": twice, "choice": "herzog"}]
    with nothing_written():
        body = refused(cast_batch(anywhere, batch), 409, "idempotency_conflict")
    assert body["extra"] == {"id": twice}


def test_it_refuses_a_batch_that_holds_a_recorded_id_with_another_choice(election):
    anywhere = election.client("any-01")
    for member_no in ("1001", "1002", "1003"):
        check_in(anywhere, member_no)
    recorded = new_id()
    cast(anywhere, "peretz", recorded)
    with nothing_written():
        response = cast_batch(anywhere, [{"id": new_id(), "choice": "blank"}, {"id": recorded, "choice": "herzog"}])
        body = refused(response, 409, "idempotency_conflict")
    assert body["extra"] == {"id": recorded}


# -- unknown_choice -----------------------------------------------------------------------------------


@pytest.mark.parametrize("choice", ["netanyahu", "Peretz", "BLANK", "blank-ish"])
def test_it_refuses_a_ballot_for_someone_not_on_it(election, choice):
    tlv = election.client("tlv-01")
    check_in(tlv, "1001")
    with nothing_written():
        body = refused(cast(tlv, choice), 400, "unknown_choice")
    assert body["extra"] == {"choice": choice}


def test_it_refuses_a_whole_batch_with_one_unknown_choice_and_says_which(election):
    anywhere = election.client("any-01")
    check_in(anywhere, "1001")
    check_in(anywhere, "1002")
    batch = [{"id": new_id(), "choice": "peretz"}, {"id": new_id(), "choice": "netanyahu"}]
    with nothing_written():
        body = refused(cast_batch(anywhere, batch), 400, "unknown_choice")
    assert body["extra"] == {"index": 1, "choice": "netanyahu"}


# -- batch_too_large ----------------------------------------------------------------------------------


def test_it_refuses_a_batch_of_1001_ballots(election):
    anywhere = election.client("any-01")
    check_in(anywhere, "1001")
    batch = [{"id": new_id(), "choice": "peretz"} for _ in range(1001)]
    with nothing_written():
        body = refused(cast_batch(anywhere, batch), 400, "batch_too_large")
    assert body["extra"] == {"size": 1001}


def test_it_takes_a_batch_of_exactly_1000_past_the_size_limit(election):
    anywhere = election.client("any-01")
    check_in(anywhere, "1001")
    batch = [{"id": new_id(), "choice": "peretz"} for _ in range(1000)]
    with nothing_written():
        refused(cast_batch(anywhere, batch), 409, "no_voter_for_ballot")  # refused for the shortfall, not the size


# -- wrong_mode ---------------------------------------------------------------------------------------


def test_it_refuses_ballots_at_a_paper_station(haifa_election):
    haifa = haifa_election.client("hfa-01")
    assert check_in(haifa, HAIFA_MEMBERS[0]).status_code == 201
    with nothing_written():
        refused(cast(haifa, "peretz"), 409, "wrong_mode")
        refused(cast_batch(haifa, [{"id": new_id(), "choice": "peretz"}]), 409, "wrong_mode")
    assert counters("hfa-01") == (1, 0, False)


@pytest.mark.parametrize("closed", [False, True], ids=["open", "closed"])
def test_it_refuses_a_return_from_an_electronic_station(election, closed):
    tlv = election.client("tlv-01")
    if closed:
        close(tlv)
    with nothing_written():
        refused(enter(tlv, 1, figures()), 409, "wrong_mode")


# -- return_invalid -----------------------------------------------------------------------------------

# Three check-ins at hfa-01, so a total of 3 is right and 4 is too many.
BLOCKING = {
    "F201 parts do not add up": (figures(1, 1, 0, total=3), [("F201", "total")]),
    "F202 total above check-ins": (figures(2, 1, 1), [("F202", "total")]),
    "F201 and F202 together": (figures(2, 1, 1, total=5), [("F201", "total"), ("F202", "total")]),
    "F102 unknown candidate": (
        {**figures(1, 1, 0), "counts": {**figures(1, 1, 0)["counts"], "netanyahu": 0}},
        [("F102", "counts.netanyahu")],
    ),
    "F103 candidate missing": (
        {"counts": {"yachimovich": 1, "peretz": 1}, "blank": 0, "invalid": 0, "total": 2},
        [("F103", "counts.herzog")],
    ),
    "F101 negative": (figures(1, 1, 1, blank=-1, total=2), [("F101", "blank")]),
    "F101 not a whole number": (figures(1, 1.5, 0, total=3), [("F101", "counts.peretz")]),
    "F101 a string": (figures(1, 1, 1, total="3"), [("F101", "total")]),
    "F101 a boolean": (figures(True, 1, 1, total=3), [("F101", "counts.yachimovich")]),
}


@pytest.mark.parametrize("case", BLOCKING)
def test_it_refuses_a_return_with_blocking_errors_whole_and_lists_them(haifa_election, case):
    haifa = haifa_election.client("hfa-01")
    for member_no in HAIFA_MEMBERS[:3]:
        check_in(haifa, member_no)
    close(haifa)
    body_in, expected = BLOCKING[case]
    with nothing_written():
        body = refused(enter(haifa, 1, body_in), 400, "return_invalid")
    errors = body["extra"]["errors"]
    assert [(e["code"], e["field"]) for e in errors] == expected
    assert all(set(e) == {"code", "message", "field"} and e["message"] for e in errors)


# -- return_already_entered ---------------------------------------------------------------------------


def test_it_refuses_the_same_entry_of_a_return_twice(haifa_election):
    haifa = haifa_election.client("hfa-01")
    check_in(haifa, HAIFA_MEMBERS[0])
    close(haifa)
    assert enter(haifa, 1, figures(1)).status_code == 201
    with nothing_written():
        body = refused(enter(haifa, 1, figures(1)), 409, "return_already_entered")
        refused(enter(haifa, 1, figures(0, 1)), 409, "return_already_entered")
    assert body["extra"] == {"entry": 1}


def test_it_refuses_any_entry_once_the_return_is_accepted(haifa_election):
    haifa = haifa_election.client("hfa-01")
    check_in(haifa, HAIFA_MEMBERS[0])
    close(haifa)
    enter(haifa, 1, figures(1))
    assert enter(haifa, 2, figures(1)).json()["status"] == "accepted"
    with nothing_written():
        for entry in (1, 2):
            refused(enter(haifa, entry, figures(0, 1)), 409, "return_already_entered")


# -- station_open (added by the implementation) -------------------------------------------------------


def test_it_refuses_a_return_while_the_paper_station_is_open(haifa_election):
    haifa = haifa_election.client("hfa-01")
    check_in(haifa, HAIFA_MEMBERS[0])
    with nothing_written():
        body = refused(enter(haifa, 1, figures(1)), 409, "station_open")
    assert body["extra"] == {}
    assert counters("hfa-01") == (1, 0, False)
