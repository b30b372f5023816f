"""Officials' actions write their audit entries in the statement of the change itself (PostgreSQL).

A separate `audit.record` statement costs a one-row change about half as much again as the change
(docs/benchmarks.md); `audit.services.save_with_entry` writes the row and its entry together. Here a
whole night of officials' actions runs, and `record`'s own statement never does.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit import services as audit
from audit.models import Entry
from ballots.models import Publication, Seal
from ballots.services import setup
from ballots.services.count import certify_round
from tests.ballots.test_tally import HAIFA_MEMBERS, check_in, close, committee_member, paper_return, tally, vote
from tests.conftest import is_postgres


@pytest.fixture
def voted(haifa_election):
    vote(haifa_election, "tlv-01", ["1001", "1003"], ["yachimovich", "peretz"])
    vote(haifa_election, "any-01", ["1002", HAIFA_MEMBERS[0]], ["yachimovich", "blank"])
    check_in(haifa_election, "hfa-01", HAIFA_MEMBERS[1:5])
    return haifa_election


def test_a_night_of_officials_actions_never_sends_an_entry_on_its_own(voted, django_capture_on_commit_callbacks):
    if not is_postgres():
        pytest.skip("SQLite has no writes in a WITH: its entries are statements of their own")
    for username in ("dana", "eli"):
        committee_member(username)
    User.objects.create_user("tamar", is_staff=True)
    last = Entry.objects.order_by("-id").values_list("id", flat=True).first() or 0
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=True):
        token, _ = setup.issue_station_token(station=voted.station("tlv-01"), actor="manager")
        assert setup.revoke_station_token(token=token, actor="manager")
        setup.change_electorate(election=voted.election, member_no="1004", add=True, reason="appeal", actor="dana")
        setup.change_electorate(election=voted.election, member_no="1004", add=False, reason="error", actor="dana")
        setup.add_official(username="tamar", role="auditor", password="", actor="committee")
        close(voted)
        paper_return(voted, {"yachimovich": 1, "peretz": 0, "herzog": 2}, invalid=1)
        tally(voted)
        for username in ("dana", "eli"):
            certify_round(election=voted.election, number=1, username=username)
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [s for s in statements if s == audit._RECORD_POSTGRES]
    written = set(Entry.objects.filter(id__gt=last).values_list("action", flat=True))
    assert written == {
        "station.token_issued", "station.token_revoked", "electorate.changed", "official.added", "round.closed",
        "station.closed", "station.sealed", "return.entered", "round.tallied", "round.approved", "round.certified",
        "results.published",
    }  # fmt: skip
    for seal in Seal.objects.all():
        assert seal.entry.action == "station.sealed" and seal.entry.payload["station"] == seal.station.code
    publication = Publication.objects.get(status="official")
    assert publication.entry.action == "results.published" and publication.entry.payload["status"] == "official"


def test_a_role_the_official_already_holds_writes_no_entry(db):
    User.objects.create_user("tamar", is_staff=True).groups.add(Group.objects.get(name="auditor"))
    setup.add_official(username="tamar", role="auditor", password="", actor="committee")
    assert not Entry.objects.filter(action="official.added").exists()
    setup.add_official(username="tamar", role="committee", password="", actor="committee")
    [entry] = Entry.objects.filter(action="official.added")
    assert entry.payload == {"username": "tamar", "role": "committee", "created": False}
    assert sorted(User.objects.get(username="tamar").groups.values_list("name", flat=True)) == [
        "auditor", "election committee"
    ]  # fmt: skip
