"""Certification of a round by the election committee (issue 5): who may approve, what, how many times;
the runoff it schedules and the members voting again in it; moving a round; `manage.py certify`."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, User

from ballots.errors import AlreadyVoted, ReturnInvalid, RoundStateError, UnknownChoice
from ballots.models import Certification, Elector, Round, Tally
from ballots.services import setup
from ballots.services.count import AlreadyApproved, NotCommittee, certify_round, reschedule_round
from ballots.services.station import check_in_voter, close_station, enter_return, record_ballot
from config.errors import NotFound
from tests.ballots.conftest import HAIFA_MEMBERS
from tests.ballots.test_tally import (
    ELECTION_FILE,
    SLUG,
    TLV_MEMBERS,
    ElectionOf,
    check_in,
    close,
    committee_member,
    entries,
    paper_return,
    refusal,
    run,
    runoff_night,
    tally,
    the_night_in_haifa,
    town_election,
    vote,
)

pytestmark = pytest.mark.django_db

JERUSALEM = ZoneInfo("Asia/Jerusalem")


@pytest.fixture
def dana(db) -> User:
    return committee_member("dana")


@pytest.fixture
def eli(db) -> User:
    return committee_member("eli")


@pytest.fixture
def town(small_roster):
    """21 electors; round 1 ended with herzog 7, yachimovich 6, peretz 5: a runoff, tallied."""
    election = town_election()
    runoff_night(election)
    tally(election)
    return election


def certify(election, username: str, number: int = 1):
    return certify_round(election=election.election, number=number, username=username)


def fresh(round_: Round) -> Round:
    return Round.objects.get(pk=round_.pk)


# --- who approves, and what ------------------------------------------------------------------------------


@pytest.mark.parametrize("group", [None, "station manager", "roster clerk", "auditor"])
def test_a_user_outside_the_committee_cannot_certify(haifa_election, group):
    the_night_in_haifa(haifa_election)
    tally(haifa_election)
    user = User.objects.create_user(username="moshe", is_staff=True)
    if group:
        user.groups.add(Group.objects.get(name=group))
    with pytest.raises(NotCommittee) as refused:
        certify(haifa_election, "moshe")
    assert refused.value.code == "permission_denied" and refused.value.http_status == 403
    assert not Certification.objects.exists() and not entries("round.approved")


def test_an_unknown_or_inactive_user_cannot_certify(haifa_election, dana):
    the_night_in_haifa(haifa_election)
    tally(haifa_election)
    with pytest.raises(NotCommittee):
        certify(haifa_election, "ghost")
    dana.is_active = False
    dana.save()
    with pytest.raises(NotCommittee):
        certify(haifa_election, "dana")
    assert not Certification.objects.exists()


def test_a_round_without_a_tally_is_not_certified(haifa_election, dana):
    the_night_in_haifa(haifa_election)  # closed and every station reported, but never tallied
    with pytest.raises(RoundStateError) as refused:
        certify(haifa_election, "dana")
    assert refused.value.code == "round_state"
    assert not Certification.objects.exists() and not entries("round.approved")


def test_a_provisional_tally_is_not_certified(haifa_election, dana):
    vote(haifa_election, "tlv-01", ["1001"], ["herzog"])
    tally(haifa_election)  # the round still open
    with pytest.raises(RoundStateError):
        certify(haifa_election, "dana")
    check_in(haifa_election, "hfa-01", [HAIFA_MEMBERS[0]])
    close(haifa_election)
    assert tally(haifa_election).complete is False  # closed, but the paper station has not reported
    with pytest.raises(RoundStateError) as refused:
        certify(haifa_election, "dana")
    assert refused.value.code == "round_state"
    with pytest.raises(NotFound):
        certify(haifa_election, "dana", number=2)
    assert not Certification.objects.exists() and fresh(haifa_election.round).certified_tally is None


def test_the_same_member_cannot_approve_twice(haifa_election, dana):
    the_night_in_haifa(haifa_election)
    result = tally(haifa_election)
    assert certify(haifa_election, "dana") == (result, 1, False)
    with pytest.raises(AlreadyApproved) as refused:
        certify(haifa_election, "dana")
    assert refused.value.code == "already_approved"
    assert Certification.objects.count() == 1 and len(entries("round.approved")) == 1
    assert fresh(haifa_election.round).certified_tally is None


def test_two_distinct_committee_members_certify_the_round(haifa_election, dana, eli):
    the_night_in_haifa(haifa_election)
    result = tally(haifa_election)
    assert certify(haifa_election, "eli") == (result, 1, False)
    assert fresh(haifa_election.round).certified_tally is None  # one approval is not enough
    assert certify(haifa_election, "dana") == (result, 2, True)
    round_ = fresh(haifa_election.round)
    assert round_.certified_tally == result and round_.certified_at is not None
    approved = entries("round.approved")
    assert [(e.actor, e.payload["approvals"]) for e in approved] == [("eli", 1), ("dana", 2)]
    assert approved[0].payload == {
        "election": SLUG, "round": 1, "tally": 1, "sha256": result.sha256, "approvals": 1, "required": 2
    }  # fmt: skip
    (certified,) = entries("round.certified")
    assert certified.payload == {
        "election": SLUG, "round": 1, "tally": 1, "sha256": result.sha256, "approved_by": ["dana", "eli"],
        "outcome": {"decision": "winner", "winner": "yachimovich", "advancing": []},
    }  # fmt: skip
    assert not entries("round.scheduled") and not round_.election.rounds.filter(number=2).exists()  # a winner
    committee_member("noa")
    with pytest.raises(RoundStateError):  # a third approval has nothing left to certify
        certify(haifa_election, "noa")
    assert Certification.objects.count() == 2


def test_a_new_tally_after_an_approval_needs_fresh_approvals(haifa_election, dana, eli):
    the_night_in_haifa(haifa_election)
    first = tally(haifa_election)
    assert certify(haifa_election, "dana") == (first, 1, False)
    # A correction after dana approved: a member who should never have been in the electorate (they did
    # not vote) comes off it, so the turnout changes and the count is a new tally.
    setup.change_electorate(
        election=haifa_election.election, member_no=HAIFA_MEMBERS[5], add=False,
        reason="Resigned before the cutoff; the roster was late", actor="dana",
    )  # fmt: skip
    second = tally(haifa_election)
    assert second.number == 2 and second.sha256 != first.sha256
    assert certify(haifa_election, "eli") == (second, 1, False)  # dana's approval was of tally 1
    assert fresh(haifa_election.round).certified_tally is None
    assert certify(haifa_election, "dana") == (second, 2, True)
    assert fresh(haifa_election.round).certified_tally == second
    assert entries("round.certified")[0].payload["approved_by"] == ["dana", "eli"]
    assert entries("round.certified")[0].payload["tally"] == 2
    assert list(first.certifications.values_list("username", flat=True)) == ["dana"]  # kept, not counted


def test_the_configured_number_of_approvals_certifies(small_roster):
    for username in ("dana", "eli", "noa"):
        committee_member(username)
    election = ElectionOf({**ELECTION_FILE, "certifications_required": 3})
    vote(election, "tlv-01", ["1001"], ["herzog"])
    close(election)
    paper_return(election, {"yachimovich": 0, "peretz": 0, "herzog": 0})
    tally(election)
    assert certify(election, "dana")[1:] == (1, False)
    assert certify(election, "eli")[1:] == (2, False)
    assert certify(election, "noa")[1:] == (3, True)
    assert entries("round.certified")[0].payload["approved_by"] == ["dana", "eli", "noa"]


# --- the runoff ---------------------------------------------------------------------------------------------


def test_certifying_a_runoff_outcome_schedules_round_two_with_those_advancing(town, dana, eli):
    certify(town, "dana")
    assert not town.election.rounds.filter(number=2).exists()  # not before certification
    certify(town, "eli")
    first = fresh(town.round)
    runoff = town.election.rounds.get(number=2)
    assert runoff.status == Round.Status.SCHEDULED
    assert runoff.opens_at == first.opens_at + timedelta(days=7) == datetime(2011, 9, 19, 7, tzinfo=JERUSALEM)
    assert runoff.closes_at == first.closes_at + timedelta(days=7)
    assert sorted(runoff.candidates.values_list("code", flat=True)) == ["herzog", "yachimovich"]
    (scheduled,) = entries("round.scheduled")
    assert scheduled.actor == "eli" and scheduled.payload == {
        "election": SLUG, "round": 2, "candidates": ["herzog", "yachimovich"],
        "opens_at": runoff.opens_at.isoformat(), "closes_at": runoff.closes_at.isoformat(),
    }  # fmt: skip
    assert entries("round.certified")[0].id < scheduled.id
    # The same electorate votes in the runoff.
    opened = setup.open_round(election=town.election, number=2, actor="committee")
    assert opened.status == Round.Status.OPEN
    assert entries("round.opened")[-1].payload["electorate"] == entries("round.opened")[0].payload["electorate"] == 21
    assert Elector.objects.filter(election=town.election, removed_at__isnull=True).count() == 21


def test_members_vote_again_in_the_runoff_for_those_advancing_only(town, dana, eli):
    certify(town, "dana")
    certify(town, "eli")
    setup.open_round(election=town.election, number=2, actor="committee")
    tlv, haifa = town.station("tlv-01"), town.station("hfa-01")
    _, round_ = check_in_voter(station=tlv, member_no="1001")  # voted in round 1 too
    assert round_.number == 2
    with pytest.raises(AlreadyVoted):
        check_in_voter(station=town.station("any-01"), member_no="1001")  # but once in round 2
    with pytest.raises(UnknownChoice) as unknown:
        record_ballot(station=tlv, ballot_id=str(uuid.uuid4()), choice="peretz")
    assert unknown.value.code == "unknown_choice"
    vote(town, "tlv-01", [], ["yachimovich"])
    vote(town, "tlv-01", ["1003", *TLV_MEMBERS[:3]], ["yachimovich", "yachimovich", "herzog", "blank"])
    check_in(town, "hfa-01", HAIFA_MEMBERS[:3])
    close(town, 2)
    close_station(station=haifa, actor="hfa-01")
    with pytest.raises(ReturnInvalid) as invalid:  # a paper count for peretz is refused as well
        enter_return(
            station=haifa, entry=1, actor="clerk-1", counts={"yachimovich": 1, "herzog": 1, "peretz": 1},
            blank=0, invalid=0, total=3,
        )  # fmt: skip
    assert "F102" in [e["code"] for e in invalid.value.extra["errors"]]
    paper_return(town, {"yachimovich": 1, "herzog": 2})
    document = tally(town, 2).document
    assert [(c["code"], c["votes"]) for c in document["candidates"]] == [("yachimovich", 4), ("herzog", 3)]
    assert document["outcome"] == {"decision": "winner", "winner": "yachimovich", "advancing": []}
    assert document["round"] == 2 and document["electorate"] == 21 and document["checked_in"] == 8
    certify(town, "dana", 2)
    assert certify(town, "eli", 2)[2] is True
    assert not town.election.rounds.filter(number=3).exists()


def test_a_round_is_moved_before_it_opens_and_not_after(town, dana, eli):
    certify(town, "dana")
    certify(town, "eli")
    runoff = town.election.rounds.get(number=2)
    opens, closes = datetime(2011, 9, 21, 7, tzinfo=JERUSALEM), datetime(2011, 9, 21, 22, tzinfo=JERUSALEM)
    moved = reschedule_round(round_=runoff, opens_at=opens, closes_at=closes, actor="dana")
    assert (fresh(moved).opens_at, fresh(moved).closes_at) == (opens, closes)
    assert entries("round.scheduled")[-1].payload == {
        "election": SLUG, "round": 2, "candidates": ["herzog", "yachimovich"],
        "opens_at": "2011-09-21T07:00:00+03:00", "closes_at": "2011-09-21T22:00:00+03:00",
    }  # fmt: skip
    with pytest.raises(RoundStateError):  # closing before it opens
        reschedule_round(round_=runoff, opens_at=closes, closes_at=opens, actor="dana")
    setup.open_round(election=town.election, number=2, actor="committee")
    with pytest.raises(RoundStateError) as refused:
        reschedule_round(
            round_=runoff, opens_at=opens + timedelta(days=1), closes_at=closes + timedelta(days=1), actor="dana"
        )
    assert refused.value.code == "round_state"
    assert fresh(runoff).opens_at == opens and len(entries("round.scheduled")) == 2


# --- manage.py certify ------------------------------------------------------------------------------------------


def test_the_certify_command_prints_the_approvals_then_the_certification(haifa_election, dana, eli):
    the_night_in_haifa(haifa_election)
    tally(haifa_election)
    assert run("certify", SLUG, "1", "--user", "dana") == "Approved by dana: 1 of 2 approvals of tally 1.\n"
    assert run("certify", SLUG, "1", "--user", "eli") == "Round 1 of labor-2011 is certified (2 of 2 approvals).\n"


def test_the_certify_command_announces_the_runoff(town, dana, eli):
    run("certify", SLUG, "1", "--user", "dana")
    lines = run("certify", SLUG, "1", "--user", "eli").splitlines()
    opens = town.election.rounds.get(number=2).opens_at
    assert lines == [
        "Round 1 of labor-2011 is certified (2 of 2 approvals).",
        f"Runoff between herzog, yachimovich: round 2, opens {opens.isoformat()}.",
    ]


def test_the_certify_command_refuses_bad_input_with_a_clear_message(haifa_election, dana):
    the_night_in_haifa(haifa_election)
    tally(haifa_election)
    User.objects.create_user(username="moshe", is_staff=True)
    assert refusal("certify", "no-such-election", "1", "--user", "dana") == "no election 'no-such-election'"
    assert refusal("certify", SLUG, "1", "--user", "moshe") == (
        "moshe is not a member of the election committee. (permission_denied)"
    )
    assert refusal("certify", SLUG, "4", "--user", "dana") == "labor-2011 has no round 4. (not_found)"
    assert "--user" in refusal("certify", SLUG, "1")
    run("certify", SLUG, "1", "--user", "dana")
    assert refusal("certify", SLUG, "1", "--user", "dana") == (
        "This member has already approved this tally. (already_approved)"
    )
    assert Certification.objects.count() == 1


def test_the_certify_command_refuses_a_round_not_opened(scheduled_election, dana):
    assert refusal("certify", SLUG, "1", "--user", "dana") == (
        "Only a complete tally of a closed round, every station reported, is certified. (round_state)"
    )
    assert not Tally.objects.exists() and not Certification.objects.exists()
