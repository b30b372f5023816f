"""Publication (issue 6): signed, immutable versions of a round's results, published as the count
moves and once officially after certification; the pages, JSON and CSV served from them."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
from unittest import mock

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.test import Client

from audit import keys
from audit.canonical import canonical_bytes
from audit.models import Action, Checkpoint, Entry
from ballots import tasks, versions
from ballots.errors import RoundStateError
from ballots.models import Publication, Round
from ballots.services import publish
from ballots.services.count import certify_round
from ballots.services.setup import close_round
from ballots.services.station import close_station
from tests.ballots.test_tally import (
    SLUG,
    TLV_MEMBERS,
    close,
    committee_member,
    paper_return,
    runoff_night,
    tally,
    town_election,
    vote,
)

# Real commits: publications are scheduled after the commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

PAGE = f"/results/{SLUG}/rounds/1/"
JSON = f"/results/{SLUG}/rounds/1/results.json"
CSV = f"/results/{SLUG}/rounds/1/results.csv"
API = f"/api/v1/elections/{SLUG}/rounds/1/results/"


@pytest.fixture
def night(small_roster):
    """Round 1 closed and every station reported: herzog 7, yachimovich 6, peretz 5 — a runoff."""
    election = town_election()
    runoff_night(election)
    return election


def certify(election) -> None:
    for username in ("dana", "eli"):
        committee_member(username)
        certify_round(election=election.election, number=1, username=username)


def signature_holds(document: dict) -> bool:
    """Checked as an observer would: the published verifier key and `cryptography` alone."""
    _name, _key_id, key = keys.verifier_key().split("+", 2)
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key)[1:])
    body = canonical_bytes({k: v for k, v in document.items() if k not in ("sha256", "signature")})
    if hashlib.sha256(body).hexdigest() != document["sha256"]:
        return False
    try:
        public.verify(base64.b64decode(document["signature"]), body)
    except Exception:
        return False
    return True


def test_results_are_published_provisionally_as_stations_report_and_the_round_closes(night):
    publications = list(Publication.objects.order_by("version"))
    assert publications, "closing stations and accepting the return published nothing"
    assert [p.version for p in publications] == list(range(1, len(publications) + 1))
    assert {p.status for p in publications} == {"provisional"}
    latest = json.loads(publications[-1].document)
    assert latest["status"] == "provisional"
    assert latest["stations"] == {"reported": 3, "total": 3}
    assert latest["outcome"]["decision"] == "runoff"
    assert [c["code"] for c in latest["candidates"]] == ["herzog", "yachimovich", "peretz"]
    assert Round.objects.get(election=night.election, number=1).tallies.last().publications.count() == 1


def test_a_published_document_is_the_tally_with_the_publication_fields_hashed_and_signed(night):
    publication = Publication.objects.order_by("-version").first()
    document = json.loads(publication.document)
    assert publication.document == canonical_bytes(document).decode()
    added = ("status", "version", "published_at", "sha256", "signature")
    assert {k: v for k, v in document.items() if k not in added} == publication.tally.document
    assert document["version"] == publication.version
    assert document["published_at"].endswith("Z")
    assert document["sha256"] == publication.sha256
    assert signature_holds(document)
    assert publish.verify_document(document)
    tampered = {**document, "cast": document["cast"] + 1}
    assert not signature_holds(tampered) and not publish.verify_document(tampered)
    point = document["audit"]
    assert publication.checkpoint.tree_size == point["tree_size"]
    assert bytes(publication.checkpoint.root).hex() == point["root"]


def test_each_publication_is_in_the_audit_log_and_a_checkpoint_covers_it(night):
    publication = Publication.objects.order_by("-version").first()
    entry = publication.entry
    assert entry.action == Action.RESULTS_PUBLISHED
    assert entry.payload == {
        "election": SLUG, "round": 1, "version": publication.version, "status": "provisional",
        "tally": publication.tally.number, "sha256": publication.sha256,
    }  # fmt: skip
    assert Entry.objects.filter(action=Action.RESULTS_PUBLISHED).count() == Publication.objects.count()
    leaf = entry.leaf
    assert Checkpoint.objects.filter(tree_size__gt=leaf.index).exists()


def test_publishing_the_same_tally_again_makes_no_new_version(night):
    round_ = night.round
    before = Publication.objects.count()
    again = publish.publish_provisional(round_id=round_.id)
    assert again == Publication.objects.order_by("-version").first()
    tasks.publish_provisional(round_.id)
    tasks.publish_counting_rounds()
    assert Publication.objects.count() == before
    assert Entry.objects.filter(action=Action.RESULTS_PUBLISHED).count() == before


def test_a_new_count_makes_a_new_version_and_an_older_tally_never_replaces_it(small_roster):
    election = town_election()
    vote(election, "tlv-01", TLV_MEMBERS[:3], ["herzog", "herzog", "peretz"])
    older = tally(election)  # tallied, not published
    first = publish.publish_provisional(round_id=election.round.id)
    assert first.tally == older and json.loads(first.document)["stations"] == {"reported": 0, "total": 3}
    vote(election, "any-01", ["1002"], ["peretz"])
    unpublished = tally(election)
    close(election)  # seals every station: published after the commit
    latest = Publication.objects.order_by("-version").first()
    assert latest.version == first.version + 1 and latest.tally.number > unpublished.number
    assert json.loads(latest.document)["outcome"]["decision"] == "pending"  # Haifa's paper return is missing
    # A late run holding an older tally than the one out does not step back.
    assert publish._publish(election.round.id, unpublished.id, "provisional", "test") == latest
    assert Publication.objects.order_by("-version").first() == latest
    assert not Publication.objects.filter(tally=unpublished).exists()


def test_official_results_exist_only_after_certification_and_are_published_once(night):
    round_ = night.round
    with pytest.raises(RoundStateError, match="not certified"):
        publish.publish_official(round_id=round_.id)
    committee_member("dana")
    certify_round(election=night.election, number=1, username="dana")
    assert not Publication.objects.filter(status="official").exists()  # one approval of two
    committee_member("eli")
    certify_round(election=night.election, number=1, username="eli")
    official = Publication.objects.get(status="official")  # published after the certification committed
    round_.refresh_from_db()
    assert official.tally_id == round_.certified_tally_id
    assert official.version == Publication.objects.filter(status="provisional").count() + 1
    document = json.loads(official.document)
    assert document["status"] == "official" and signature_holds(document)
    # Again, by task, by the periodic task, by command: no new version, and no provisional one after it.
    assert publish.publish_official(round_id=round_.id) == official
    tasks.publish_official(round_.id)
    tasks.publish_counting_rounds()
    assert publish.publish_provisional(round_id=round_.id) is None
    assert Publication.objects.filter(round=round_).count() == official.version


def test_a_crash_in_the_middle_of_a_publication_leaves_no_version_and_the_rerun_writes_one(small_roster):
    election = town_election()
    vote(election, "tlv-01", TLV_MEMBERS[:2], ["herzog", "peretz"])
    tally(election)
    entries_before = Entry.objects.count()
    # Dies after the version's row is written, before the transaction commits.
    with (
        mock.patch("audit.services.request_checkpoint", side_effect=SystemExit("worker killed")),
        pytest.raises(SystemExit),
    ):
        publish.publish_provisional(round_id=election.round.id)
    assert not Publication.objects.exists()
    assert not Entry.objects.filter(action=Action.RESULTS_PUBLISHED).exists()
    assert Entry.objects.count() == entries_before
    tasks.publish_provisional(election.round.id)  # the retry
    publication = Publication.objects.get()
    assert publication.version == 1 and signature_holds(json.loads(publication.document))


def test_a_publication_can_never_be_changed_or_removed(night):
    publication = Publication.objects.first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Publication.objects.filter(pk=publication.pk).update(csv="x")
    with pytest.raises(IntegrityError), transaction.atomic():
        Publication.objects.filter(pk=publication.pk).delete()
    with pytest.raises(IntegrityError), transaction.atomic():
        Publication.objects.create(
            round=publication.round,
            version=publication.version + 100,
            status="provisional",
            tally=publication.tally,
            document="{}",
            csv="",
            page="",
            sha256="",
            signature="",
            checkpoint=publication.checkpoint,
            published_at=publication.published_at,
            published_by="x",
            entry=publication.entry,
        )  # fmt: skip  (same tally and status, same entry: refused)


def test_a_burst_of_station_closes_makes_one_publication_task_with_a_broker(small_roster):
    election = town_election()
    sent = []
    with (
        mock.patch.object(publish, "_eager", return_value=False),
        mock.patch.object(tasks.publish_provisional, "apply_async", side_effect=lambda *a, **k: sent.append((a, k))),
    ):
        for code in ("tlv-01", "any-01"):
            with transaction.atomic():
                close_station(station=election.station(code), actor=code)
        assert len(sent) == 1, sent
        assert sent[0][0] == ((election.round.id,),) and sent[0][1]["countdown"] == publish.COALESCE_SECONDS
        publish.clear_pending(election.round.id)  # the task started: the next close needs a run of its own
        close_round(election=election.election, number=1, actor="committee")
        assert len(sent) == 2


def test_one_publication_per_transaction_however_many_stations_it_seals(small_roster):
    election = town_election()
    vote(election, "tlv-01", TLV_MEMBERS[:2], ["herzog", "peretz"])
    vote(election, "any-01", ["1002"], ["herzog"])
    before = Publication.objects.count()
    with mock.patch.object(tasks.publish_provisional, "delay", wraps=tasks.publish_provisional.delay) as delay:
        close(election)  # seals two electronic stations and closes the round, in one transaction
    assert delay.call_count == 1
    assert Publication.objects.count() == before + 1


def test_the_periodic_task_publishes_rounds_being_counted_and_catches_up_a_missed_official(night):
    certify_with_lost_message = mock.patch.object(publish, "official_after_commit")
    with certify_with_lost_message:
        certify(night)
    assert not Publication.objects.filter(status="official").exists()
    assert publish.rounds_to_publish() == ([], [night.round.id])
    tasks.publish_counting_rounds()
    assert Publication.objects.filter(status="official").count() == 1
    assert publish.rounds_to_publish() == ([], [])


# Serving: the stored version, with ETag, Last-Modified and 304s.


def test_the_page_json_and_csv_serve_the_latest_version_as_stored(night, client: Client):
    latest = Publication.objects.order_by("-version").first()
    page = client.get(PAGE)
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    assert page.content.decode() == latest.page
    document = client.get(JSON)
    assert document.content.decode() == latest.document and document["Content-Type"] == "application/json"
    api = client.get(API)
    assert api.status_code == 200 and api.content == document.content and api["ETag"] == document["ETag"]
    table = client.get(CSV)
    assert table.content.decode() == latest.csv and table["Content-Type"].startswith("text/csv")
    for response in (page, document, api, table):
        assert response["Cache-Control"] == "public, no-cache"
        assert latest.sha256 in response["ETag"]
        assert response["Last-Modified"]


def test_a_reader_with_the_current_version_gets_304_and_a_new_version_gets_200(night, client: Client):
    first = client.get(PAGE)
    again = client.get(PAGE, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304 and again.content == b""
    by_date = client.get(JSON, HTTP_IF_MODIFIED_SINCE=client.get(JSON)["Last-Modified"])
    assert by_date.status_code == 304
    api = client.get(API, HTTP_IF_NONE_MATCH=client.get(API)["ETag"])
    assert api.status_code == 304
    certify(night)  # a new (official) version
    fresh = client.get(PAGE, HTTP_IF_NONE_MATCH=first["ETag"])
    assert fresh.status_code == 200 and "Official result" in fresh.content.decode()


def test_before_the_first_publication_the_round_is_404_with_the_envelope(scheduled_election, client: Client):
    page = client.get(PAGE)
    assert page.status_code == 404 and "has no published results yet" in page.content.decode()
    for url in (JSON, API, CSV):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.json()["code"] == "not_found", url
    assert client.get(f"/results/{SLUG}/rounds/9/").status_code == 404
    assert client.get("/api/v1/elections/nope/rounds/1/results/").json()["code"] == "not_found"
    assert client.post(PAGE).status_code == 405


def test_the_csv_has_a_row_per_station_and_the_total(night, client: Client):
    document = json.loads(Publication.objects.order_by("-version").first().document)
    rows = list(csv.DictReader(io.StringIO(client.get(CSV).content.decode())))
    assert [r["station"] for r in rows] == ["tlv-01", "hfa-01", "any-01", "total"]
    total = rows[-1]
    assert int(total["cast"]) == document["cast"] == sum(int(r["cast"]) for r in rows[:-1]) == 19
    for candidate in document["candidates"]:
        assert int(total[candidate["code"]]) == candidate["votes"]
        assert sum(int(r[candidate["code"]]) for r in rows[:-1]) == candidate["votes"]
    assert rows[1]["mode"] == "paper" and rows[1]["reported"] == "true"


def test_an_unreported_station_is_empty_in_the_csv_and_named_on_the_page(small_roster, client: Client):
    election = town_election()
    vote(election, "tlv-01", TLV_MEMBERS[:2], ["herzog", "peretz"])
    close(election)
    rows = list(csv.DictReader(io.StringIO(client.get(CSV).content.decode())))
    haifa = rows[1]
    assert haifa["reported"] == "false" and haifa["cast"] == "" and haifa["herzog"] == ""
    page = client.get(PAGE).content.decode()
    assert "not reported yet" in page and "Counting: 2 of 3 stations reported." in page


def test_the_page_shows_the_documents_numbers_and_the_outcome_in_plain_words(night, client: Client):
    page = client.get(PAGE).content.decode()
    document = client.get(JSON).json()
    assert "Provisional result" in page
    assert "No candidate reached 40% — runoff between Isaac Herzog and Shelly Yachimovich on 19 September 2011." in page
    for candidate in document["candidates"]:
        assert f"{candidate['percent']}%" in page and candidate["name"] in page
    assert f"version {document['version']}" in page
    groups = [document["sha256"][i : i + 4] for i in range(0, 64, 4)]
    assert "".join(f"<span>{g}</span>" for g in groups) in page
    assert "3 of 3" in page and f"{document['turnout_percent']}%" in page
    assert "<script" not in page


def test_the_official_page_names_the_winner(small_roster, client: Client):
    election = town_election()
    vote(election, "tlv-01", TLV_MEMBERS[:5], ["herzog"] * 4 + ["peretz"])
    close(election)
    paper_return(election, {"yachimovich": 0, "peretz": 0, "herzog": 0})
    tally(election)
    certify(election)
    page = client.get(PAGE).content.decode()
    assert "Isaac Herzog is elected." in page and "Official result" in page


def test_the_election_pages_list_rounds_schedule_and_results(night, client: Client):
    index = client.get("/results/")
    assert index.status_code == 200 and f'href="/results/{SLUG}/"' in index.content.decode()
    election = client.get(f"/results/{SLUG}/").content.decode()
    assert f'href="{PAGE}"' in election and "Provisional result" in election
    assert client.get("/results/nope/").status_code == 404
    verify = client.get("/results/verify/").content.decode()
    assert keys.verifier_key() in verify


def test_the_public_api_lists_elections_and_their_rounds(night, client: Client):
    listed = client.get("/api/v1/elections/").json()
    assert {"slug": SLUG, "name": night.election.name, "status": "frozen"} in listed
    detail = client.get(f"/api/v1/elections/{SLUG}/").json()
    assert [c["code"] for c in detail["candidates"]] == ["yachimovich", "peretz", "herzog"]
    assert detail["rounds"][0]["number"] == 1 and detail["rounds"][0]["results"] == API
    assert detail["rule"]["threshold_percent"] == "40"
    assert client.get("/api/v1/elections/nope/").json()["code"] == "not_found"


def test_serving_a_round_is_one_small_query_once_its_bodies_are_cached(night, client, django_assert_num_queries):
    """None at all with Redis as the cache: the publication left its latest version there."""
    etag = client.get(PAGE)["ETag"]  # the first reader in this process loads the body
    queries = 0 if versions.SHARED_CACHE else 1
    with django_assert_num_queries(queries):
        assert client.get(PAGE).status_code == 200
    with django_assert_num_queries(queries):
        assert client.get(PAGE, HTTP_IF_NONE_MATCH=etag).status_code == 304


@pytest.mark.skipif(not versions.SHARED_CACHE, reason="the embedded default's cache is not shared")
def test_a_new_version_is_served_the_moment_it_commits_and_a_lost_cache_write_heals(night, client):
    first = client.get(JSON).json()
    certify(night)  # the official version commits and writes itself to the cache
    assert client.get(JSON).json()["status"] == "official"
    # Were that write lost, a reader would see the older version at most LATEST_SECONDS.
    stale = versions.Latest(*json_latest(first))
    versions.remember_latest(SLUG, 1, stale)
    assert client.get(JSON).json()["version"] == first["version"]
    cache.delete(f"kalpi:results:latest:{SLUG}:1")  # what the expiry does
    assert client.get(JSON).json()["status"] == "official"


def json_latest(document: dict) -> tuple:
    publication = Publication.objects.get(sha256=document["sha256"])
    return publication.id, publication.version, publication.sha256, publication.published_at


def test_readers_who_accept_gzip_get_it_with_a_tag_of_its_own(night, client: Client):
    plain = client.get(JSON)
    packed = client.get(JSON, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert packed["Content-Encoding"] == "gzip" and gzip.decompress(packed.content) == plain.content
    assert (
        packed["ETag"] != plain["ETag"] and "Accept-Encoding" in packed["Vary"] and "Accept-Encoding" in plain["Vary"]
    )
    assert client.get(JSON, HTTP_ACCEPT_ENCODING="gzip", HTTP_IF_NONE_MATCH=packed["ETag"]).status_code == 304
    assert client.get(JSON, HTTP_IF_NONE_MATCH=packed["ETag"]).status_code == 200


def test_the_views_answer_as_the_middleware_does_without_it(night, client: Client, settings):
    with_middleware = {url: client.get(url) for url in (PAGE, JSON, CSV, API)}
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != "ballots.versions.PublishedResultsMiddleware"]
    for url, expected in with_middleware.items():
        response = client.get(url)
        assert response.status_code == 200 and response.content == expected.content, url
        for header in ("ETag", "Last-Modified", "Content-Type", "Cache-Control"):
            assert response[header] == expected[header], (url, header)


# The command.


def test_the_publish_command(night, capsys):
    with pytest.raises(CommandError, match="not certified"):
        call_command("publish", SLUG, "1", "--official")
    out = io.StringIO()
    call_command("publish", SLUG, "1", stdout=out)
    latest = Publication.objects.order_by("-version").first()
    assert f"version {latest.version} (provisional), sha256 {latest.sha256}" in out.getvalue()
    certify(night)
    with pytest.raises(CommandError, match="certified"):
        call_command("publish", SLUG, "1")
    out = io.StringIO()
    call_command("publish", SLUG, "1", "--official", stdout=out)
    assert "(official)" in out.getvalue()
    with pytest.raises(CommandError, match="no round 7"):
        call_command("publish", SLUG, "7")
    with pytest.raises(CommandError, match="no election"):
        call_command("publish", "nope", "1")


def test_the_tasks_are_acknowledged_when_done_and_retry_only_transient_failures():
    from django.db import InterfaceError, OperationalError

    from config.errors import DomainError

    for task in (tasks.publish_provisional, tasks.publish_official):
        assert task.acks_late and task.reject_on_worker_lost
        assert set(task.autoretry_for) == {OperationalError, InterfaceError}
        assert not any(issubclass(DomainError, kind) for kind in task.autoretry_for)
        assert task.max_retries and task.retry_backoff


def test_a_runoff_page_draws_no_threshold(night):
    from ballots import pages

    document = json.loads(Publication.objects.order_by("-version").first().document)
    first = pages.round_context(night.round, document)
    assert first["threshold"] == "40"
    runoff = pages.round_context(night.round, {**document, "round": 2, "outcome": {**document["outcome"],
                                 "decision": "winner", "winner": "herzog", "advancing": []}})  # fmt: skip
    assert runoff["threshold"] is None and runoff["banner"] == "Isaac Herzog is elected, provisionally: " + (
        "the result is official once the committee certifies it."
    )
