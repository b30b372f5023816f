"""Who may use the station API: a device token, for its own station only; everyone else gets a 401 envelope."""

from __future__ import annotations

import copy
import secrets

import pytest
from django.test import Client
from rest_framework.test import APIRequestFactory, force_authenticate

from audit.models import Entry
from ballots import api
from ballots.authentication import IsStationDevice, StationTokenAuthentication
from ballots.models import CheckIn, Round, StationToken
from ballots.services import setup
from ballots.services.setup import issue_station_token, revoke_station_token
from tests.ballots.station_api import (
    cast,
    check_in,
    close,
    counters,
    figures,
    new_id,
    nothing_written,
    refused,
    url,
)
from tests.conftest import ELECTION_FILE

BALLOT_ID = "6f1c1a3e-4b5d-4c8e-9a7b-2d3e4f5a6b7c"

# Every station endpoint, with a body that a valid device could send.
ENDPOINTS = {
    "station": ("get", "", None),
    "voter": ("get", "voters/1001/", None),
    "checkin": ("post", "checkins/", {"member_no": "1001"}),
    "ballot": ("post", "ballots/", {"id": BALLOT_ID, "choice": "peretz"}),
    "batch": ("post", "ballots/batch/", {"ballots": [{"id": BALLOT_ID, "choice": "peretz"}]}),
    "return": ("post", "returns/", {"entry": 1, **figures()}),
    "close": ("post", "close/", None),
}


def send(client, endpoint: str):
    method, path, body = ENDPOINTS[endpoint]
    if method == "get":
        return client.get(url(path))
    return client.post(url(path), body, format="json")


def _header(value_of):
    def give(election, client, superuser):
        client.credentials(HTTP_AUTHORIZATION=value_of(election))

    return give


def _revoked(election, client, superuser):
    token = StationToken.objects.get(station__code="tlv-01")
    assert revoke_station_token(token=token, actor="manager")
    client.credentials(HTTP_AUTHORIZATION=f"Token {election.tokens['tlv-01']}")


def _admin_session(election, client, superuser):
    client.force_login(superuser)


CREDENTIALS = {
    "anonymous": lambda election, client, superuser: None,
    "keyword without a key": _header(lambda e: "Token"),
    "key with trailing words": _header(lambda e: f"Token {e.tokens['tlv-01']} tlv-01"),
    "key that is not ascii": _header(lambda e: "Token clé"),
    "another scheme": _header(lambda e: f"Bearer {e.tokens['tlv-01']}"),
    "key without the keyword": _header(lambda e: e.tokens["tlv-01"]),
    "unknown token": _header(lambda e: f"Token {secrets.token_urlsafe(32)}"),
    "revoked token": _revoked,
    "admin session without a token": _admin_session,
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("credential", CREDENTIALS)
def test_it_refuses_every_endpoint_without_a_valid_device_token(election, superuser, credential, endpoint):
    client = election.client(None)
    CREDENTIALS[credential](election, client, superuser)
    with nothing_written():
        response = send(client, endpoint)
    refused(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_it_lets_a_valid_token_through_to_every_endpoint(election, endpoint):
    # The other side of the matrix: the same requests with tlv-01's token are not refused for want of
    # a credential (the return is tlv-01's wrong_mode, the rest succeed or answer their own refusal).
    if endpoint in ("ballot", "batch"):
        check_in(election.client("tlv-01"), "1001")
    response = send(election.client("tlv-01"), endpoint)
    assert response.status_code not in (401, 403), response.json()


def test_it_refuses_a_revoked_token_on_its_very_next_request(election):
    tlv = election.client("tlv-01")
    assert tlv.get(url()).status_code == 200
    token = StationToken.objects.get(station__code="tlv-01")
    assert revoke_station_token(token=token, actor="manager") is True
    refused(tlv.get(url()), 401, "not_authenticated")
    with nothing_written():
        refused(check_in(tlv, "1001"), 401, "not_authenticated")
    assert Entry.objects.filter(action="station.token_revoked").count() == 1
    assert revoke_station_token(token=token, actor="manager") is False  # safe to repeat, audited once
    assert Entry.objects.filter(action="station.token_revoked").count() == 1


def test_it_keeps_the_other_tokens_of_a_station_working_when_one_is_revoked(election):
    _, spare_key = issue_station_token(station=election.station("tlv-01"), actor="manager")
    revoke_station_token(token=StationToken.objects.get(key_hash=setup.hash_key(election.tokens["tlv-01"])), actor="m")
    spare = election.client(None)
    spare.credentials(HTTP_AUTHORIZATION=f"Token {spare_key}")
    assert check_in(spare, "1001").status_code == 201
    refused(check_in(election.client("tlv-01"), "1003"), 401, "not_authenticated")
    assert counters("tlv-01") == (1, 0, False)


def test_it_answers_an_officials_admin_session_with_401_and_an_envelope_not_a_login_page(election, superuser):
    browser = Client()
    assert browser.login(username="root", password="correct horse battery")
    assert browser.get("/admin/").status_code == 200  # a live admin session
    response = browser.post(url("checkins/"), {"member_no": "1001"}, content_type="application/json")
    refused(response, 401, "not_authenticated")
    assert not CheckIn.objects.exists()


def test_it_can_only_reach_permission_denied_with_a_non_device_user_which_no_request_can_carry(election, superuser):
    # Every station view authenticates by device token alone, so a request without one is "not
    # authenticated" (401) before any permission is checked: `permission_denied` is unreachable over
    # HTTP. IsStationDevice is the guard behind it; forcing an official in shows its answer.
    views = [
        api.StationInfoView, api.VoterView, api.CheckInView, api.BallotView, api.BallotBatchView, api.ReturnView,
        api.CloseView,
    ]  # fmt: skip
    for view in views:
        assert view.authentication_classes == [StationTokenAuthentication]
        assert view.permission_classes == [IsStationDevice]
    request = APIRequestFactory().post(url("checkins/"), {"member_no": "1001"}, format="json")
    force_authenticate(request, user=superuser)
    with nothing_written():
        response = api.CheckInView.as_view()(request)
    response.render()
    refused(response, 403, "permission_denied")


@pytest.mark.parametrize("code", ["tlv-01", "hfa-01", "any-01"])
def test_it_tells_each_device_its_own_station(election, code):
    body = election.client(code).get(url()).json()
    station = election.station(code)
    assert (body["station"], body["name"], body["mode"]) == (code, station.name, station.mode)


def test_it_lands_a_check_in_at_the_station_of_the_token_whatever_the_body_says(election):
    response = election.client("tlv-01").post(
        url("checkins/"), {"member_no": "1001", "station": "any-01"}, format="json"
    )
    assert response.status_code == 201
    assert CheckIn.objects.get().station.code == "tlv-01"
    assert counters("tlv-01") == (1, 0, False)
    assert counters("any-01") == (0, 0, False) and counters("hfa-01") == (0, 0, False)
    entry = Entry.objects.get(action="voter.checked_in")
    assert entry.actor == "tlv-01" and entry.payload["station"] == "tlv-01"


def test_it_gives_no_token_a_way_to_spend_another_stations_check_ins(election):
    assert check_in(election.client("tlv-01"), "1001").status_code == 201
    # any-01 has no check-in of its own: tlv-01's check-in does not let it record a ballot.
    with nothing_written():
        refused(cast(election.client("any-01"), "peretz"), 409, "no_voter_for_ballot")
    assert counters("tlv-01") == (1, 0, False)
    assert counters("any-01") == (0, 0, False)


def test_it_closes_only_the_station_of_the_token(election):
    assert close(election.client("tlv-01")).status_code == 200
    assert counters("tlv-01") == (0, 0, True)
    assert counters("any-01") == (0, 0, False) and counters("hfa-01") == (0, 0, False)
    assert check_in(election.client("any-01"), "1002").status_code == 201
    assert Entry.objects.get(action="station.closed").payload["station"] == "tlv-01"


def test_it_keeps_a_token_of_another_election_out_of_this_one(election):
    other_file = copy.deepcopy(ELECTION_FILE)
    other_file.update(slug="labor-2011-referendum", name="Member referendum 2011")
    other, _ = setup.load_election(data=other_file, actor="committee")
    setup.freeze_electorate(election=other, actor="committee")
    other_round = setup.open_round(election=other, number=1, actor="committee")
    _, other_key = issue_station_token(station=other.stations.get(code="tlv-01"), actor="manager")
    device = election.client(None)
    device.credentials(HTTP_AUTHORIZATION=f"Token {other_key}")

    assert device.get(url()).json()["election"] == "labor-2011-referendum"
    assert check_in(device, "1001").status_code == 201
    assert CheckIn.objects.get().round == other_round
    assert counters("tlv-01", election="labor-2011-referendum") == (1, 0, False)
    assert counters("tlv-01") == (0, 0, False)  # this election's tlv-01 is untouched
    assert election.client("tlv-01").get(url("voters/1001/")).json()["voted"] is False
    assert check_in(election.client("tlv-01"), "1001").status_code == 201
    assert CheckIn.objects.filter(round=election.round).count() == 1
    assert Round.objects.filter(status="open").count() == 2


def test_it_writes_nothing_when_a_device_only_looks(election):
    tlv = election.client("tlv-01")
    with nothing_written():
        assert tlv.get(url()).status_code == 200
        assert tlv.get(url("voters/1001/")).status_code == 200
        assert tlv.get(url(f"voters/{new_id()}/")).json()["in_electorate"] is False


# A check-in and a ballot do not look a token up before the view once this process has found it live:
# their one statement checks it (StationTokenAuthentication). Revoked after that, the token still gets
# its 401 on its very next request, before any other answer, and nothing is written.
REVOKED_AFTER_USE = {  # the request, and whether tlv-01 has a check-in to spare for a ballot
    "checkin": (lambda c: check_in(c, "1003"), False),
    "ballot": (lambda c: cast(c, "peretz"), True),
    "replayed-ballot": (lambda c: cast(c, "herzog", SEEN_BALLOT), True),
    "checkin-bad-body": (lambda c: c.post(url("checkins/"), {"member_no": ""}, format="json"), False),
    "ballot-bad-id": (lambda c: cast(c, "peretz", "not-a-uuid"), True),
    "ballot-unknown-choice": (lambda c: cast(c, "mitzna"), True),
    "already-voted": (lambda c: check_in(c, "1001"), False),
}
SEEN_BALLOT = "6f1c1a3e-4b5d-4c8e-9a7b-2d3e4f5a6b7c"


@pytest.mark.parametrize("request_", REVOKED_AFTER_USE)
def test_a_token_revoked_after_a_vote_is_refused_on_the_next_check_in_or_ballot(election, request_):
    send, spare = REVOKED_AFTER_USE[request_]
    tlv = election.client("tlv-01")
    assert check_in(tlv, "1001").status_code == 201
    assert cast(tlv, "peretz", SEEN_BALLOT).status_code == 201  # tlv-01's token: seen live, twice
    if spare:
        assert check_in(tlv, "1003").status_code == 201
    revoke_station_token(token=StationToken.objects.get(station__code="tlv-01"), actor="manager")
    with nothing_written():
        refused(send(tlv), 401, "not_authenticated")
    assert tlv.get(url()).status_code == 401


def test_a_token_seen_live_acts_only_for_its_own_station(election):
    tlv, anywhere = election.client("tlv-01"), election.client("any-01")
    assert check_in(tlv, "1001").status_code == 201 and check_in(anywhere, "1003").status_code == 201
    assert cast(tlv, "peretz").status_code == 201 and cast(anywhere, "herzog").status_code == 201
    assert counters("tlv-01") == (1, 1, False) and counters("any-01") == (1, 1, False)
    refused(check_in(tlv, "1003"), 409, "already_voted")  # a tel-aviv member, checked in at any-01
    refused(cast(tlv, "blank"), 409, "no_voter_for_ballot")  # tlv-01's one voter has voted
