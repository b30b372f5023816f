"""The station API end to end: look up, check in, vote, batch, close and seal; a paper station's return."""

from __future__ import annotations

import uuid

from audit.models import Entry
from ballots.models import Ballot, CheckIn, Seal
from ballots.services.station import ballots_root
from tests.ballots.station_api import stored_ballots


def test_a_station_knows_itself_and_the_open_round(election):
    body = election.client("tlv-01").get("/api/v1/station/").json()
    assert body == {
        "election": "labor-2011", "station": "tlv-01", "name": "Tel Aviv 1", "mode": "electronic",
        "round": {"number": 1, "status": "open"},
    }  # fmt: skip


def test_a_voter_checks_in_and_votes_and_the_close_seals_the_ballots(election):
    tlv = election.client("tlv-01")
    assert tlv.get("/api/v1/station/voters/1001/").json() == {
        "member_no": "1001", "in_electorate": True, "station": "tlv-01", "voted": False
    }  # fmt: skip
    response = tlv.post("/api/v1/station/checkins/", {"member_no": "1001"}, format="json")
    assert response.status_code == 201 and response.json() == {"member_no": "1001", "round": 1}
    assert tlv.get("/api/v1/station/voters/1001/").json()["voted"] is True
    ballot = str(uuid.uuid4())
    first = tlv.post("/api/v1/station/ballots/", {"id": ballot, "choice": "peretz"}, format="json")
    assert first.status_code == 201
    replay = tlv.post("/api/v1/station/ballots/", {"id": ballot, "choice": "peretz"}, format="json")
    assert replay.status_code == 200 and len(stored_ballots()) == 1
    closed = tlv.post("/api/v1/station/close/").json()
    assert closed["checkins"] == 1 and closed["ballots"] == 1
    assert closed["seal"]["counts"] == {"blank": 0, "herzog": 0, "invalid": 0, "peretz": 1, "yachimovich": 0}
    assert closed["seal"]["ballots_root"] == ballots_root([(ballot, "peretz")])
    sealed = Entry.objects.get(action="station.sealed")
    assert sealed.payload["counts"]["peretz"] == 1 and sealed.payload["station"] == "tlv-01"
    assert tlv.post("/api/v1/station/close/").json() == closed  # closing again answers the same


def test_a_batch_records_ballots_all_or_nothing_and_counts_replays_once(election):
    anywhere = election.client("any-01")
    for member_no in ("1001", "1002", "1003"):
        assert anywhere.post("/api/v1/station/checkins/", {"member_no": member_no}, format="json").status_code == 201
    ids = [str(uuid.uuid4()) for _ in range(3)]
    batch = [{"id": ids[0], "choice": "herzog"}, {"id": ids[1], "choice": "blank"}]
    assert anywhere.post("/api/v1/station/ballots/batch/", {"ballots": batch}, format="json").json() == {
        "accepted": 2, "duplicates": 0
    }  # fmt: skip
    again = [*batch, {"id": ids[2], "choice": "invalid"}]
    assert anywhere.post("/api/v1/station/ballots/batch/", {"ballots": again}, format="json").json() == {
        "accepted": 1, "duplicates": 2
    }  # fmt: skip
    assert len(stored_ballots()) == 3 and Entry.objects.filter(action="ballot.recorded").count() == 3


def test_a_paper_station_reports_by_double_entry(election):
    haifa = election.client("hfa-01")
    assert (
        haifa.post("/api/v1/station/checkins/", {"member_no": "1005"}, format="json").status_code == 403
    )  # joined late
    # 1004 is suspended, 1006 lapsed: nobody from Haifa may vote; a member from Tel Aviv may not vote here.
    response = haifa.post("/api/v1/station/checkins/", {"member_no": "1001"}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "wrong_station"
    assert response.json()["extra"] == {"station": "tlv-01"}
    haifa.post("/api/v1/station/close/")
    figures = {"counts": {"yachimovich": 0, "peretz": 0, "herzog": 0}, "blank": 0, "invalid": 0, "total": 0}
    first = haifa.post("/api/v1/station/returns/", {"entry": 1, **figures}, format="json")
    assert first.status_code == 201 and first.json()["status"] == "awaiting_second_entry"
    second = haifa.post("/api/v1/station/returns/", {"entry": 2, **figures}, format="json")
    assert second.json()["status"] == "accepted"
    assert Seal.objects.get(station__code="hfa-01").source == "return"


def test_nothing_links_a_check_in_to_a_ballot(election):
    tlv = election.client("tlv-01")
    tlv.post("/api/v1/station/checkins/", {"member_no": "1003"}, format="json")
    tlv.post("/api/v1/station/ballots/", {"id": str(uuid.uuid4()), "choice": "herzog"}, format="json")
    ballot_fields = {f.name for f in Ballot._meta.get_fields()}
    assert ballot_fields == {"id", "round", "station", "choice"}
    assert CheckIn.objects.count() == 1
    recorded = Entry.objects.get(action="ballot.recorded")
    assert recorded.payload == {"election": "labor-2011", "round": 1, "station": "tlv-01"}


def test_the_seal_leaves_are_the_canonical_bytes_of_each_ballot():
    from audit import merkle
    from audit.canonical import canonical_bytes

    ballots = [(str(uuid.uuid4()), choice) for choice in ("yachimovich", "blank", "invalid", "peretz", "a-b-2")]
    leaves = [merkle.leaf_hash(canonical_bytes({"id": i, "choice": c})) for i, c in sorted(ballots)]
    assert ballots_root(ballots) == merkle.root(leaves).hex()
