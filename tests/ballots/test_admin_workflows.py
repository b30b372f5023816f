"""The committee's workflows in the admin: each action shows what it will do, does it only once confirmed,
through its service (so the audit log has it), and shows the service's refusal without writing anything;
and the election-day dashboard, in a handful of queries whatever the size of the day."""

from __future__ import annotations

import html
import re
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.text import capfirst

from audit.models import Entry
from ballots.models import Election, Round, StationRound
from ballots.services import setup
from ballots.services.count import tally_round
from ballots.services.station import close_station, enter_return
from tests.ballots.conftest import act
from tests.ballots.station_api import cast, check_in, figures
from tests.conftest import ELECTION_FILE

JERUSALEM = ZoneInfo("Asia/Jerusalem")
CELL = r"<t[hd][^>]*>(.*?)</t[hd]>"


def shown(page, level: str) -> list[str]:
    """The page's messages of this level, as the admin shows them (first letter capitalised)."""
    return [html.unescape(m) for m in re.findall(rf'<li class="{level}">(.*?)</li>', page.text, re.S)]


def said(obj, text: str) -> str:
    return capfirst(f"{obj}: {text}")


def entries(action: str) -> int:
    return Entry.objects.filter(action=action).count()


@pytest.fixture
def draft(small_roster) -> Election:
    election, _ = setup.load_election(data=ELECTION_FILE, actor="committee")
    return election


def test_it_freezes_the_electorate_after_showing_who_becomes_it(client, committee, draft):
    client.force_login(committee)
    page = act(client, "election", "freeze_electorate", [draft], confirm=False)
    assert page.status_code == 200
    assert "3 members of the roster are eligible now and become the electorate." in page.text
    assert 'name="post" value="yes"' in page.text and 'value="Yes, freeze the electorate"' in page.text
    assert entries("electorate.frozen") == 0  # the confirmation page writes nothing

    page = act(client, "election", "freeze_electorate", [draft])
    assert shown(page, "success") == [said(draft, "electorate frozen, 3 members.")]
    draft.refresh_from_db()
    assert draft.status == Election.Status.FROZEN
    assert Entry.objects.get(action="electorate.frozen").actor == "dana"


def test_it_refuses_a_second_freeze_with_the_services_message(client, committee, draft):
    setup.freeze_electorate(election=draft, actor="committee")
    client.force_login(committee)
    assert "Already frozen on" in act(client, "election", "freeze_electorate", [draft], confirm=False).text
    page = act(client, "election", "freeze_electorate", [draft])
    assert shown(page, "error") == [said(draft, "The electorate of labor-2011 is already frozen.")]
    assert shown(page, "success") == []
    assert entries("electorate.frozen") == 1


def test_it_opens_a_round_after_the_confirmation(client, committee, scheduled_election):
    round_ = scheduled_election.round
    client.force_login(committee)
    page = act(client, "round", "open_round", [round_], confirm=False)
    assert "On the ballot: Shelly Yachimovich, Amir Peretz, Isaac Herzog." in page.text
    assert "Electorate: 3 members; 3 stations." in page.text
    round_.refresh_from_db()
    assert round_.status == Round.Status.SCHEDULED and entries("round.opened") == 0

    page = act(client, "round", "open_round", [round_])
    assert shown(page, "success") == [said(round_, "opened.")]
    round_.refresh_from_db()
    assert round_.status == Round.Status.OPEN
    assert Entry.objects.get(action="round.opened").actor == "dana"
    assert scheduled_election.client("tlv-01").get("/api/v1/station/").json()["round"]["status"] == "open"


def test_it_does_not_open_a_round_before_the_electorate_is_frozen(client, committee, draft):
    client.force_login(committee)
    page = act(client, "round", "open_round", [draft.rounds.get()])
    assert shown(page, "error") == [said(draft.rounds.get(), "Freeze the electorate before opening a round.")]
    assert draft.rounds.get().status == Round.Status.SCHEDULED and entries("round.opened") == 0


def test_it_closes_a_round_and_its_open_stations(client, committee, election):
    tlv = election.client("tlv-01")
    check_in(tlv, "1001")
    cast(tlv, "peretz")
    close_station(station=election.station("any-01"), actor="any-01")
    client.force_login(committee)
    page = act(client, "round", "close_round", [election.round], confirm=False)
    assert "So far 1 check-ins and 1 electronic ballots at 3 stations." in page.text
    assert "Closed now, and sealed if electronic: tlv-01, hfa-01." in page.text
    assert StationRound.objects.filter(closed_at__isnull=True).count() == 2

    page = act(client, "round", "close_round", [election.round])
    assert shown(page, "success") == [said(election.round, "closed.")]
    election.round.refresh_from_db()
    assert election.round.status == Round.Status.CLOSED
    assert not StationRound.objects.filter(closed_at__isnull=True).exists()
    assert Entry.objects.get(action="round.closed").actor == "dana"

    page = act(client, "round", "close_round", [election.round])  # twice: the service refuses
    assert shown(page, "error") == [said(election.round, "Round 1 is closed; only an open round closes.")]
    assert entries("round.closed") == 1


def counted(election) -> None:
    """Two Tel Aviv ballots for Yachimovich, the round closed, Haifa's empty return, the tally."""
    tlv = election.client("tlv-01")
    for member_no in ("1001", "1003"):
        check_in(tlv, member_no)
        cast(tlv, "yachimovich")
    setup.close_round(election=election.election, number=1, actor="dana")
    for entry in (1, 2):
        enter_return(station=election.station("hfa-01"), entry=entry, actor="hfa-01", **figures())
    tally_round(election=election.election, number=1, actor="dana")


def test_the_certification_page_shows_the_tally_being_approved(client, committee, election):
    counted(election)
    client.force_login(committee)
    page = act(client, "round", "certify", [election.round], confirm=False)
    assert "decision winner, complete (3 of 3 stations reported)" in page.text
    assert "Shelly Yachimovich: 2 votes (100.00%)" in page.text
    assert election.round.tallies.get().sha256 in page.text
    assert "Approved so far by nobody (0 of 2); you approve as dana, once." in page.text
    assert 'value="Yes, I approve (dana)"' in page.text
    assert entries("round.approved") == 0


def test_a_committee_member_approves_once(client, committee, election):
    counted(election)
    client.force_login(committee)
    page = act(client, "round", "certify", [election.round])
    assert shown(page, "success") == [said(election.round, "approved (1 of 2).")]
    assert "Approved so far by dana (1 of 2)" in act(client, "round", "certify", [election.round], confirm=False).text
    page = act(client, "round", "certify", [election.round])
    assert shown(page, "error") == [said(election.round, "This member has already approved this tally.")]
    assert entries("round.approved") == 1


def test_it_certifies_nothing_before_a_tally(client, committee, election):
    client.force_login(committee)
    assert "No tally yet: nothing to approve." in act(client, "round", "certify", [election.round], confirm=False).text
    page = act(client, "round", "certify", [election.round])
    assert len(shown(page, "error")) == 1 and entries("round.approved") == 0


def test_it_sets_the_dates_of_a_round_that_has_not_opened(client, committee, scheduled_election):
    round_ = scheduled_election.round
    client.force_login(committee)
    page = act(client, "round", "set_dates", [round_], confirm=False)
    assert 'type="datetime-local"' in page.text
    assert 'value="2011-09-12T07:00"' in page.text  # the current dates, in Israel's time

    page = act(client, "round", "set_dates", [round_], opens_at="2011-09-19T07:00", closes_at="2011-09-19T22:00")
    assert shown(page, "success") == [said(round_, "now 2011-09-19 07:00 to 2011-09-19 22:00.")]
    round_.refresh_from_db()
    assert round_.opens_at == datetime(2011, 9, 19, 7, tzinfo=JERUSALEM)
    assert round_.closes_at == datetime(2011, 9, 19, 22, tzinfo=JERUSALEM)
    entry = Entry.objects.get(action="round.scheduled")
    assert (entry.actor, entry.payload["opens_at"]) == ("dana", "2011-09-19T07:00:00+03:00")


def test_it_refuses_dates_the_service_refuses(client, committee, scheduled_election):
    round_ = scheduled_election.round
    client.force_login(committee)
    page = act(client, "round", "set_dates", [round_], opens_at="2011-09-19T22:00", closes_at="2011-09-19T07:00")
    assert shown(page, "error") == [said(round_, "A round closes after it opens.")]
    setup.open_round(election=scheduled_election.election, number=1, actor="dana")
    page = act(client, "round", "set_dates", [round_], opens_at="2011-09-19T07:00", closes_at="2011-09-19T22:00")
    assert shown(page, "error") == [said(round_, "Only a round that has not opened can be moved.")]
    page = act(client, "round", "set_dates", [round_], opens_at="not a date", closes_at="2011-09-19T22:00")
    assert page.status_code == 200 and "Enter a valid date/time." in page.text  # the form again, with its error
    assert entries("round.scheduled") == 0


def test_it_sets_the_dates_of_one_round_at_a_time(client, committee, scheduled_election):
    first = scheduled_election.round
    second = Round.objects.create(election=first.election, number=2, opens_at=first.opens_at, closes_at=first.closes_at)
    client.force_login(committee)
    page = act(client, "round", "set_dates", [first, second], confirm=False)
    assert shown(page, "error") == ["Select one round to set its dates."]


def test_saving_a_round_unchanged_writes_nothing(client, committee, election):
    # The change form of an open round has its dates read-only: saving it is not a reschedule.
    client.force_login(committee)
    response = client.post(reverse("admin:ballots_round_change", args=[election.round.pk]), {}, follow=True)
    assert response.status_code == 200
    assert shown(response, "error") == [] and entries("round.scheduled") == 0


# The dashboard.


def dashboard(client, election):
    return client.get(reverse("admin:ballots_election_dashboard", args=[election.election.pk]))


def table_rows(page, table_id: str) -> list[list[str]]:
    """The body rows of the table with this id, as the texts of their cells."""
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page.text, re.S).group(0)
    body = re.search(r"<tbody>(.*)</tbody>", table, re.S).group(1)
    return [
        [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split()) for cell in re.findall(CELL, row, re.S)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)
    ]


def test_the_dashboard_shows_the_day_at_a_glance(client, committee, polling_day):
    client.force_login(committee)
    page = dashboard(client, polling_day)
    assert page.status_code == 200
    # Electors: tlv-01 serves Tel Aviv (1001, 1003), hfa-01 Haifa (six), any-01 Sderot (1002).
    stations = table_rows(page, "stations")
    haifa_closed = stations[1][5]
    assert re.fullmatch(r"closed \d\d:\d\d", haifa_closed)  # closed, its count not in yet
    assert stations == [
        ["tlv-01 electronic", "2", "2", "100.00%", "1", "open"],
        ["hfa-01 paper", "6", "2", "33.33%", "—", haifa_closed],
        ["any-01 electronic", "1", "0", "0.00%", "0", "open"],
    ]
    assert "4 checked in of 9" in page.text and "44.44%" in page.text
    assert re.search(r"Still open:</strong>\s*tlv-01, any-01</li>", page.text)
    assert re.search(r"Not yet reported:</strong>\s*tlv-01, hfa-01, any-01</li>", page.text)
    assert table_rows(page, "warnings") == [
        ["hfa-01", "1", "W201", "the total 1 is below the station's 2 check-ins"],
        ["hfa-01", "1", "W203", "'yachimovich' has above 90% of the station's votes (1 of 1)"],
    ]
    assert table_rows(page, "differing-hfa-01") == [
        ["herzog", "0", "0"], ["peretz", "0", "1"], ["yachimovich", "1", "1"],
        ["blank", "0", "0"], ["invalid", "0", "0"], ["total", "1", "2"],
    ]  # fmt: skip
    assert page.text.count('class="kalpi-differs"') == 2  # peretz and the total
    assert 'Entry 1<br><span class="kalpi-quiet">clerk-a</span>' in page.text
    resolve = reverse("admin:ballots_returnresolution_add")
    hfa = polling_day.station("hfa-01")
    assert f"{resolve}?round={polling_day.round.pk}&amp;station={hfa.pk}" in page.text
    hours = table_rows(page, "hours")
    assert len(hours) == 1 and hours[0][1:3] == ["4", "4"]
    assert '<meta http-equiv="refresh" content="60">' in page.text  # the round is open


def test_the_resolve_link_fills_in_the_round_and_the_station(client, committee, polling_day):
    client.force_login(committee)
    hfa = polling_day.station("hfa-01")
    page = client.get(reverse("admin:ballots_returnresolution_add"), {"round": polling_day.round.pk, "station": hfa.pk})
    assert f'<option value="{hfa.pk}" selected>' in page.text
    assert f'<option value="{polling_day.round.pk}" selected>' in page.text


def test_the_dashboard_drops_a_station_once_resolved_and_reported(client, committee, polling_day):
    from ballots.services.station import resolve_return

    resolve_return(
        round_=polling_day.round, station=polling_day.station("hfa-01"), reason="Recounted", actor="dana",
        **figures(1, 1),
    )  # fmt: skip
    client.force_login(committee)
    page = dashboard(client, polling_day)
    assert 'id="differing-hfa-01"' not in page.text
    assert table_rows(page, "stations")[1][4:] == ["2", "reported"]
    assert re.search(r"Not yet reported:</strong>\s*tlv-01, any-01</li>", page.text)


def test_the_dashboard_of_a_closed_round_shows_it_without_refreshing(client, committee, polling_day):
    setup.close_round(election=polling_day.election, number=1, actor="dana")
    client.force_login(committee)
    page = dashboard(client, polling_day)
    assert "Round 1, <strong>Closed</strong>" in page.text
    assert 'http-equiv="refresh"' not in page.text
    assert re.search(r"Still open:</strong>\s*none</li>", page.text)


def test_the_dashboard_of_an_election_whose_round_has_not_opened(client, committee, scheduled_election):
    client.force_login(committee)
    page = dashboard(client, scheduled_election)
    assert "Round 1, <strong>Scheduled</strong>" in page.text and "No check-ins yet." in page.text


def test_the_dashboard_takes_a_few_queries_whatever_the_size_of_the_day(
    client, committee, scheduled_election, django_assert_max_num_queries
):
    client.force_login(committee)
    election = scheduled_election
    setup.open_round(election=election.election, number=1, actor="dana")
    with CaptureQueriesContext(connection) as quiet:
        assert dashboard(client, election).status_code == 200
    tlv = election.client("tlv-01")
    for member_no in ("1001", "1003"):
        check_in(tlv, member_no)
        cast(tlv, "yachimovich")
    check_in(election.client("any-01"), "1002")
    close_station(station=election.station("hfa-01"), actor="hfa-01")
    enter_return(station=election.station("hfa-01"), entry=1, actor="a", **figures())
    enter_return(station=election.station("hfa-01"), entry=2, actor="b", **figures())
    # The session, the user and their permissions (4), the election, then the dashboard's own (5).
    with django_assert_max_num_queries(10) as busy:
        assert dashboard(client, election).status_code == 200
    assert len(busy.captured_queries) == len(quiet.captured_queries)


def test_the_election_page_and_the_index_link_to_the_dashboard(client, committee, election):
    client.force_login(committee)
    url = reverse("admin:ballots_election_dashboard", args=[election.election.pk])
    assert url in client.get(reverse("admin:ballots_election_change", args=[election.election.pk])).text
    index = client.get(reverse("admin:index")).text
    assert reverse("admin:ballots_election_dashboards") in index
    assert url in client.get(reverse("admin:ballots_election_dashboards")).text


def test_the_dashboard_of_an_unknown_election_is_a_404(client, committee, db):
    client.force_login(committee)
    assert client.get(reverse("admin:ballots_election_dashboard", args=[uuid.uuid4().int % 10**6])).status_code == 404
