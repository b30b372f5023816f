"""The open ballot box: a ballot leaves it only into the sealed table, at its station's close."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from ballots.models import Ballot, OpenBallot
from tests.ballots.station_api import cast, check_in, close, new_id, stored_ballots


@pytest.fixture
def open_box(election):
    anywhere = election.client("any-01")
    for member_no in ("1001", "1002"):
        assert check_in(anywhere, member_no).status_code == 201
        assert cast(anywhere, "herzog", new_id()).status_code == 201
    return anywhere


def refused(sql: str) -> None:
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql)


def test_an_open_ballot_is_neither_changed_nor_removed(open_box):
    before = stored_ballots()
    table = connection.ops.quote_name(OpenBallot._meta.db_table)
    refused(f"UPDATE {table} SET choice = 'peretz'")
    refused(f"DELETE FROM {table}")
    with pytest.raises(IntegrityError), transaction.atomic():
        OpenBallot.objects.all().delete()
    assert stored_ballots() == before and OpenBallot.objects.count() == 2


def test_the_open_box_cannot_be_truncated(transactional_db, open_box):
    # Its own transactions: PostgreSQL refuses TRUNCATE next to the test's pending key checks anyway.
    if connection.vendor != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    refused(f"TRUNCATE {connection.ops.quote_name(OpenBallot._meta.db_table)}")
    assert OpenBallot.objects.count() == 2


def test_the_close_moves_every_ballot_into_the_sealed_table(open_box):
    before = stored_ballots()
    assert close(open_box).status_code == 200
    assert not OpenBallot.objects.exists()
    assert dict(Ballot.objects.values_list("id", "choice")) == before


def test_a_sealed_ballot_id_cannot_enter_the_open_box_again(open_box, election):
    assert close(open_box).status_code == 200
    sealed = Ballot.objects.first()
    tlv = election.station("tlv-01")
    with pytest.raises(IntegrityError), transaction.atomic():
        OpenBallot.objects.create(id=sealed.id, round_id=sealed.round_id, station=tlv, choice=sealed.choice)
    table = connection.ops.quote_name(OpenBallot._meta.db_table)
    stored_id = sealed.id.hex if connection.vendor == "sqlite" else str(sealed.id)
    refused(
        f"INSERT INTO {table} (id, round_id, station_id, choice) "
        f"VALUES ('{stored_id}', {sealed.round_id}, {tlv.id}, 'blank')"
    )
    assert not OpenBallot.objects.exists() and Ballot.objects.count() == 2
