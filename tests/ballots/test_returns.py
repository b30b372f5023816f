"""A paper station's return by double entry: agreeing entries seal, differing ones wait for the committee."""

from __future__ import annotations

import pytest

from audit.models import Entry
from ballots.errors import ReturnAlreadyEntered, ReturnInvalid
from ballots.models import ReturnResolution, Seal, StationReturn
from ballots.services.setup import close_round
from ballots.services.station import resolve_return
from config.errors import Invalid
from tests.ballots.conftest import HAIFA_MEMBERS
from tests.ballots.station_api import check_in, close, counters, enter, figures, nothing_written, refused


@pytest.fixture
def haifa(haifa_election):
    """hfa-01 after three check-ins, closed: its return is due."""
    client = haifa_election.client("hfa-01")
    for member_no in HAIFA_MEMBERS[:3]:
        assert check_in(client, member_no).status_code == 201
    assert close(client).json() == {"checkins": 3, "ballots": 0, "seal": None}
    return client


def _resolve(election, **overrides):
    arguments = {
        **figures(2, 1, 0), "reason": "The committee recounted the paper ballots.", "actor": "committee-chair",
        **overrides,
    }  # fmt: skip
    return resolve_return(round_=election.round, station=election.station("hfa-01"), **arguments)


def test_it_waits_for_the_second_entry_after_the_first(haifa):
    response = enter(haifa, 1, figures(2, 1, 0))
    assert response.status_code == 201 and response.json() == {"status": "awaiting_second_entry", "warnings": []}
    assert not Seal.objects.exists()
    entered = Entry.objects.get(action="return.entered")
    assert entered.actor == "hfa-01"
    assert entered.payload == {
        "election": "labor-2011", "round": 1, "station": "hfa-01", "entry": 1, **figures(2, 1, 0), "warnings": [],
        "status": "awaiting_second_entry",
    }  # fmt: skip


def test_it_accepts_two_agreeing_entries_and_seals_the_station_from_the_return(haifa):
    enter(haifa, 1, figures(2, 1, 0))
    response = enter(haifa, 2, {**figures(2, 1, 0), "counts": {"herzog": 0, "peretz": 1, "yachimovich": 2}})
    assert response.status_code == 201 and response.json() == {"status": "accepted", "warnings": []}
    seal = Seal.objects.get(station__code="hfa-01")
    assert seal.source == "return" and seal.ballots_root == ""
    assert (seal.checkins, seal.ballots) == (3, 3)
    assert seal.counts == {"yachimovich": 2, "peretz": 1, "herzog": 0, "blank": 0, "invalid": 0}
    sealed = Entry.objects.get(action="station.sealed")
    assert sealed.payload == {
        "election": "labor-2011", "round": 1, "station": "hfa-01", "checkins": 3, "ballots": 3,
        "counts": seal.counts, "ballots_root": None, "source": "return",
    }  # fmt: skip
    assert close(haifa).json()["seal"] == {"counts": seal.counts, "ballots_root": None, "source": "return"}


def test_it_accepts_the_entries_in_either_order(haifa):
    assert enter(haifa, 2, figures(1, 1, 1)).json()["status"] == "awaiting_second_entry"
    assert enter(haifa, 1, figures(1, 1, 1)).json()["status"] == "accepted"


def test_it_keeps_two_differing_entries_flags_them_and_seals_nothing(haifa):
    enter(haifa, 1, figures(2, 1, 0))
    response = enter(haifa, 2, figures(1, 2, 0))
    assert response.status_code == 201 and response.json() == {"status": "entries_differ", "warnings": []}
    assert not Seal.objects.exists()
    kept = {r.entry: r.figures() for r in StationReturn.objects.all()}
    assert kept == {1: figures(2, 1, 0), 2: figures(1, 2, 0)}
    statuses = list(Entry.objects.filter(action="return.entered").values_list("payload__status", flat=True))
    assert statuses == ["awaiting_second_entry", "entries_differ"]
    assert close(haifa).json()["seal"] is None
    with nothing_written():  # neither entry can be typed again to paper over the difference
        refused(enter(haifa, 2, figures(2, 1, 0)), 409, "return_already_entered")


def test_it_lets_the_committee_resolve_differing_entries_with_a_reason(haifa, haifa_election):
    enter(haifa, 1, figures(2, 1, 0))
    enter(haifa, 2, figures(1, 2, 0))
    resolution = _resolve(haifa_election, **figures(1, 1, 0, blank=1))
    assert (resolution.reason, resolution.resolved_by) == (
        "The committee recounted the paper ballots.",
        "committee-chair",
    )
    seal = Seal.objects.get(station__code="hfa-01")
    assert seal.source == "resolution" and (seal.checkins, seal.ballots) == (3, 3)
    assert seal.counts == {"yachimovich": 1, "peretz": 1, "herzog": 0, "blank": 1, "invalid": 0}
    resolved = Entry.objects.get(action="return.resolved")
    assert resolved.actor == "committee-chair"
    assert resolved.payload == {
        "election": "labor-2011", "round": 1, "station": "hfa-01", **figures(1, 1, 0, blank=1),
        "reason": resolution.reason,
    }  # fmt: skip
    sealed = Entry.objects.get(action="station.sealed")
    assert sealed.payload["source"] == "resolution" and sealed.id > resolved.id
    assert StationReturn.objects.count() == 2  # both entries kept beside the resolution
    assert close(haifa).json()["seal"]["source"] == "resolution"


@pytest.mark.parametrize("reason", ["", "   \n"], ids=["empty", "blank"])
def test_it_refuses_a_resolution_without_a_reason(haifa, haifa_election, reason):
    enter(haifa, 1, figures(2, 1, 0))
    enter(haifa, 2, figures(1, 2, 0))
    with nothing_written(), pytest.raises(Invalid) as refusal:
        _resolve(haifa_election, reason=reason)
    assert refusal.value.code == "invalid" and list(refusal.value.extra["fields"]) == ["reason"]


@pytest.mark.parametrize(
    "bad,expected",
    [
        (figures(2, 1, 0, total=2), [("F201", "total")]),
        (figures(2, 1, 1), [("F202", "total")]),
        (figures(2, 1, 0, invalid=-1, total=2), [("F101", "invalid")]),
        (
            {**figures(2, 1, 0), "counts": {**figures(2, 1, 0)["counts"], "netanyahu": 0}},
            [("F102", "counts.netanyahu")],
        ),
    ],
    ids=["F201", "F202", "F101", "F102"],
)
def test_it_refuses_a_resolution_with_blocking_errors(haifa, haifa_election, bad, expected):
    enter(haifa, 1, figures(2, 1, 0))
    enter(haifa, 2, figures(1, 2, 0))
    with nothing_written(), pytest.raises(ReturnInvalid) as refusal:
        _resolve(haifa_election, **bad)
    assert [(e["code"], e["field"]) for e in refusal.value.extra["errors"]] == expected


def test_it_refuses_to_resolve_a_station_whose_entries_agree_or_are_not_both_in(haifa, haifa_election):
    enter(haifa, 1, figures(2, 1, 0))
    with nothing_written(), pytest.raises(Invalid):
        _resolve(haifa_election)
    enter(haifa, 2, figures(2, 1, 0))
    with nothing_written(), pytest.raises(Invalid):
        _resolve(haifa_election)
    assert Seal.objects.get().source == "return"


def test_it_refuses_to_resolve_a_station_twice(haifa, haifa_election):
    enter(haifa, 1, figures(2, 1, 0))
    enter(haifa, 2, figures(1, 2, 0))
    _resolve(haifa_election)
    with nothing_written(), pytest.raises(ReturnAlreadyEntered):
        _resolve(haifa_election, **figures(1, 2, 0))
    assert ReturnResolution.objects.count() == 1 and Seal.objects.get().counts["yachimovich"] == 2


def test_it_warns_when_the_total_is_below_the_check_ins_and_one_candidate_has_above_90_percent(haifa):
    response = enter(haifa, 1, figures(2, 0, 0))  # 2 ballots for 3 check-ins, all for one candidate
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "awaiting_second_entry"
    assert [(w["code"], w["field"]) for w in body["warnings"]] == [("W201", "total"), ("W203", "counts.yachimovich")]
    assert all(set(w) == {"code", "message", "field"} and w["message"] for w in body["warnings"])
    assert StationReturn.objects.get().warnings == body["warnings"]
    assert Entry.objects.get(action="return.entered").payload["warnings"] == ["W201", "W203"]
    second = enter(haifa, 2, figures(2, 0, 0)).json()
    assert second["status"] == "accepted" and second["warnings"] == body["warnings"]  # warnings do not block


def test_it_warns_of_one_candidate_only_above_90_percent(haifa_election):
    client = haifa_election.client("hfa-01")
    for member_no in HAIFA_MEMBERS[:5]:  # 5 of 6 electors: turnout below 95%
        check_in(client, member_no)
    close(client)
    assert enter(client, 1, figures(4, 1, 0)).json()["warnings"] == []
    assert [w["code"] for w in enter(client, 2, figures(5, 0, 0)).json()["warnings"]] == ["W203"]


def test_it_warns_when_turnout_is_above_95_percent_of_the_stations_electorate(haifa_election):
    client = haifa_election.client("hfa-01")
    for member_no in HAIFA_MEMBERS:  # every elector of hfa-01
        check_in(client, member_no)
    close(client)
    body = enter(client, 1, figures(2, 2, 2)).json()
    assert [(w["code"], w["field"]) for w in body["warnings"]] == [("W202", "total")]


def test_it_takes_a_return_after_the_round_is_closed(haifa, haifa_election):
    close_round(election=haifa_election.election, number=1, actor="committee")
    assert enter(haifa, 1, figures(1, 1, 1)).json()["status"] == "awaiting_second_entry"
    assert enter(haifa, 2, figures(1, 1, 1)).json()["status"] == "accepted"
    assert Seal.objects.get(station__code="hfa-01").source == "return"


def test_it_seals_a_paper_station_only_from_its_return_never_at_its_close(haifa):
    assert counters("hfa-01") == (3, 0, True)
    assert Entry.objects.filter(action="station.closed", payload__station="hfa-01").count() == 1
    assert not Entry.objects.filter(action="station.sealed").exists()
