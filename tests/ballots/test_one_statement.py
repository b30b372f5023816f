"""On PostgreSQL a check-in or a ballot that goes through is one prepared statement, in autocommit.

The station API's hot path (ballots.services.station, `_check_in_at_once` and `_ballot_at_once`) as
gunicorn runs it: no transaction around the request, so each statement is its own. Everything else
in the suite runs it inside the test's transaction (in a savepoint); here every refusal is shown to
write nothing without one, and to answer the same code as the step-by-step path it falls back to.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.keys import member_pseudonym
from audit.models import Entry
from audit.services import integration_deferred
from audit.verification import verify_database
from ballots.services.setup import close_round
from tests.ballots.station_api import cast, check_in, close, counters, new_id, nothing_written, refused
from tests.conftest import is_postgres

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only():
    if not is_postgres():
        pytest.skip("the one-statement path is PostgreSQL's; SQLite takes the step-by-step one")


def statements(request) -> list[str]:
    """The SQL a request ran on this connection (the test client runs the view in this thread); the
    audit integration, which the tests run eagerly after each commit, waits until afterwards."""
    with integration_deferred(), CaptureQueriesContext(connection) as queries:
        request()
    return [q["sql"] for q in queries.captured_queries]


def test_a_check_in_and_a_ballot_are_one_statement_each_once_the_token_is_known(election):
    tlv = election.client("tlv-01")
    ran = statements(lambda: check_in(tlv, "1001"))
    # The token's first use in this process: it is looked up, then the check-in checks it again.
    assert len(ran) == 2, ran
    assert "stationtoken" in ran[0] and "INSERT INTO ballots_checkin" in ran[1] and "audit_entry" in ran[1]
    ran = statements(lambda: cast(tlv, "peretz"))
    assert len(ran) == 1, ran
    assert "stationtoken" in ran[0] and "INSERT INTO ballots_openballot" in ran[0] and "audit_entry" in ran[0]
    assert counters("tlv-01") == (1, 1, False)
    # The entries the step-by-step path writes, to the key.
    entries = {e.action: e.payload for e in Entry.objects.filter(actor="tlv-01")}
    where = {"election": "labor-2011", "round": 1, "station": "tlv-01"}
    assert entries == {"voter.checked_in": {**where, "member": member_pseudonym("1001")}, "ballot.recorded": where}
    assert verify_database().ok


def test_the_token_check_in_and_ballot_are_prepared_once_per_connection(election):
    tlv = election.client("tlv-01")

    def prepared() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements ORDER BY prepare_time")
            statements = [row[0] for row in cursor.fetchall()]
        # The election's set-up wrote its entries through audit.record and save_with_entry, each
        # statement prepared once.
        recorded = [s for s in statements if s.lstrip().startswith(("WITH entry AS", "WITH audit_"))]
        assert len(recorded) == len(set(recorded))
        return [s for s in statements if s not in recorded]

    assert check_in(tlv, "1001").status_code == 201
    assert cast(tlv, "yachimovich").status_code == 201
    first = prepared()
    assert len(first) == 3 and "revoked_at IS NULL" in first[0] and "ballots_checkin" in first[1]
    assert "ballots_openballot" in first[2]
    assert check_in(tlv, "1003").status_code == 201
    assert cast(tlv, "herzog").status_code == 201
    assert prepared() == first  # the second check-in and ballot reused them


# Every refusal on the way of a check-in or a ballot, in autocommit: the same answer as in the rest
# of the suite, and nothing written (the one statement wrote nothing; the step-by-step path rolled back).


def _closed_station(election) -> None:
    close(election.client("tlv-01"))


def _closed_round(election) -> None:
    close_round(election=election.election, number=1, actor="committee")


def _checked_in(election) -> None:
    assert check_in(election.client("tlv-01"), "1001").status_code == 201


CHECK_IN_REFUSALS = {
    "not-in-electorate": (None, "any-01", "1004", 403, "not_in_electorate"),
    "unknown-member": (None, "any-01", "9999", 403, "not_in_electorate"),
    "wrong-station": (None, "tlv-01", "1002", 403, "wrong_station"),
    "already-voted": (_checked_in, "any-01", "1001", 409, "already_voted"),
    "station-closed": (_closed_station, "tlv-01", "1003", 409, "station_closed"),
    "round-closed": (_closed_round, "any-01", "1003", 409, "round_not_open"),
}


@pytest.mark.parametrize("case", CHECK_IN_REFUSALS)
def test_a_refused_check_in_writes_nothing(election, case):
    before, station, member_no, status, code = CHECK_IN_REFUSALS[case]
    if before:
        before(election)
    with nothing_written():
        refused(check_in(election.client(station), member_no), status, code)


BALLOT_ID = "6f1c1a3e-4b5d-4c8e-9a7b-2d3e4f5a6b7c"


def _voted(election) -> None:
    tlv = election.client("tlv-01")
    for member_no in ("1001", "1003"):
        assert check_in(tlv, member_no).status_code == 201
    assert cast(tlv, "peretz", BALLOT_ID).status_code == 201


def _checked_in_and_voted(election) -> None:
    _checked_in(election)
    assert cast(election.client("tlv-01"), "peretz").status_code == 201


def _voted_and_sealed(election) -> None:
    anywhere = election.client("any-01")
    assert check_in(anywhere, "1002").status_code == 201
    assert cast(anywhere, "peretz", BALLOT_ID).status_code == 201
    assert close(anywhere).status_code == 200
    assert check_in(election.client("tlv-01"), "1001").status_code == 201


BALLOT_REFUSALS = {
    "no-check-in": (None, "peretz", None, 409, "no_voter_for_ballot"),
    "unknown-choice": (_checked_in, "mitzna", None, 400, "unknown_choice"),
    "second-ballot": (_checked_in_and_voted, "herzog", None, 409, "no_voter_for_ballot"),
    "replay-other-choice": (_voted, "herzog", BALLOT_ID, 409, "idempotency_conflict"),
    "sealed-elsewhere": (_voted_and_sealed, "peretz", BALLOT_ID, 409, "idempotency_conflict"),
    "station-closed": (lambda e: (_checked_in(e), _closed_station(e)), "peretz", None, 409, "station_closed"),
    "round-closed": (lambda e: (_checked_in(e), _closed_round(e)), "peretz", None, 409, "round_not_open"),
}


@pytest.mark.parametrize("case", BALLOT_REFUSALS)
def test_a_refused_ballot_writes_nothing(election, case):
    before, choice, ballot_id, status, code = BALLOT_REFUSALS[case]
    if before:
        before(election)
    with nothing_written():
        refused(cast(election.client("tlv-01"), choice, ballot_id), status, code)


def test_an_identical_replay_writes_nothing_and_answers_200(election):
    _voted(election)
    with nothing_written():
        response = cast(election.client("tlv-01"), "peretz", BALLOT_ID)
    assert (response.status_code, response.json()) == (200, {"id": BALLOT_ID, "recorded": False})
    assert counters("tlv-01") == (2, 1, False)


def test_a_ballot_id_sealed_elsewhere_stays_one_ballot(election):
    _voted_and_sealed(election)
    refused(cast(election.client("tlv-01"), "peretz", BALLOT_ID), 409, "idempotency_conflict")
    assert cast(election.client("tlv-01"), "peretz", new_id()).status_code == 201
    assert counters("tlv-01") == (1, 1, False)


def test_a_vote_stands_when_the_integrator_cannot_be_asked(election, caplog):
    # In autocommit the statement has committed before the integrator is asked: a broker that is down
    # costs the entries a wait for the periodic task, never the vote its answer.
    from unittest import mock

    from audit import tasks
    from audit.models import PendingEntry

    tlv = election.client("tlv-01")
    with mock.patch.object(tasks.integrate_entries, "delay", side_effect=ConnectionError("broker down")):
        assert check_in(tlv, "1001").status_code == 201
        assert cast(tlv, "peretz").status_code == 201
    assert counters("tlv-01") == (1, 1, False)
    assert PendingEntry.objects.count() == 2
    assert "periodic task" in caplog.text


def test_a_station_whose_branches_are_not_a_list_is_left_to_the_step_by_step_path(election):
    from django.db.models import JSONField, Value

    from ballots.models import Station

    # JSON null, which Station.serves reads as every branch.
    Station.objects.filter(code="tlv-01").update(branches=Value(None, output_field=JSONField()))
    assert check_in(election.client("tlv-01"), "1002").status_code == 201  # a sderot member
    assert counters("tlv-01") == (1, 0, False)


def test_a_replayed_ballot_meets_no_key_the_server_would_log(election):
    # PostgreSQL logs every key it refuses ("Key (id)=(…) already exists") with the time: a replay
    # refused that way would put the ballot's id in the server's log moments after its voter's check-in.
    tlv, anywhere = election.client("tlv-01"), election.client("any-01")
    assert check_in(tlv, "1001").status_code == 201 and check_in(tlv, "1003").status_code == 201
    assert check_in(anywhere, "1002").status_code == 201  # a check-in to spare at any-01
    assert cast(tlv, "peretz", BALLOT_ID).status_code == 201
    failures = []

    def watch(execute, sql, params, many, context):
        try:
            return execute(sql, params, many, context)
        except Exception as exc:
            failures.append(exc)
            raise

    with connection.execute_wrapper(watch):
        assert cast(tlv, "peretz", BALLOT_ID).status_code == 200  # identical replay
        refused(cast(tlv, "herzog", BALLOT_ID), 409, "idempotency_conflict")
        assert close(tlv).status_code == 200
        refused(cast(anywhere, "peretz", BALLOT_ID), 409, "idempotency_conflict")  # sealed at tlv-01
    assert failures == []
