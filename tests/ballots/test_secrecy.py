"""Ballot secrecy (invariant 2) and no personal data in the log (invariant 4), through the station API.

Nothing stored or logged may link a check-in (a member) to a ballot (a choice).
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid

import pytest
from django.db import connection, models

from audit.canonical import canonical_bytes
from audit.keys import member_pseudonym
from audit.models import Entry
from ballots.models import Ballot, CheckIn, OpenBallot
from ballots.services.setup import close_round
from ballots.services.station import ballots_root
from tests.ballots.conftest import HAIFA_MEMBERS
from tests.ballots.station_api import cast, cast_batch, check_in, close, enter, figures, new_id, refused, url
from tests.conftest import SMALL_ROSTER

ROSTER_MEMBERS = [line.split(",")[0] for line in SMALL_ROSTER.splitlines()[1:]]


@pytest.mark.parametrize("model", [OpenBallot, Ballot])
def test_it_stores_a_ballot_as_exactly_its_id_round_station_and_choice(election, model):
    # get_fields() includes reverse relations: nothing points at a ballot either.
    assert {f.name for f in model._meta.get_fields()} == {"id", "round", "station", "choice"}
    assert {f.related_model.__name__ for f in model._meta.get_fields() if f.is_relation} == {"Round", "Station"}
    assert not [f for f in model._meta.get_fields() if isinstance(f, models.DateField | models.AutoField)]
    pk = model._meta.pk
    assert pk.name == "id" and isinstance(pk, models.UUIDField) and not pk.has_default()  # the station's id
    tlv = election.client("tlv-01")
    check_in(tlv, "1001")
    ballot_id = new_id()
    cast(tlv, "herzog", ballot_id)
    if model is Ballot:
        close(tlv)
    assert model.objects.get().id == uuid.UUID(ballot_id)
    assert model.objects.get().id.version == 4


def test_it_audits_a_ballot_only_as_a_ballot_recorded_at_a_station_in_a_round(election):
    anywhere = election.client("any-01")
    for member_no in ("1001", "1002", "1003"):
        check_in(anywhere, member_no)
    cast(anywhere, "peretz")
    cast_batch(anywhere, [{"id": new_id(), "choice": "herzog"}, {"id": new_id(), "choice": "blank"}])
    recorded = Entry.objects.filter(action="ballot.recorded")
    assert recorded.count() == 3
    for entry in recorded:
        assert entry.payload == {"election": "labor-2011", "round": 1, "station": "any-01"}
        assert entry.actor == "any-01"


def test_it_audits_a_check_in_with_a_keyed_pseudonym_and_never_the_member_number(election):
    check_in(election.client("tlv-01"), "1001")
    entry = Entry.objects.get(action="voter.checked_in")
    assert set(entry.payload) == {"election", "round", "station", "member"}
    pseudonym = entry.payload["member"]
    assert re.fullmatch(r"[0-9a-f]{64}", pseudonym)
    assert pseudonym == member_pseudonym("1001")
    assert pseudonym != hashlib.sha256(b"1001").hexdigest()  # keyed: not found by hashing every number
    assert entry.actor == "tlv-01"


def test_it_seals_an_electronic_station_with_counts_and_a_root_over_ballots_sorted_by_id(election):
    anywhere = election.client("any-01")
    for member_no in ("1001", "1002", "1003"):
        check_in(anywhere, member_no)
    ballots = [(new_id(), "peretz"), (new_id(), "peretz"), (new_id(), "invalid")]
    for ballot_id, choice in ballots:
        cast(anywhere, choice, ballot_id)
    close(anywhere)
    sealed = Entry.objects.get(action="station.sealed")
    assert set(sealed.payload) == {
        "election",
        "round",
        "station",
        "checkins",
        "ballots",
        "counts",
        "ballots_root",
        "source",
    }
    assert sealed.payload["counts"] == {"blank": 0, "herzog": 0, "invalid": 1, "peretz": 2, "yachimovich": 0}
    # The root commits to the ballots as a set: arrival order leaves no trace in it.
    assert sealed.payload["ballots_root"] == ballots_root(ballots) == ballots_root(ballots[::-1])
    assert re.fullmatch(r"[0-9a-f]{64}", sealed.payload["ballots_root"])
    document = canonical_bytes(sealed.document()).decode()
    assert not [ballot_id for ballot_id, _ in ballots if ballot_id in document]


def _election_day(election) -> tuple[list[str], list[str]]:
    """Check-ins, ballots (single, batch, replays), refusals, closes and a paper return; the ballot ids."""
    tlv, anywhere, haifa = (election.client(code) for code in ("tlv-01", "any-01", "hfa-01"))
    ballot_ids = []
    for member_no, choice in (("1001", "peretz"), ("1003", "herzog")):
        assert check_in(tlv, member_no).status_code == 201
        ballot_ids.append(new_id())
        assert cast(tlv, choice, ballot_ids[-1]).status_code == 201
    assert cast(tlv, "herzog", ballot_ids[-1]).status_code == 200  # a replay
    refused(cast(tlv, "peretz", ballot_ids[-1]), 409, "idempotency_conflict")
    refused(check_in(anywhere, "1001"), 409, "already_voted")
    refused(check_in(tlv, "1002"), 403, "wrong_station")
    refused(check_in(tlv, HAIFA_MEMBERS[0]), 403, "wrong_station")
    refused(check_in(anywhere, "1004"), 403, "not_in_electorate")
    for member_no in ("1002", *HAIFA_MEMBERS[3:]):
        assert check_in(anywhere, member_no).status_code == 201
    batch = [{"id": new_id(), "choice": c} for c in ("yachimovich", "peretz", "invalid", "herzog")]
    ballot_ids += [b["id"] for b in batch]
    assert cast_batch(anywhere, batch).json() == {"accepted": 4, "duplicates": 0}
    refused(cast(anywhere, "peretz"), 409, "no_voter_for_ballot")
    for member_no in HAIFA_MEMBERS[:3]:
        assert check_in(haifa, member_no).status_code == 201
    anywhere.get(url("voters/1001/"))
    close(tlv)
    close(haifa)
    enter(haifa, 1, figures(1, 1, 0, blank=1))
    enter(haifa, 2, figures(1, 1, 0, blank=1))
    close_round(election=election.election, number=1, actor="committee")
    return ["1001", "1002", "1003", *HAIFA_MEMBERS], ballot_ids


def _mentions(text: str, member_no: str) -> bool:
    # Bounded, so a number inside a hash, a key prefix or a timestamp's microseconds is not mistaken for one.
    return re.search(rf"(?<![0-9A-Za-z_-]){member_no}(?![0-9A-Za-z_-])", text) is not None


def test_it_keeps_every_member_number_and_ballot_id_out_of_the_whole_audit_log(haifa_election):
    voters, ballot_ids = _election_day(haifa_election)
    assert Entry.objects.filter(action="station.sealed").count() == 3
    log = "\n".join(canonical_bytes(entry.document()).decode() for entry in Entry.objects.all())
    for ballot_id in ballot_ids:
        for form in (ballot_id, uuid.UUID(ballot_id).hex):  # with or without dashes, in any case
            assert form not in log.lower()
    for member_no in [*ROSTER_MEMBERS, *HAIFA_MEMBERS]:
        assert not _mentions(log, member_no), member_no
    for member_no in HAIFA_MEMBERS:  # seven digits: not even as part of something else
        assert member_no not in log
    pseudonyms = set(Entry.objects.filter(action="voter.checked_in").values_list("payload__member", flat=True))
    assert pseudonyms == {member_pseudonym(m) for m in voters}


def test_it_logs_neither_ballot_ids_nor_member_numbers_on_election_day(haifa_election, caplog):
    caplog.set_level(logging.DEBUG)
    _, ballot_ids = _election_day(haifa_election)
    lines = [f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records]
    assert lines  # the refusals are logged (by path), so the capture works
    for line in lines:
        assert not [b for b in ballot_ids if b in line.lower() or uuid.UUID(b).hex in line], line
        assert not [m for m in [*ROSTER_MEMBERS, *HAIFA_MEMBERS] if _mentions(line, m)], line


def _table_order(model) -> list[str]:
    """Ballot ids in the table's own order: whole rows, as a dump or a plain SELECT reads them (SQLite
    would answer a bare "SELECT id" from its primary key index, in id order, and hide the table's order)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {connection.ops.quote_name(model._meta.db_table)}")
        column = [c[0] for c in cursor.description].index("id")
        return [str(uuid.UUID(str(row[column]))) for row in cursor.fetchall()]


def test_a_closed_station_keeps_its_ballots_in_the_order_of_their_random_ids(haifa_election):
    """A table keeps rows in the order they arrive; next to the check-ins' order, that would link each
    voter to a choice. The station's close moves its ballots to the sealed table in id order, in one
    transaction, and nothing is left in the open box."""
    anywhere = haifa_election.client("any-01")
    arrival = []
    for n, member_no in enumerate(["1001", "1002", "1003", *HAIFA_MEMBERS]):  # one voter at a time, as at a station
        assert check_in(anywhere, member_no).status_code == 201
        arrival.append(new_id())
        assert cast(anywhere, ("peretz", "herzog", "yachimovich")[n % 3], arrival[-1]).status_code == 201
    if connection.vendor == "sqlite":  # WITHOUT ROWID: even the open box is in id order
        assert _table_order(OpenBallot) == sorted(arrival)
    assert close(anywhere).status_code == 200
    stored = _table_order(Ballot)
    assert stored == sorted(arrival) and CheckIn.objects.count() == len(arrival)
    assert not OpenBallot.objects.exists()
    if connection.vendor == "postgresql":  # and one transaction wrote them all: xmin tells nothing either
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(DISTINCT xmin::text) FROM {Ballot._meta.db_table}")
            assert cursor.fetchone()[0] == 1
