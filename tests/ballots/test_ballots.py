"""Ballots through the station API: replays count once, batches are all or nothing, duplicates are counted."""

from __future__ import annotations

import uuid

from audit.models import Entry
from tests.ballots.station_api import (
    cast,
    cast_batch,
    check_in,
    close,
    counters,
    new_id,
    nothing_written,
    refused,
    state,
    stored_ballots,
)


def _voters(client, *member_nos: str) -> None:
    for member_no in member_nos:
        assert check_in(client, member_no).status_code == 201


def test_it_answers_an_identical_replay_with_200_and_counts_it_once(election):
    tlv = election.client("tlv-01")
    _voters(tlv, "1001")
    ballot_id = new_id()
    first = cast(tlv, "peretz", ballot_id)
    assert first.status_code == 201 and first.json() == {"id": ballot_id, "recorded": True}
    with nothing_written():  # no ballot row, no counter, no audit entry
        for _ in range(3):
            replay = cast(tlv, "peretz", ballot_id)
            assert replay.status_code == 200 and replay.json() == {"id": ballot_id, "recorded": False}
    assert counters("tlv-01") == (1, 1, False)
    assert len(stored_ballots()) == 1 and Entry.objects.filter(action="ballot.recorded").count() == 1


def test_it_takes_the_same_uuid_written_in_capitals_as_a_replay(election):
    tlv = election.client("tlv-01")
    _voters(tlv, "1001")
    ballot_id = new_id()
    cast(tlv, "herzog", ballot_id)
    with nothing_written():
        assert cast(tlv, "herzog", ballot_id.upper()).status_code == 200


def test_it_answers_a_replay_of_a_whole_batch_with_all_duplicates_and_writes_nothing(election):
    anywhere = election.client("any-01")
    _voters(anywhere, "1001", "1002", "1003")
    batch = [{"id": new_id(), "choice": c} for c in ("peretz", "herzog", "blank")]
    assert cast_batch(anywhere, batch).json() == {"accepted": 3, "duplicates": 0}
    with nothing_written():
        response = cast_batch(anywhere, batch)
    assert response.status_code == 200 and response.json() == {"accepted": 0, "duplicates": 3}
    assert counters("any-01") == (3, 3, False)


def test_it_counts_an_id_repeated_within_a_batch_as_a_duplicate_and_records_it_once(election):
    anywhere = election.client("any-01")
    _voters(anywhere, "1001", "1002")
    twice = new_id()
    batch = [
        {"id": twice, "choice": "peretz"},
        {"id": new_id(), "choice": "invalid"},
        {"id": twice, "choice": "peretz"},
    ]
    assert cast_batch(anywhere, batch).json() == {"accepted": 2, "duplicates": 1}
    assert len(stored_ballots()) == 2 and stored_ballots()[uuid.UUID(str(twice))] == "peretz"
    assert counters("any-01") == (2, 2, False)
    assert Entry.objects.filter(action="ballot.recorded").count() == 2


def test_it_counts_a_ballot_sent_alone_then_in_a_batch_as_a_duplicate(election):
    anywhere = election.client("any-01")
    _voters(anywhere, "1001", "1002", "1003")
    alone = new_id()
    assert cast(anywhere, "yachimovich", alone).status_code == 201
    batch = [{"id": alone, "choice": "yachimovich"}, {"id": new_id(), "choice": "peretz"}]
    assert cast_batch(anywhere, batch).json() == {"accepted": 1, "duplicates": 1}
    assert counters("any-01") == (3, 2, False)
    assert len(stored_ballots()) == 2 and Entry.objects.filter(action="ballot.recorded").count() == 2
    # A ballot that came in a batch is also a replay when sent alone.
    with nothing_written():
        assert cast(anywhere, "peretz", batch[1]["id"]).status_code == 200


def test_it_does_not_need_check_ins_for_the_duplicates_of_a_batch(election):
    anywhere = election.client("any-01")
    _voters(anywhere, "1001", "1002")
    batch = [{"id": new_id(), "choice": "peretz"}, {"id": new_id(), "choice": "herzog"}]
    cast_batch(anywhere, batch)
    # The station is full (2 ballots, 2 check-ins); the replay plus one new ballot is refused whole.
    with nothing_written():
        refused(cast_batch(anywhere, [*batch, {"id": new_id(), "choice": "blank"}]), 409, "no_voter_for_ballot")
    with nothing_written():
        assert cast_batch(anywhere, batch).json() == {"accepted": 0, "duplicates": 2}


def test_it_records_a_batch_up_to_the_last_check_in_and_no_further(election):
    anywhere = election.client("any-01")
    _voters(anywhere, "1001", "1002", "1003")
    assert cast_batch(anywhere, [{"id": new_id(), "choice": "blank"} for _ in range(3)]).json() == {
        "accepted": 3, "duplicates": 0
    }  # fmt: skip
    with nothing_written():
        refused(cast(anywhere, "blank"), 409, "no_voter_for_ballot")


def test_it_writes_nothing_of_a_batch_whose_last_item_is_refused(election):
    anywhere = election.client("any-01")
    _voters(anywhere, "1001", "1002", "1003")
    good = [{"id": new_id(), "choice": "peretz"}, {"id": new_id(), "choice": "herzog"}]
    recorded = new_id()
    cast(anywhere, "blank", recorded)
    before = state()
    for last, code, status in [
        ({"id": new_id(), "choice": "netanyahu"}, "unknown_choice", 400),
        ({"id": recorded, "choice": "peretz"}, "idempotency_conflict", 409),
        ({"id": str(uuid.uuid1()), "choice": "peretz"}, "invalid", 400),
    ]:
        refused(cast_batch(anywhere, [*good, last]), status, code)
        assert state() == before
    assert not stored_ballots(id__in=[b["id"] for b in good])


def test_it_keeps_the_station_counter_and_the_ballot_rows_together_through_replays(election):
    anywhere = election.client("any-01")
    _voters(anywhere, "1001", "1002", "1003")
    ids = [new_id() for _ in range(3)]
    cast(anywhere, "peretz", ids[0])
    cast(anywhere, "peretz", ids[0])
    cast_batch(anywhere, [{"id": ids[0], "choice": "peretz"}, {"id": ids[1], "choice": "herzog"}])
    cast_batch(anywhere, [{"id": ids[1], "choice": "herzog"}, {"id": ids[2], "choice": "blank"}])
    cast(anywhere, "blank", ids[2])
    assert counters("any-01") == (3, 3, False)
    assert sorted(str(i) for i in stored_ballots()) == sorted(ids)
    closed = close(anywhere).json()
    assert (closed["checkins"], closed["ballots"]) == (3, 3)
    assert closed["seal"]["counts"] == {"blank": 1, "herzog": 1, "invalid": 0, "peretz": 1, "yachimovich": 0}
    assert closed["seal"]["source"] == "ballots"


def test_a_batch_reads_its_items_as_the_single_ballot_does_spaces_extra_keys_and_numbers_included(election):
    anywhere = election.client("any-01")
    _voters(anywhere, "1001", "1002", "1003")
    spaced, extra, upper = new_id(), new_id(), new_id()
    batch = [
        {"id": f" {spaced} ", "choice": " peretz "},  # trimmed, as the serializer trims any field
        {"id": extra, "choice": "herzog", "note": "ignored"},
        {"id": upper.upper(), "choice": "blank"},
    ]
    assert cast_batch(anywhere, batch).json() == {"accepted": 3, "duplicates": 0}
    stored = stored_ballots()
    assert {str(k): v for k, v in stored.items()} == {spaced: "peretz", extra: "herzog", upper: "blank"}
    refused(cast_batch(anywhere, [{"id": new_id(), "choice": 7}]), 400, "unknown_choice")


def test_a_ballot_keeps_its_id_after_its_station_closes(election):
    """The close moves the station's ballots from the open box to the sealed table; an id is still one
    ballot: a retry from its station is a replay, the same id from another station a conflict."""
    tlv, anywhere = election.client("tlv-01"), election.client("any-01")
    _voters(tlv, "1001")
    _voters(anywhere, "1002", "1003")
    sealed = new_id()
    assert cast(tlv, "peretz", sealed).status_code == 201
    assert close(tlv).status_code == 200
    with nothing_written():
        assert cast(tlv, "peretz", sealed).status_code == 200  # a retry after a lost answer
        refused(cast(anywhere, "peretz", sealed), 409, "idempotency_conflict")
        refused(cast_batch(anywhere, [{"id": new_id(), "choice": "blank"}, {"id": sealed, "choice": "peretz"}]),
                409, "idempotency_conflict")  # fmt: skip


def test_an_id_sealed_between_the_look_and_the_write_is_still_refused(election, monkeypatch):
    """The look for a recorded id and the write are two statements: another station's close can move
    the id to the sealed table in between. The write then looks at the sealed table again."""
    from ballots.services import station as service

    tlv, anywhere = election.client("tlv-01"), election.client("any-01")
    _voters(tlv, "1001")
    _voters(anywhere, "1002")
    sealed = new_id()
    assert cast(tlv, "peretz", sealed).status_code == 201 and close(tlv).status_code == 200
    monkeypatch.setattr(service, "_recorded", lambda ballot_id: None)  # the look saw nothing yet
    monkeypatch.setattr(service, "_stored_ballots", lambda ids: [])
    with nothing_written():
        refused(cast(anywhere, "herzog", sealed), 409, "idempotency_conflict")
        refused(cast_batch(anywhere, [{"id": sealed, "choice": "herzog"}]), 409, "idempotency_conflict")
    assert counters("any-01") == (1, 0, False)
