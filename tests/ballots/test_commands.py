"""The election commands (DESIGN.md, "Command line"), run as an official would run them: through
`call_command`, reading what they print and the one-line errors they exit with.

Also the committee's change of a frozen electorate (`setup.change_electorate`), which has no command
yet, and the station API honouring it.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import uuid

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from audit.keys import member_pseudonym
from audit.models import Entry
from ballots.management.commands.add_official import PASSWORD_ENV
from ballots.models import Ballot, Elector, Round, Seal, StationRound, StationToken
from ballots.models import Election as ElectionModel
from ballots.services import setup
from config.errors import Invalid
from members.models import Member
from members.selectors import eligible_members
from members.services import import_roster
from tests.conftest import ELECTION_FILE, ROSTER_HEADER, csv_stream

pytestmark = pytest.mark.django_db

SLUG = ELECTION_FILE["slug"]
STRONG_PASSWORD = "violet-lantern-orbit-42"


def run(*args, **options) -> str:
    """Run a command; return what it printed."""
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


def refusal(*args, **options) -> CommandError:
    """Run a command that must refuse; return its error (which exits non-zero from the shell)."""
    with pytest.raises(CommandError) as caught:
        run(*args, **options)
    assert caught.value.returncode != 0
    return caught.value


@pytest.fixture
def election_file(tmp_path):
    """Writes an election file (ELECTION_FILE, or the given data) and returns its path."""

    def write(data=ELECTION_FILE, name: str = "election.json") -> str:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
        return str(path)

    return write


@pytest.fixture
def loaded(small_roster, election_file) -> ElectionModel:
    """The election of ELECTION_FILE loaded from its file, a draft over SMALL_ROSTER."""
    run("load_election", election_file())
    return ElectionModel.objects.get(slug=SLUG)


@pytest.fixture
def frozen(loaded) -> ElectionModel:
    run("freeze_electorate", SLUG)
    loaded.refresh_from_db()
    return loaded


# --- load_election -----------------------------------------------------------------------------


def test_it_creates_an_election_from_a_good_file(db, election_file):
    output = run("load_election", election_file())
    assert output.strip() == f"Created {SLUG}: 3 candidates, 3 stations, 1 round(s)."
    election = ElectionModel.objects.get(slug=SLUG)
    assert election.status == ElectionModel.Status.DRAFT and election.name == ELECTION_FILE["name"]
    assert list(election.candidates.values_list("code", flat=True)) == ["yachimovich", "peretz", "herzog"]
    assert list(election.stations.values_list("code", "mode")) == [
        ("tlv-01", "electronic"), ("hfa-01", "paper"), ("any-01", "electronic")
    ]  # fmt: skip
    assert list(election.rounds.values_list("number", "status")) == [(1, "scheduled")]
    entry = Entry.objects.get(action="election.loaded")
    assert entry.actor == "cli" and entry.payload["created"] is True and entry.payload["election"] == SLUG


def test_it_updates_a_draft_when_the_file_is_loaded_again(db, election_file):
    run("load_election", election_file())
    changed = copy.deepcopy(ELECTION_FILE)
    changed["name"] = "Labor Party leadership election, 2011"
    changed["candidates"].append({"code": "braverman", "name": "Avishay Braverman"})
    output = run("load_election", election_file(changed), "--user", "dana")
    assert output.strip() == f"Updated {SLUG}: 4 candidates, 3 stations, 1 round(s)."
    election = ElectionModel.objects.get(slug=SLUG)
    assert ElectionModel.objects.count() == 1 and election.name == changed["name"]
    assert election.candidates.count() == 4 and election.status == ElectionModel.Status.DRAFT
    latest = Entry.objects.filter(action="election.loaded").order_by("-id").first()
    assert latest.actor == "dana" and latest.payload["created"] is False


def test_it_writes_nothing_when_the_same_file_is_loaded_again(db, election_file):
    path = election_file()
    run("load_election", path)
    entries = Entry.objects.count()
    run("load_election", path)
    assert Entry.objects.count() == entries and ElectionModel.objects.count() == 1


def test_it_names_every_problem_of_a_bad_file_and_creates_nothing(db, election_file):
    bad = copy.deepcopy(ELECTION_FILE)
    bad["candidates"][1]["code"] = "yachimovich"  # the first candidate's code again
    bad["stations"][0]["mode"] = "online"
    bad["rule"]["threshold_percent"] = 40  # a number, not a string
    bad["rounds"][0]["closes_at"] = "2011-09-12T06:00:00+03:00"  # before it opens at 07:00
    bad["colour"] = "red"
    error = refusal("load_election", election_file(bad))
    message = str(error)
    assert message.startswith("the election file is not valid:")
    for path in (
        "candidates[1].code:",
        "stations[0].mode:",
        "rule.threshold_percent:",
        "rounds[0].closes_at:",
        "colour: unknown field",
    ):
        assert path in message, path
    assert "'yachimovich' appears twice" in message and "must be after opens_at" in message
    assert not ElectionModel.objects.exists() and not Entry.objects.filter(action="election.loaded").exists()


def test_it_refuses_a_slug_that_is_a_public_page_of_its_own(db, election_file):
    error = refusal("load_election", election_file({**ELECTION_FILE, "slug": "verify"}))
    assert "slug: 'verify' is taken by a public page (/results/verify/)" in str(error)
    assert not ElectionModel.objects.exists()


def test_it_refuses_a_file_that_is_not_json(db, election_file):
    path = election_file('{"slug": "labor-2011", ')
    assert str(refusal("load_election", path)).startswith(f"{path} is not JSON:")
    assert not ElectionModel.objects.exists()


def test_it_refuses_a_file_that_is_not_there(db, tmp_path):
    missing = tmp_path / "nowhere.json"
    assert str(refusal("load_election", str(missing))) == f"cannot read {missing}: No such file or directory"


def test_it_refuses_to_change_an_election_once_its_electorate_is_frozen(frozen, election_file):
    changed = copy.deepcopy(ELECTION_FILE)
    changed["name"] = "Something else"
    message = str(refusal("load_election", election_file(changed)))
    assert message == f"The electorate of {SLUG} is frozen; its definition can no longer change. (election_frozen)"
    frozen.refresh_from_db()
    assert frozen.name == ELECTION_FILE["name"] and frozen.candidates.count() == 3


# --- freeze_electorate -------------------------------------------------------------------------


def test_freezing_makes_the_eligible_members_the_electorate(loaded):
    eligible = eligible_members(cutoff=loaded.roster_cutoff, require_dues=loaded.require_dues)
    assert sorted(eligible.values_list("member_no", flat=True)) == ["1001", "1002", "1003"]
    output = run("freeze_electorate", SLUG)
    assert output.strip() == f"Froze the electorate of {SLUG}: 3 members."
    loaded.refresh_from_db()
    assert loaded.status == ElectionModel.Status.FROZEN and loaded.electorate_frozen_at is not None
    electors = {e.member.member_no: (e.branch_code, e.station.code) for e in Elector.objects.select_related("member")}
    # Sderot has no station of its own: 1002 votes at the station serving every branch.
    assert electors == {"1001": ("tel-aviv", "tlv-01"), "1002": ("sderot", "any-01"), "1003": ("tel-aviv", "tlv-01")}


def test_it_writes_the_size_and_a_digest_of_the_pseudonyms_to_the_audit_log(loaded):
    run("freeze_electorate", SLUG, "--user", "dana")
    entry = Entry.objects.get(action="electorate.frozen")
    digest = hashlib.sha256("\n".join(sorted(member_pseudonym(n) for n in ("1001", "1002", "1003"))).encode())
    assert entry.actor == "dana"
    assert entry.payload == {
        "election": SLUG, "cutoff": "2011-06-30", "require_dues": False, "size": 3,
        "pseudonyms_sha256": digest.hexdigest(), "branches_without_station": [],
    }  # fmt: skip
    assert "1001" not in json.dumps(entry.payload)  # no member numbers in the log


def test_later_roster_changes_do_not_change_a_frozen_electorate(frozen):
    before = set(Elector.objects.values_list("member__member_no", "branch_code", "removed_at"))
    later = ROSTER_HEADER + (
        "1003,Isaac,Herzog,haifa,2001-09-01,lapsed,,,\n"  # lapsed, and moved to Haifa
        "1008,Eitan,Cabel,tel-aviv,2000-01-01,active,2012-01-01,,\n"  # a member the roster did not have
    )
    assert import_roster(actor="rina", stream=csv_stream(later)).ok
    assert Member.objects.get(member_no="1003").status == "lapsed" and Member.objects.filter(member_no="1008").exists()
    assert set(Elector.objects.values_list("member__member_no", "branch_code", "removed_at")) == before
    run("open_round", SLUG, "1")
    _, key = setup.issue_station_token(station=frozen.stations.get(code="tlv-01"), actor="manager")
    tlv = station_client(key)
    assert tlv.post("/api/v1/station/checkins/", {"member_no": "1003"}, format="json").status_code == 201
    refused = tlv.post("/api/v1/station/checkins/", {"member_no": "1008"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "not_in_electorate"


def test_it_refuses_to_freeze_an_electorate_twice(frozen):
    assert str(refusal("freeze_electorate", SLUG)) == f"The electorate of {SLUG} is already frozen. (election_frozen)"
    assert Elector.objects.count() == 3 and Entry.objects.filter(action="electorate.frozen").count() == 1


def test_it_refuses_to_freeze_an_election_that_does_not_exist(db):
    assert str(refusal("freeze_electorate", "no-such-election")) == "no election 'no-such-election'"


# --- change_electorate (the committee adds or removes one member, with a reason) ----------------


def station_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def checkin(client: APIClient, member_no: str):
    return client.post("/api/v1/station/checkins/", {"member_no": member_no}, format="json")


def frozen_election(election) -> ElectionModel:
    return ElectionModel.objects.get(pk=election.election.pk)  # as stored: frozen, round 1 open


def test_a_member_added_to_the_electorate_with_a_reason_may_check_in(election):
    # 1005 joined after the cutoff: outside the electorate until the committee adds her.
    haifa = election.client("hfa-01")
    assert checkin(haifa, "1005").json()["code"] == "not_in_electorate"
    reason = "Joined on time; the branch sent the form late (committee decision 7)."
    elector = setup.change_electorate(
        election=frozen_election(election), member_no="1005", add=True, reason=reason, actor="dana"
    )
    assert elector.station.code == "hfa-01" and elector.added_by == "dana" and elector.addition_reason == reason
    entry = Entry.objects.get(action="electorate.changed")
    assert entry.actor == "dana"
    assert entry.payload == {
        "election": SLUG, "member": member_pseudonym("1005"), "change": "added", "reason": reason
    }  # fmt: skip
    response = checkin(haifa, "1005")
    assert response.status_code == 201 and response.json() == {"member_no": "1005", "round": 1}


def test_a_member_removed_from_the_electorate_with_a_reason_may_not_check_in(election):
    reason = "Died before election day."
    setup.change_electorate(
        election=frozen_election(election), member_no="1001", add=False, reason=reason, actor="dana"
    )
    elector = Elector.objects.get(member__member_no="1001")
    assert elector.removed_at is not None and elector.removed_by == "dana" and elector.removal_reason == reason
    entry = Entry.objects.get(action="electorate.changed")
    assert entry.payload["change"] == "removed" and entry.payload["member"] == member_pseudonym("1001")
    response = checkin(election.client("tlv-01"), "1001")
    assert response.status_code == 403 and response.json()["code"] == "not_in_electorate"
    assert election.client("tlv-01").get("/api/v1/station/voters/1001/").json()["in_electorate"] is False


@pytest.mark.parametrize("add", [True, False], ids=["adding", "removing"])
def test_changing_the_electorate_without_a_reason_is_refused_and_changes_nothing(election, add):
    member_no = "1005" if add else "1001"
    before = list(Elector.objects.order_by("pk").values())
    with pytest.raises(Invalid) as caught:
        setup.change_electorate(
            election=frozen_election(election), member_no=member_no, add=add, reason="  ", actor="dana"
        )
    assert caught.value.extra == {"fields": {"reason": ["A reason is required."]}}
    assert list(Elector.objects.order_by("pk").values()) == before
    assert not Entry.objects.filter(action="electorate.changed").exists()


# Regression: at 4d3951d change_electorate went by the status of the instance it was handed, so an
# instance loaded before the freeze was refused ("The electorate is not frozen yet") although the
# stored election was frozen. It now re-reads and locks the election row, as freeze_electorate does.
def test_changing_the_electorate_goes_by_the_election_as_stored_not_a_stale_copy(small_roster):
    election, _ = setup.load_election(data=ELECTION_FILE, actor="dana")  # a draft, as loaded
    setup.freeze_electorate(election=election, actor="dana")  # frozen in the database
    setup.change_electorate(election=election, member_no="1005", add=True, reason="Late form.", actor="dana")
    assert Elector.objects.filter(member__member_no="1005", removed_at__isnull=True).exists()


# --- issue_station_token -----------------------------------------------------------------------


def test_it_prints_a_station_key_once_and_keeps_only_its_hash(loaded):
    key = run("issue_station_token", SLUG, "tlv-01").strip()
    assert len(key) >= 40 and "\n" not in key
    token = StationToken.objects.get()
    assert token.station.code == "tlv-01" and token.created_by == "cli"
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest() and token.prefix == key[:8]
    stored = [str(v) for v in StationToken.objects.values_list(*[f.attname for f in StationToken._meta.fields])[0]]
    assert key not in stored
    assert not any(key in json.dumps(p) for p in Entry.objects.values_list("payload", flat=True))
    # A second token for the same station is a new key; the first is not shown again.
    second = run("issue_station_token", SLUG, "tlv-01").strip()
    assert second != key and StationToken.objects.count() == 2


def test_the_printed_key_authenticates_a_device_of_its_station(loaded):
    key = run("issue_station_token", SLUG, "any-01").strip()
    response = station_client(key).get("/api/v1/station/")
    assert response.status_code == 200
    assert response.json() == {
        "election": SLUG, "station": "any-01", "name": "Party house", "mode": "electronic",
        "round": {"number": 1, "status": "scheduled"},
    }  # fmt: skip
    wrong = station_client(key[:-1] + ("A" if key[-1] != "A" else "B")).get("/api/v1/station/")
    assert wrong.status_code == 401 and wrong.json()["code"] == "not_authenticated"


def test_it_refuses_a_token_for_an_unknown_election_or_station(loaded):
    assert str(refusal("issue_station_token", "no-such-election", "tlv-01")) == "no election 'no-such-election'"
    assert str(refusal("issue_station_token", SLUG, "jlm-01")) == f"{SLUG} has no station 'jlm-01'"
    assert not StationToken.objects.exists()


# --- add_official ------------------------------------------------------------------------------


def test_it_adds_a_committee_member_with_the_password_from_the_environment(db, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, STRONG_PASSWORD)
    output = run("add_official", "dana", "--role", "committee")
    assert output.strip() == "dana is an official with the role committee."
    user = User.objects.get(username="dana")
    assert user.is_staff and not user.is_superuser and user.check_password(STRONG_PASSWORD)
    assert list(user.groups.values_list("name", flat=True)) == ["election committee"]
    entry = Entry.objects.get(action="official.added")
    assert entry.payload == {"username": "dana", "role": "committee", "created": True}
    assert STRONG_PASSWORD not in json.dumps(entry.payload)


def test_it_refuses_a_weak_password_and_adds_nobody(db, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "12345678")
    assert str(refusal("add_official", "dana", "--role", "committee")).startswith("the password is too weak: ")
    assert not User.objects.filter(username="dana").exists()
    assert not Entry.objects.filter(action="official.added").exists()


def test_it_asks_for_the_environment_variable_when_there_is_no_terminal(db, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # not a terminal: nobody to ask
    message = str(refusal("add_official", "dana", "--role", "committee"))
    assert message == f"no terminal to ask for the password: set {PASSWORD_ENV}"
    assert not User.objects.filter(username="dana").exists()


def test_it_refuses_an_unknown_role(db, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, STRONG_PASSWORD)
    assert "invalid choice: 'president'" in str(refusal("add_official", "dana", "--role", "president"))
    assert not User.objects.filter(username="dana").exists()


# --- open_round and close_round ----------------------------------------------------------------


def test_it_refuses_to_open_a_round_before_the_electorate_is_frozen(loaded):
    message = str(refusal("open_round", SLUG, "1"))
    assert message == "Freeze the electorate before opening a round. (round_state)"
    assert Round.objects.get().status == Round.Status.SCHEDULED and not StationRound.objects.exists()


def test_it_opens_a_round_of_a_frozen_electorate_for_every_station(frozen):
    assert run("open_round", SLUG, "1").strip() == f"Round 1 of {SLUG} is open."
    round_ = Round.objects.get()
    assert round_.status == Round.Status.OPEN
    assert sorted(round_.candidates.values_list("code", flat=True)) == ["herzog", "peretz", "yachimovich"]
    assert sorted(round_.station_rounds.values_list("station__code", flat=True)) == ["any-01", "hfa-01", "tlv-01"]
    entry = Entry.objects.get(action="round.opened")
    assert entry.payload["electorate"] == 3 and entry.payload["stations"] == 3


def test_it_refuses_to_open_a_round_twice(frozen):
    run("open_round", SLUG, "1")
    assert str(refusal("open_round", SLUG, "1")) == "Round 1 is open; only a scheduled round opens. (round_state)"
    assert Entry.objects.filter(action="round.opened").count() == 1


def test_it_refuses_a_round_that_does_not_exist(frozen):
    assert str(refusal("open_round", SLUG, "9")) == f"{SLUG} has no round 9. (not_found)"
    assert str(refusal("close_round", SLUG, "9")) == f"{SLUG} has no round 9. (not_found)"
    assert str(refusal("open_round", "no-such-election", "1")) == "no election 'no-such-election'"


def test_it_refuses_to_close_a_scheduled_round(frozen):
    message = str(refusal("close_round", SLUG, "1"))
    assert message == "Round 1 is scheduled; only an open round closes. (round_state)"
    assert Round.objects.get().status == Round.Status.SCHEDULED


def test_closing_a_round_closes_its_stations_and_seals_the_electronic_ones(election):
    tlv = election.client("tlv-01")
    assert checkin(tlv, "1001").status_code == 201
    assert checkin(tlv, "1003").status_code == 201
    ballot = str(uuid.uuid4())
    assert tlv.post("/api/v1/station/ballots/", {"id": ballot, "choice": "herzog"}, format="json").status_code == 201
    election.client("any-01").post("/api/v1/station/close/")  # one station closed itself before

    assert run("close_round", SLUG, "1", "--user", "dana").strip() == f"Round 1 of {SLUG} is closed."
    round_ = Round.objects.get()
    assert round_.status == Round.Status.CLOSED
    assert not round_.station_rounds.filter(closed_at__isnull=True).exists()
    seals = {s.station.code: s for s in Seal.objects.select_related("station")}
    assert sorted(seals) == ["any-01", "tlv-01"]  # the paper station is sealed by its return
    assert seals["tlv-01"].checkins == 2 and seals["tlv-01"].ballots == 1 == Ballot.objects.count()
    assert seals["tlv-01"].counts == {"blank": 0, "herzog": 1, "invalid": 0, "peretz": 0, "yachimovich": 0}
    assert seals["tlv-01"].source == "ballots" and len(seals["tlv-01"].ballots_root) == 64
    closed = Entry.objects.get(action="round.closed")
    seed = closed.payload.pop("tie_break_seed")
    assert closed.actor == "dana" and closed.payload == {"election": SLUG, "round": 1, "checkins": 2, "ballots": 1}
    # The seed for drawing lots is fixed, and public, before anything is counted.
    assert len(seed) == 64 and seed == election.election.rounds.get(number=1).tie_break_seed
    # Each station was closed once: any-01 by itself, the others by the round.
    assert sorted(Entry.objects.filter(action="station.closed").values_list("payload__station", flat=True)) == [
        "any-01", "hfa-01", "tlv-01"
    ]  # fmt: skip
    late = checkin(election.client("any-01"), "1002")
    assert late.status_code == 409 and late.json()["code"] == "round_not_open"
    assert str(refusal("close_round", SLUG, "1")) == "Round 1 is closed; only an open round closes. (round_state)"
