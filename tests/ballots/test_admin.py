"""The election admin: the station manager's tokens, the committee's electorate and resolutions, live
reconciliation of stations, and each group kept to its part."""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from audit.models import Entry
from ballots.models import Elector, Seal, StationToken
from ballots.services.setup import hash_key
from ballots.services.station import check_in_voter, close_station, enter_return
from members.services import import_roster
from tests.conftest import ROSTER_HEADER, Election, csv_stream


def official(username: str, group: str) -> User:
    user = User.objects.create_user(username=username, password="correct horse battery", is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_the_station_manager_issues_a_token_shown_once(client, manager, election):
    client.force_login(manager)
    station = election.station("tlv-01")
    page = client.post(reverse("admin:ballots_stationtoken_add"), {"station": station.pk})
    key = re.search(r"<code[^>]*>([A-Za-z0-9_\-]{40,})</code>", page.text).group(1)
    token = StationToken.objects.get(key_hash=hash_key(key))
    assert token.station == station and token.created_by == "moshe"
    assert key not in client.get(reverse("admin:ballots_stationtoken_change", args=[token.pk])).text
    assert election.client(None).get("/api/v1/station/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200


def test_the_station_manager_revokes_a_token_and_it_stops_at_once(client, manager, election):
    client.force_login(manager)
    token = StationToken.objects.get(station__code="tlv-01")
    response = client.post(
        reverse("admin:ballots_stationtoken_changelist"), {"action": "revoke", "_selected_action": [token.pk]}
    )
    assert response.status_code == 302
    assert election.client("tlv-01").get("/api/v1/station/").status_code == 401
    assert Entry.objects.filter(action="station.token_revoked").count() == 1


def test_the_station_manager_sees_stations_and_tokens_only(client, manager, election):
    client.force_login(manager)
    assert client.get(reverse("admin:ballots_station_changelist")).status_code == 200
    for name in ("ballots_election", "ballots_elector", "ballots_returnresolution", "members_member", "audit_entry"):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 403, name


def test_the_station_list_shows_the_live_reconciliation(client, committee, election):
    tlv = election.client("tlv-01")
    tlv.post("/api/v1/station/checkins/", {"member_no": "1001"}, format="json")
    tlv.post("/api/v1/station/ballots/", {"id": str(uuid.uuid4()), "choice": "peretz"}, format="json")
    client.force_login(committee)
    page = client.get(reverse("admin:ballots_station_changelist"))
    row = re.search(r"<tr[^>]*>(?:(?!</tr>).)*tlv-01(?:(?!</tr>).)*</tr>", page.text, re.S).group(0)
    cells = re.findall(r'<td class="field-(checkins|ballots)">(\d+)</td>', row)
    assert cells == [("checkins", "1"), ("ballots", "1")]


def test_the_committee_removes_a_member_from_the_electorate_with_a_reason(client, committee, election):
    client.force_login(committee)
    form = {"election": election.election.pk, "member_no": "1003", "change": "remove", "reason": "Died on 2011-09-01"}
    response = client.post(reverse("admin:ballots_elector_add"), form)
    assert response.status_code == 302
    assert Elector.objects.get(member__member_no="1003").removed_by == "dana"
    entry = Entry.objects.get(action="electorate.changed")
    assert entry.payload["change"] == "removed" and entry.payload["reason"] == "Died on 2011-09-01"
    refused = election.client("tlv-01").post("/api/v1/station/checkins/", {"member_no": "1003"}, format="json")
    assert refused.json()["code"] == "not_in_electorate"


def test_a_change_of_the_electorate_without_a_reason_is_refused(client, committee, election):
    client.force_login(committee)
    form = {"election": election.election.pk, "member_no": "1003", "change": "remove", "reason": ""}
    page = client.post(reverse("admin:ballots_elector_add"), form)
    assert page.status_code == 200 and "This field is required" in page.text
    assert Elector.objects.get(member__member_no="1003").removed_at is None


@pytest.fixture
def haifa_election(small_roster):
    """The election with two Haifa members in the electorate, both checked in at the paper station."""
    import_roster(
        actor="rina",
        stream=csv_stream(
            ROSTER_HEADER
            + "1101,Rina,Shamir,haifa,2000-01-01,active,,,\n"
            + "1102,Gal,Oren,haifa,2001-01-01,active,,,\n"
        ),
    )
    election = Election()
    for member_no in ("1101", "1102"):
        check_in_voter(station=election.station("hfa-01"), member_no=member_no)
    return election


def test_the_committee_resolves_differing_returns(client, committee, haifa_election):
    election = haifa_election
    haifa = election.station("hfa-01")
    close_station(station=haifa, actor="hfa-01")
    first = {"counts": {"yachimovich": 1, "peretz": 1, "herzog": 0}, "blank": 0, "invalid": 0, "total": 2}
    enter_return(station=haifa, entry=1, actor="hfa-01", **first)
    second = {**first, "counts": {"yachimovich": 2, "peretz": 0, "herzog": 0}}
    status, _ = enter_return(station=haifa, entry=2, actor="hfa-01", **second)
    assert status == "entries_differ"
    client.force_login(committee)
    awaiting = client.get(reverse("admin:ballots_stationreturn_changelist"), {"awaiting": "yes"}).text
    assert awaiting.count('class="field-station') == 2 and "hfa-01" in awaiting
    form = {
        "round": election.round.pk, "station": haifa.pk, "counts": '{"yachimovich": 1, "peretz": 1, "herzog": 0}',
        "blank": 0, "invalid": 0, "total": 2, "reason": "Entry 2 mistyped; checked against the tally sheet",
    }  # fmt: skip
    response = client.post(reverse("admin:ballots_returnresolution_add"), form)
    assert response.status_code == 302
    assert Seal.objects.get(station=haifa).source == "resolution"
    awaiting = client.get(reverse("admin:ballots_stationreturn_changelist"), {"awaiting": "yes"}).text
    assert 'class="field-station' not in awaiting  # no row left


def test_the_committee_cannot_issue_tokens_or_touch_the_roster(client, committee, election):
    client.force_login(committee)
    assert client.get(reverse("admin:ballots_stationtoken_add")).status_code == 403
    assert client.get(reverse("admin:members_member_add")).status_code == 403
    assert client.get(reverse("admin:ballots_election_changelist")).status_code == 200


def test_the_committee_certifies_in_the_admin(client, election):
    from ballots.services.count import tally_round
    from ballots.services.setup import close_round

    tlv = election.client("tlv-01")
    for member_no, choice in (("1001", "yachimovich"), ("1003", "yachimovich")):
        tlv.post("/api/v1/station/checkins/", {"member_no": member_no}, format="json")
        tlv.post("/api/v1/station/ballots/", {"id": str(uuid.uuid4()), "choice": choice}, format="json")
    close_round(election=election.election, number=1, actor="dana")
    nobody = {"counts": {"yachimovich": 0, "peretz": 0, "herzog": 0}, "blank": 0, "invalid": 0, "total": 0}
    for entry in (1, 2):  # Haifa's paper station had no voter; its clerks report so
        enter_return(station=election.station("hfa-01"), entry=entry, actor="hfa-01", **nobody)
    tally_round(election=election.election, number=1, actor="dana")
    changelist = reverse("admin:ballots_round_changelist")
    for username in ("dana", "yossi"):
        member = official(username, "election committee")
        client.force_login(member)
        form = {"action": "certify", "_selected_action": [election.round.pk], "post": "yes"}
        page = client.post(changelist, form, follow=True)
        assert page.status_code == 200
    assert "certified (2 of 2)" in page.text
    election.round.refresh_from_db()
    assert election.round.certified_tally is not None
    assert Entry.objects.filter(action="round.approved").count() == 2
