"""The tally of a round (issue 5): what it counts, the results document it writes, that the same records
give the same bytes, the decisions of the rule, and `manage.py tally`.

Records are made through the station services (check-ins, ballots, returns, closes) and
`setup.close_round`, as on election day; the tally is `count.tally_round`.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import re
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command

from audit import keys, merkle, note
from audit import services as audit
from audit.canonical import canonical_bytes
from audit.models import Checkpoint, Entry, Leaf
from ballots.errors import RoundStateError
from ballots.models import Round, Seal, Tally
from ballots.services import setup
from ballots.services.count import build_document, certify_round, tally_round
from ballots.services.station import (
    ballots_root,
    check_in_voter,
    close_station,
    enter_return,
    record_ballots,
    resolve_return,
)
from config.errors import NotFound
from members.services import import_roster
from tests.ballots.conftest import HAIFA_MEMBERS, HAIFA_ROSTER
from tests.conftest import ELECTION_FILE, ROSTER_HEADER, Election, csv_stream

pytestmark = pytest.mark.django_db

SLUG = ELECTION_FILE["slug"]
NAMES = {c["code"]: c["name"] for c in ELECTION_FILE["candidates"]}
# Twelve more Tel Aviv members, so that a round can end without anyone at 40% and without a tie.
TLV_MEMBERS = [f"77000{n:02d}" for n in range(1, 13)]
TLV_ROSTER = ROSTER_HEADER + "".join(
    f"{member_no},Voter,Telaviv{n},tel-aviv,2000-02-{n:02d},active,,,\n" for n, member_no in enumerate(TLV_MEMBERS, 1)
)
PERCENT = re.compile(r"\A[0-9]{1,3}\.[0-9]{2}\Z")
HEX_SEED = re.compile(r"\A[0-9a-f]{64}\Z")
DOCUMENT_FIELDS = {
    "election", "round", "rule", "electorate", "checked_in", "cast", "valid", "blank", "invalid",
    "turnout_percent", "stations", "candidates", "outcome", "by_station", "audit",
}  # fmt: skip


# --- the cast and the day's records, shared with test_certification.py -------------------------------


class ElectionOf(Election):
    """An election from the given file over the roster already imported, frozen, round 1 open."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.election, _ = setup.load_election(data=data, actor="committee")
        setup.freeze_electorate(election=self.election, actor="committee")
        self.round = setup.open_round(election=self.election, number=1, actor="committee")
        self.tokens = {}


def town_election(data: dict[str, Any] = ELECTION_FILE) -> Election:
    """SMALL_ROSTER (3 electors), six Haifa and twelve Tel Aviv voters: 21 electors. Needs small_roster."""
    for roster in (HAIFA_ROSTER, TLV_ROSTER):
        report = import_roster(actor="rina", stream=csv_stream(roster))
        assert report.ok, report.errors
    election = ElectionOf(data)
    assert election.election.electors.count() == 21
    return election


def committee_member(username: str) -> User:
    user = User.objects.create_user(username=username, is_staff=True)  # no password: never logs in here
    user.groups.add(Group.objects.get(name="election committee"))
    return user


def vote(election: Election, code: str, members: list[str], choices: list[str]) -> list[tuple[str, str]]:
    """Members check in at an electronic station and cast these ballots; returns the ballots (id, choice)."""
    station = election.station(code)
    for member_no in members:
        check_in_voter(station=station, member_no=member_no)
    ballots = [(str(uuid.uuid4()), choice) for choice in choices]
    if ballots:
        record_ballots(station=station, ballots=[{"id": i, "choice": c} for i, c in ballots])
    return ballots


def check_in(election: Election, code: str, members: list[str]) -> None:
    station = election.station(code)
    for member_no in members:
        check_in_voter(station=station, member_no=member_no)


def paper_return(election: Election, counts: dict[str, int], blank: int = 0, invalid: int = 0, code: str = "hfa-01"):
    """The paper station closes (if open) and its return is typed twice, alike: accepted and sealed."""
    station = election.station(code)
    close_station(station=station, actor=code)
    figures = {"counts": counts, "blank": blank, "invalid": invalid, "total": sum(counts.values()) + blank + invalid}
    assert enter_return(station=station, entry=1, actor="clerk-1", **figures)[0] == "awaiting_second_entry"
    assert enter_return(station=station, entry=2, actor="clerk-2", **figures)[0] == "accepted"


def close(election: Election, number: int = 1) -> Round:
    return setup.close_round(election=election.election, number=number, actor="committee")


def tally(election: Election, number: int = 1) -> Tally:
    return tally_round(election=election.election, number=number, actor="dana")


def entries(action: str) -> list[Entry]:
    return list(Entry.objects.filter(action=action).order_by("id"))


def the_night_in_haifa(election: Election) -> dict[str, list[tuple[str, str]]]:
    """haifa_election, round 1: two electronic stations and the paper station report; 8 of 9 vote.

    yachimovich 3, herzog 2, peretz 1, blank 1, invalid 1 (valid 6, cast 8): a winner at 50%.
    """
    ballots = {
        "tlv-01": vote(election, "tlv-01", ["1001", "1003"], ["yachimovich", "peretz"]),
        "any-01": vote(election, "any-01", ["1002", HAIFA_MEMBERS[0]], ["yachimovich", "blank"]),
    }
    check_in(election, "hfa-01", HAIFA_MEMBERS[1:5])
    close(election)
    paper_return(election, {"yachimovich": 1, "peretz": 0, "herzog": 2}, invalid=1)
    return ballots


def runoff_night(election: Election) -> None:
    """town_election, round 1: herzog 7, yachimovich 6, peretz 5, blank 1 (valid 18): nobody at 40%."""
    vote(
        election, "tlv-01", ["1001", "1003", *TLV_MEMBERS[:10]],
        ["herzog"] * 5 + ["yachimovich"] * 4 + ["peretz"] * 3,
    )  # fmt: skip
    vote(election, "any-01", ["1002", *TLV_MEMBERS[10:]], ["herzog", "yachimovich", "blank"])
    check_in(election, "hfa-01", HAIFA_MEMBERS[:4])
    close(election)
    paper_return(election, {"yachimovich": 1, "peretz": 2, "herzog": 1})


def scalars(value: Any, path: str = "$"):
    """Every leaf value of a JSON document with its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from scalars(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from scalars(item, f"{path}[{i}]")
    else:
        yield path, value


def assert_audit_point_is_a_signed_checkpoint_covering_the_last_seal(document: dict, round_: Round) -> Checkpoint:
    point = document["audit"]
    assert set(point) == {"tree_size", "root"} and type(point["tree_size"]) is int
    matching = [
        c for c in Checkpoint.objects.filter(tree_size=point["tree_size"]) if bytes(c.root).hex() == point["root"]
    ]
    assert matching, "the document's audit point is not a stored checkpoint"
    checkpoint = matching[0]
    signed = note.parse_checkpoint(note.open_note(checkpoint.note, [keys.verifier()]))
    assert signed == (settings.KALPI_LOG_ORIGIN, point["tree_size"], bytes.fromhex(point["root"]))
    # The root is the RFC 9162 root of the first tree_size leaves as stored.
    leaves = [
        bytes(h)
        for h in Leaf.objects.filter(index__lt=point["tree_size"]).order_by("index").values_list("hash", flat=True)
    ]
    assert len(leaves) == point["tree_size"] and merkle.root(leaves).hex() == point["root"]
    last_seal = Seal.objects.filter(round=round_).order_by("-entry_id").first()
    if last_seal is not None:
        assert Entry.objects.get(pk=last_seal.entry_id).action == "station.sealed"
        index = Leaf.objects.get(entry_id=last_seal.entry_id).index
        assert index < point["tree_size"]
        # The first checkpoint covering it: none smaller does.
        assert not Checkpoint.objects.filter(tree_size__gt=index, tree_size__lt=point["tree_size"]).exists()
    return checkpoint


# --- what the tally counts ----------------------------------------------------------------------------


def test_it_counts_the_sealed_ballots_of_electronic_stations_and_the_accepted_return_of_a_paper_station(
    haifa_election,
):
    ballots = the_night_in_haifa(haifa_election)
    result = tally(haifa_election)
    document = result.document
    assert (document["cast"], document["valid"], document["blank"], document["invalid"]) == (8, 6, 1, 1)
    assert {c["code"]: c["votes"] for c in document["candidates"]} == {"yachimovich": 3, "herzog": 2, "peretz": 1}
    assert document["stations"] == {"reported": 3, "total": 3}
    rows = {row["station"]: row for row in document["by_station"]}
    assert rows["tlv-01"]["source"] == rows["any-01"]["source"] == "ballots"
    assert rows["hfa-01"]["source"] == "return" and rows["hfa-01"]["ballots_root"] is None
    for code in ("tlv-01", "any-01"):
        assert (
            rows[code]["ballots_root"]
            == ballots_root(ballots[code])
            == Seal.objects.get(station__code=code).ballots_root
        )
    assert rows["hfa-01"]["votes"] == {"yachimovich": 1, "peretz": 0, "herzog": 2} and rows["hfa-01"]["invalid"] == 1
    assert result.complete is True and result.decision == "winner" and result.number == 1


def test_a_committee_resolution_is_what_counts_for_a_paper_station_whose_entries_differ(haifa_election):
    check_in(haifa_election, "hfa-01", HAIFA_MEMBERS[:3])
    close(haifa_election)
    haifa = haifa_election.station("hfa-01")
    first = {"counts": {"yachimovich": 2, "peretz": 1, "herzog": 0}, "blank": 0, "invalid": 0, "total": 3}
    second = {**first, "counts": {"yachimovich": 1, "peretz": 2, "herzog": 0}}
    enter_return(station=haifa, entry=1, actor="clerk-1", **first)
    assert enter_return(station=haifa, entry=2, actor="clerk-2", **second)[0] == "entries_differ"
    assert tally(haifa_election).document["stations"] == {"reported": 2, "total": 3}  # differing entries: not yet
    resolve_return(
        round_=haifa_election.round, station=haifa, counts={"yachimovich": 0, "peretz": 2, "herzog": 1},
        blank=0, invalid=0, total=3, reason="Recounted the box before observers", actor="dana",
    )  # fmt: skip
    document = tally(haifa_election).document
    row = next(row for row in document["by_station"] if row["station"] == "hfa-01")
    assert row["source"] == "resolution" and row["votes"] == {"yachimovich": 0, "peretz": 2, "herzog": 1}
    assert [(c["code"], c["votes"]) for c in document["candidates"]] == [
        ("peretz", 2),
        ("herzog", 1),
        ("yachimovich", 0),
    ]
    assert document["outcome"] == {"decision": "winner", "winner": "peretz", "advancing": []}


def test_a_station_not_yet_reported_counts_as_not_reported_never_as_zeros(haifa_election):
    vote(haifa_election, "tlv-01", ["1001", "1003"], ["peretz", "peretz"])
    check_in(haifa_election, "hfa-01", HAIFA_MEMBERS[:3])
    close(haifa_election)  # the paper station is closed, its return not yet entered
    provisional = tally(haifa_election)
    document = provisional.document
    assert document["stations"] == {"reported": 2, "total": 3}
    assert document["outcome"] == {"decision": "pending", "winner": None, "advancing": []}
    assert provisional.complete is False and provisional.decision == "pending"
    hfa = next(row for row in document["by_station"] if row["station"] == "hfa-01")
    assert hfa == {"station": "hfa-01", "name": "Haifa 1", "mode": "paper", "checked_in": 3, "reported": False}
    # Its three voters are checked in, but no ballot of theirs is in the totals, as zeros or otherwise.
    assert (document["checked_in"], document["cast"], document["valid"]) == (5, 2, 2)
    assert [(c["code"], c["votes"], c["percent"]) for c in document["candidates"]] == [
        ("peretz", 2, "100.00"), ("yachimovich", 0, "0.00"), ("herzog", 0, "0.00"),
    ]  # fmt: skip
    entry = entries("round.tallied")[-1]
    assert entry.payload["complete"] is False and entry.payload["decision"] == "pending"
    assert entry.payload["stations"] == {"reported": 2, "total": 3}

    paper_return(haifa_election, {"yachimovich": 3, "peretz": 0, "herzog": 0})
    final = tally(haifa_election)
    assert final.number == 2 and final.complete is True and final.document["stations"] == {"reported": 3, "total": 3}
    assert final.document["outcome"]["decision"] == "winner" and final.document["outcome"]["winner"] == "yachimovich"


def test_an_open_round_is_tallied_provisionally(haifa_election):
    assert tally(haifa_election).document["stations"] == {"reported": 0, "total": 3}  # nothing sealed yet
    vote(haifa_election, "tlv-01", ["1001"], ["yachimovich"])
    close_station(station=haifa_election.station("tlv-01"), actor="tlv-01")  # sealed, mid-day
    vote(haifa_election, "any-01", ["1002"], ["herzog"])  # still open: not counted
    result = tally(haifa_election)
    document = result.document
    assert haifa_election.round.status == Round.Status.OPEN
    assert document["stations"] == {"reported": 1, "total": 3} and document["checked_in"] == 2
    assert document["cast"] == 1 and document["candidates"][0] == {
        "code": "yachimovich", "name": "Shelly Yachimovich", "votes": 1, "percent": "100.00"
    }  # fmt: skip
    assert document["outcome"]["decision"] == "pending" and result.complete is False
    # Every station sealed is not enough while the round is open: it stays provisional.
    close_station(station=haifa_election.station("any-01"), actor="any-01")
    check_in(haifa_election, "hfa-01", [HAIFA_MEMBERS[0]])
    paper_return(haifa_election, {"yachimovich": 1, "peretz": 0, "herzog": 0})
    everything = tally(haifa_election)
    assert everything.document["stations"] == {"reported": 3, "total": 3}
    assert everything.complete is False and everything.decision == "pending"


def test_a_round_that_has_not_opened_or_does_not_exist_is_not_tallied(scheduled_election):
    with pytest.raises(RoundStateError) as refused:
        tally(scheduled_election)
    assert refused.value.code == "round_state"
    with pytest.raises(NotFound) as missing:
        tally(scheduled_election, number=2)
    assert missing.value.code == "not_found"
    assert not Tally.objects.exists() and not entries("round.tallied")


# --- the results document -----------------------------------------------------------------------------


def test_the_document_has_every_field_of_the_design(haifa_election):
    ballots = the_night_in_haifa(haifa_election)
    result = tally(haifa_election)
    document = result.document
    assert set(document) == DOCUMENT_FIELDS
    assert document == {
        "election": "labor-2011",
        "round": 1,
        "rule": ELECTION_FILE["rule"],
        "electorate": 9,
        "checked_in": 8,
        "cast": 8,
        "valid": 6,
        "blank": 1,
        "invalid": 1,
        "turnout_percent": "88.89",
        "stations": {"reported": 3, "total": 3},
        "candidates": [  # most votes first; percent of the valid votes, the rule's base
            {"code": "yachimovich", "name": "Shelly Yachimovich", "votes": 3, "percent": "50.00"},
            {"code": "herzog", "name": "Isaac Herzog", "votes": 2, "percent": "33.33"},
            {"code": "peretz", "name": "Amir Peretz", "votes": 1, "percent": "16.67"},
        ],
        "outcome": {"decision": "winner", "winner": "yachimovich", "advancing": []},
        "by_station": [  # in the file's order of stations
            {
                "station": "tlv-01", "name": "Tel Aviv 1", "mode": "electronic", "checked_in": 2, "reported": True,
                "votes": {"yachimovich": 1, "peretz": 1, "herzog": 0}, "blank": 0, "invalid": 0, "cast": 2,
                "source": "ballots", "ballots_root": ballots_root(ballots["tlv-01"]),
            },
            {
                "station": "hfa-01", "name": "Haifa 1", "mode": "paper", "checked_in": 4, "reported": True,
                "votes": {"yachimovich": 1, "peretz": 0, "herzog": 2}, "blank": 0, "invalid": 1, "cast": 4,
                "source": "return", "ballots_root": None,
            },
            {
                "station": "any-01", "name": "Party house", "mode": "electronic", "checked_in": 2, "reported": True,
                "votes": {"yachimovich": 1, "peretz": 0, "herzog": 0}, "blank": 1, "invalid": 0, "cast": 2,
                "source": "ballots", "ballots_root": ballots_root(ballots["any-01"]),
            },
        ],
        "audit": document["audit"],
    }  # fmt: skip
    assert_audit_point_is_a_signed_checkpoint_covering_the_last_seal(document, haifa_election.round)


def test_the_document_has_integer_counts_and_two_decimal_percent_strings_and_no_float(haifa_election):
    the_night_in_haifa(haifa_election)
    result = tally(haifa_election)
    stored = Tally.objects.get(pk=result.pk).document  # as read back from the database
    for document in (result.document, stored):
        canonical_bytes(document)  # refuses a float or any stray type
        assert not [path for path, value in scalars(document) if isinstance(value, float)]
        percents = [document["turnout_percent"], *(c["percent"] for c in document["candidates"])]
        assert all(type(p) is str and PERCENT.match(p) for p in percents), percents
        counts = [document[k] for k in ("round", "electorate", "checked_in", "cast", "valid", "blank", "invalid")] + [
            document["stations"]["reported"],
            document["stations"]["total"],
            document["audit"]["tree_size"],
        ]
        counts += [c["votes"] for c in document["candidates"]]
        for row in document["by_station"]:
            counts += [row["checked_in"], row["cast"], row["blank"], row["invalid"], *row["votes"].values()]
        assert all(type(n) is int for n in counts), counts
    assert canonical_bytes(stored) == canonical_bytes(result.document)


@pytest.mark.parametrize(
    ("base", "decision", "percents"),
    [("valid", "winner", ["44.44", "33.33", "22.22"]), ("cast", "runoff", ["33.33", "25.00", "16.67"])],
)
def test_percentages_and_the_threshold_are_of_the_rules_base(small_roster, base, decision, percents):
    data = copy.deepcopy(ELECTION_FILE)
    data["rule"]["threshold_base"] = base
    election = town_election(data)
    # yachimovich 4, peretz 3, herzog 2 (valid 9), blank 2, invalid 1 (cast 12)
    vote(election, "tlv-01", ["1001", "1003", *TLV_MEMBERS[:7]], ["yachimovich"] * 4 + ["peretz"] * 3 + ["herzog"] * 2)
    vote(election, "any-01", TLV_MEMBERS[7:10], ["blank", "blank", "invalid"])
    close(election)
    paper_return(election, {"yachimovich": 0, "peretz": 0, "herzog": 0})  # nobody came: a return of zeros
    document = tally(election).document
    assert [c["percent"] for c in document["candidates"]] == percents
    assert document["outcome"]["decision"] == decision
    assert document["turnout_percent"] == "57.14"  # 12 of 21


# --- deterministic --------------------------------------------------------------------------------------


def test_tallying_twice_with_nothing_new_returns_the_same_tally_and_writes_nothing(haifa_election):
    the_night_in_haifa(haifa_election)
    first = tally(haifa_election)
    written = Entry.objects.count()
    again = tally(haifa_election)
    assert again.pk == first.pk and again.sha256 == first.sha256 and again.number == 1
    assert Tally.objects.count() == 1
    assert len(entries("round.tallied")) == 1 and Entry.objects.count() == written  # nothing new logged
    payload = entries("round.tallied")[0].payload
    assert payload == {
        "election": "labor-2011", "round": 1, "tally": 1, "sha256": first.sha256, "complete": True,
        "decision": "winner", "stations": {"reported": 3, "total": 3},
    }  # fmt: skip


def test_a_new_seal_gives_a_new_tally_number_with_another_sha256(haifa_election):
    vote(haifa_election, "tlv-01", ["1001"], ["herzog"])
    close_station(station=haifa_election.station("tlv-01"), actor="tlv-01")
    first = tally(haifa_election)
    close_station(station=haifa_election.station("any-01"), actor="any-01")  # a new seal (of nothing)
    second = tally(haifa_election)
    check_in(haifa_election, "hfa-01", [HAIFA_MEMBERS[0]])
    close(haifa_election)
    paper_return(haifa_election, {"yachimovich": 0, "peretz": 0, "herzog": 1})  # a new return
    third = tally(haifa_election)
    assert [t.number for t in (first, second, third)] == [1, 2, 3]
    assert len({first.sha256, second.sha256, third.sha256}) == 3
    assert [e.payload["tally"] for e in entries("round.tallied")] == [1, 2, 3]
    assert [e.payload["sha256"] for e in entries("round.tallied")] == [first.sha256, second.sha256, third.sha256]


def test_the_stored_sha256_is_that_of_the_canonical_bytes_of_the_document(haifa_election):
    the_night_in_haifa(haifa_election)
    result = tally(haifa_election)
    stored = Tally.objects.get(pk=result.pk)
    assert stored.sha256 == hashlib.sha256(canonical_bytes(stored.document)).hexdigest()
    expected = json.dumps(stored.document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert stored.sha256 == hashlib.sha256(expected).hexdigest()
    assert entries("round.tallied")[0].payload["sha256"] == stored.sha256


def test_the_document_is_byte_identical_after_unrelated_entries_and_later_checkpoints(haifa_election):
    the_night_in_haifa(haifa_election)
    first = tally(haifa_election)
    checkpoint = assert_audit_point_is_a_signed_checkpoint_covering_the_last_seal(first.document, haifa_election.round)
    # The log moves on: tokens, an official, a signed checkpoint or two beyond the tally's.
    for station in haifa_election.election.stations.all():
        setup.issue_station_token(station=station, actor="manager")
    setup.add_official(username="tamar", role="auditor", password="violet-lantern-orbit-42", actor="committee")
    audit.integrate_pending()
    audit.sign_checkpoint(force=True)
    setup.issue_station_token(station=haifa_election.station("tlv-01"), actor="manager")
    audit.integrate_pending()
    audit.sign_checkpoint(force=True)
    assert Checkpoint.objects.filter(tree_size__gt=checkpoint.tree_size).count() >= 2
    round_ = Round.objects.get(pk=haifa_election.round.pk)
    assert canonical_bytes(build_document(round_)) == canonical_bytes(first.document)
    again = tally(haifa_election)
    assert again.pk == first.pk and Tally.objects.count() == 1
    assert again.document["audit"] == first.document["audit"] == {
        "tree_size": checkpoint.tree_size, "root": bytes(checkpoint.root).hex()
    }  # fmt: skip


def test_a_tally_that_counts_a_later_electorate_change_points_to_a_checkpoint_covering_it(haifa_election):
    the_night_in_haifa(haifa_election)
    first = tally(haifa_election)
    setup.change_electorate(
        election=haifa_election.election, member_no=HAIFA_MEMBERS[5], add=False,
        reason="Resigned before the cutoff; the roster was late", actor="dana",
    )  # fmt: skip
    second = tally(haifa_election)
    assert second.number == 2 and second.document["electorate"] == first.document["electorate"] - 1
    change = entries("electorate.changed")[-1]
    assert Leaf.objects.get(entry=change).index < second.document["audit"]["tree_size"]


# --- decisions ------------------------------------------------------------------------------------------


def test_a_candidate_with_40_percent_of_the_valid_votes_wins_in_round_one(small_roster):
    election = town_election()
    # yachimovich 4 of 10 valid: exactly 40%; blanks and invalid ballots are not in the base.
    vote(election, "tlv-01", ["1001", "1003", *TLV_MEMBERS[:8]], ["yachimovich"] * 4 + ["peretz"] * 3 + ["herzog"] * 3)
    vote(election, "any-01", ["1002", *TLV_MEMBERS[8:10]], ["blank", "blank", "invalid"])
    close(election)
    paper_return(election, {"yachimovich": 0, "peretz": 0, "herzog": 0})
    result = tally(election)
    assert result.document["candidates"][0] == {
        "code": "yachimovich", "name": "Shelly Yachimovich", "votes": 4, "percent": "40.00"
    }  # fmt: skip
    assert result.document["outcome"] == {"decision": "winner", "winner": "yachimovich", "advancing": []}
    assert result.decision == "winner" and result.complete is True


def test_nobody_at_40_percent_sends_the_top_two_to_a_runoff(small_roster):
    election = town_election()
    runoff_night(election)
    document = tally(election).document
    assert [(c["code"], c["votes"], c["percent"]) for c in document["candidates"]] == [
        ("herzog", 7, "38.89"), ("yachimovich", 6, "33.33"), ("peretz", 5, "27.78"),
    ]  # fmt: skip
    assert document["outcome"] == {"decision": "runoff", "winner": None, "advancing": ["herzog", "yachimovich"]}
    assert (document["valid"], document["cast"], document["electorate"]) == (18, 19, 21)


def lot(seed: str, codes: list[str]) -> tuple[list[str], dict[str, str]]:
    """The lot as counting._draw documents it, redrawn with hashlib alone."""
    keys_ = {code: hashlib.sha256(bytes.fromhex(seed) + b"\n" + code.encode("utf-8")).hexdigest() for code in codes}
    return sorted(codes, key=lambda code: (keys_[code], code)), keys_


def test_a_tie_for_the_lead_is_broken_by_lot_with_the_seed_committed_when_the_round_closed(haifa_election):
    vote(haifa_election, "tlv-01", ["1001", "1003"], ["yachimovich", "peretz"])
    close(haifa_election)
    paper_return(haifa_election, {"yachimovich": 0, "peretz": 0, "herzog": 0})
    result = tally(haifa_election)
    closed = entries("round.closed")[0]
    seed = closed.payload["tie_break_seed"]
    assert HEX_SEED.match(seed) and seed == Round.objects.get(pk=haifa_election.round.pk).tie_break_seed
    assert closed.id < entries("round.tallied")[0].id  # committed to the log before any count
    order, keys_ = lot(seed, ["yachimovich", "peretz"])
    outcome = result.document["outcome"]
    assert outcome == {
        "decision": "winner", "winner": order[0], "advancing": [], "tied": ["yachimovich", "peretz"],
        "draw": {"seed": seed, "order": order, "keys": keys_},
    }  # fmt: skip
    assert [c["code"] for c in result.document["candidates"]] == [*order, "herzog"]
    assert tally(haifa_election).pk == result.pk  # the same lot every time


def test_a_three_way_tie_for_the_runoff_places_is_drawn_by_lot(haifa_election):
    vote(haifa_election, "tlv-01", ["1001", "1003"], ["yachimovich", "herzog"])
    vote(haifa_election, "any-01", ["1002"], ["peretz"])
    close(haifa_election)
    paper_return(haifa_election, {"yachimovich": 0, "peretz": 0, "herzog": 0})
    outcome = tally(haifa_election).document["outcome"]
    seed = entries("round.closed")[0].payload["tie_break_seed"]
    order, keys_ = lot(seed, ["yachimovich", "peretz", "herzog"])
    assert outcome == {
        "decision": "runoff", "winner": None, "advancing": order[:2], "tied": ["yachimovich", "peretz", "herzog"],
        "draw": {"seed": seed, "order": order, "keys": keys_},
    }  # fmt: skip


def test_a_certified_round_is_not_tallied_again(haifa_election):
    the_night_in_haifa(haifa_election)
    certified = tally(haifa_election)
    for username in ("dana", "eli"):
        committee_member(username)
        certify_round(election=haifa_election.election, number=1, username=username)
    written = Entry.objects.count()
    with pytest.raises(RoundStateError) as refused:
        tally(haifa_election)
    assert refused.value.code == "round_state" and "certified" in refused.value.message
    assert list(Tally.objects.values_list("pk", flat=True)) == [certified.pk] and Entry.objects.count() == written


# --- manage.py tally --------------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refusal(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert caught.value.returncode != 0
    return str(caught.value)


def test_the_tally_command_prints_the_summary(haifa_election):
    the_night_in_haifa(haifa_election)
    lines = run("tally", SLUG, "1").splitlines()
    result = Tally.objects.get()
    assert lines[0] == (
        "labor-2011 round 1, tally 1 (complete): stations 3 of 3, electorate 9, checked in 8 (88.89%), "
        "cast 8, valid 6, blank 1, invalid 1"
    )
    assert [line.split() for line in lines[1:4]] == [
        ["Shelly", "Yachimovich", "3", "50.00%"], ["Isaac", "Herzog", "2", "33.33%"], ["Amir", "Peretz", "1", "16.67%"],
    ]  # fmt: skip
    assert lines[4:] == ["outcome: winner, winner yachimovich", f"sha256 {result.sha256}"]


def test_the_tally_command_labels_a_provisional_count_and_names_those_advancing(small_roster):
    election = town_election()
    vote(election, "tlv-01", ["1001"], ["peretz"])
    assert "tally 1 (provisional): stations 0 of 3" in run("tally", SLUG, "1")
    vote(election, "tlv-01", ["1003", *TLV_MEMBERS[:10]], ["herzog"] * 5 + ["yachimovich"] * 4 + ["peretz"] * 2)
    vote(election, "any-01", ["1002", *TLV_MEMBERS[10:]], ["herzog", "yachimovich", "blank"])
    check_in(election, "hfa-01", HAIFA_MEMBERS[:4])
    close(election)
    paper_return(election, {"yachimovich": 1, "peretz": 2, "herzog": 1})
    out = run("tally", SLUG, "1")
    assert "tally 2 (complete)" in out and "outcome: runoff, advancing herzog, yachimovich" in out


def test_the_tally_command_prints_the_document_as_json(haifa_election):
    the_night_in_haifa(haifa_election)
    document = json.loads(run("tally", SLUG, "1", "--json"))
    assert document == Tally.objects.get().document
    assert json.loads(run("tally", SLUG, "1", "--json")) == document and Tally.objects.count() == 1


def test_the_tally_command_refuses_bad_input_with_a_clear_message(scheduled_election):
    assert refusal("tally", "no-such-election", "1") == "no election 'no-such-election'"
    assert refusal("tally", SLUG, "1") == "Round 1 has not opened; there is nothing to count. (round_state)"
    assert refusal("tally", SLUG, "7") == "labor-2011 has no round 7. (not_found)"
    assert "invalid int value" in refusal("tally", SLUG, "one")
    assert not Tally.objects.exists()
