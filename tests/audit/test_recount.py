"""The verifier recounts every published result from the log alone (DESIGN.md "Export and independent
verification"): an honest service passes; a tally that does not follow from the seals, an official
result nobody certified, a document changed, missing or smuggled into the export are each named."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from audit import keys
from audit.canonical import canonical_bytes
from audit.models import Checkpoint
from audit.recount import tally_sha256
from audit.verification import verify_database
from audit.verify import verify_bundle
from ballots.models import Publication
from ballots.services import count, publish
from ballots.services.count import certify_round
from tests.ballots.test_tally import TLV_MEMBERS, committee_member, runoff_night, town_election, vote

MAIN = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)  # publications happen after the commit


@pytest.fixture
def night(small_roster):
    """Round 1 counted, provisionally published as it went, certified (a runoff) and published officially."""
    election = town_election()
    runoff_night(election)
    for username in ("dana", "eli"):
        committee_member(username)
        certify_round(election=election.election, number=1, username=username)
    assert Publication.objects.filter(status="official").count() == 1
    return election


def export(tmp_path) -> Path:
    target = tmp_path / "bundle"
    call_command("export_audit", str(target))
    return target


def resign(document: dict) -> dict:
    """A document as the service's key would sign it (what a dishonest server could publish)."""
    body = {k: v for k, v in document.items() if k not in ("sha256", "signature")}
    data = canonical_bytes(body)
    signature = base64.b64encode(keys.signer().sign(data)).decode()
    return {**body, "sha256": hashlib.sha256(data).hexdigest(), "signature": signature}


def rewrite_results(bundle: Path, change) -> None:
    path = bundle / "results.jsonl"
    documents = [json.loads(line) for line in path.read_text().splitlines()]
    documents = change(documents)
    path.write_text("".join(canonical_bytes(d).decode() + "\n" for d in documents))


def test_an_honest_night_recounts_from_the_log_alone(night, tmp_path):
    published = Publication.objects.count()
    report = verify_database()
    assert report.ok, report.problem
    assert f"{published} published results documents recounted from the log" in report.summary()
    bundle = export(tmp_path)
    assert len((bundle / "results.jsonl").read_text().splitlines()) == published
    report = verify_bundle(bundle, public_key=keys.verifier_key())
    assert report.ok, report.problem
    assert report.summary().endswith(f"{published} published results documents recounted from the log")


def test_a_provisional_count_of_an_open_round_recounts_with_the_open_stations_check_ins_taken_as_published(
    small_roster, tmp_path
):
    election = town_election()
    vote(election, "tlv-01", TLV_MEMBERS[:3], ["herzog", "peretz", "herzog"])
    from ballots.services.station import close_station

    close_station(station=election.station("tlv-01"), actor="tlv-01")  # published: 1 of 3 reported
    vote(election, "any-01", ["1002"], ["herzog"])  # open still
    report = verify_bundle(export(tmp_path))
    assert report.ok, report.problem
    assert "check-in counts of stations open at the time taken as published" in report.summary()


def test_a_tally_that_does_not_follow_from_the_seals_is_named_with_the_first_wrong_number(small_roster, tmp_path):
    election = town_election()
    honest = count.build_document

    def one_more_for_herzog(round_):
        document = honest(round_)
        for candidate in document["candidates"]:
            if candidate["code"] == "herzog":
                candidate["votes"] += 1
        return document

    count.build_document = one_more_for_herzog
    try:
        runoff_night(election)  # tallied (wrongly), signed, logged and published as the stations report
    finally:
        count.build_document = honest
    for report in (verify_database(), verify_bundle(export(tmp_path))):
        assert not report.ok
        assert "recounting the log does not give the published results: $.candidates[0].votes: the log gives" in (
            report.problem
        )


def test_official_results_of_an_uncertified_tally_are_refused(night, small_roster, tmp_path):
    # A second election, counted but not certified, published "officially" by going round the service's check.
    other = town_election_two()
    uncertified = count.tally_round(election=other.election, number=1, actor="dana")
    publish._publish(other.round.id, uncertified.id, "official", "mallory")
    report = verify_bundle(export(tmp_path))
    assert not report.ok and "official results of a tally the committee had not certified" in report.problem


def town_election_two():
    from tests.ballots.test_tally import ELECTION_FILE, ElectionOf

    return ElectionOf({**ELECTION_FILE, "slug": "labor-2011-b"})


def test_a_changed_document_in_the_export_is_named(night, tmp_path):
    bundle = export(tmp_path)

    def change(documents):
        documents[-1]["cast"] += 1
        return documents

    rewrite_results(bundle, change)
    report = verify_bundle(bundle)
    assert not report.ok and "its sha256 is not that of its contents" in report.problem


def test_a_document_missing_from_the_export_is_named(night, tmp_path):
    bundle = export(tmp_path)
    rewrite_results(bundle, lambda documents: documents[:-1])
    report = verify_bundle(bundle)
    assert not report.ok and "is not in the export" in report.problem


def test_a_signed_document_the_log_never_recorded_is_named(night, tmp_path):
    bundle = export(tmp_path)

    def smuggle(documents):
        forged = dict(documents[-1], version=99)
        return [*documents, resign(forged)]

    rewrite_results(bundle, smuggle)
    report = verify_bundle(bundle)
    assert not report.ok and "is not recorded in the log as published" in report.problem


def test_a_document_whose_audit_point_is_no_checkpoint_of_the_log_is_named(night):
    from audit.recount import Recount
    from audit.verification import _checkpoints, _entries, _published_documents
    from audit.verify import verify_log

    documents = list(_published_documents())
    roots = {size: root for size, root in Checkpoint.objects.values_list("tree_size", "root")}
    wanted = documents[0]["audit"]["tree_size"]
    roots.pop(wanted)  # as if the log had never signed the checkpoint the document names
    recount = Recount(documents, keys.verifier(), roots)
    report = verify_log(_entries(None), _checkpoints(), keys.verifier(), settings.KALPI_LOG_ORIGIN, checks=[recount])
    assert not report.ok and "is not a checkpoint of this log" in report.problem


def test_the_service_refuses_to_publish_a_tally_whose_audit_point_is_no_checkpoint(small_roster):
    election = town_election()
    vote(election, "tlv-01", TLV_MEMBERS[:2], ["herzog", "peretz"])
    honest = count._audit_point
    count._audit_point = lambda round_: {**honest(round_), "root": "00" * 32}
    try:
        with pytest.raises(Checkpoint.DoesNotExist):
            publish.publish_provisional(round_id=election.round.id)
    finally:
        count._audit_point = honest
    assert not Publication.objects.exists()


def test_the_tally_sha256_of_a_published_document_is_that_of_its_tally(night):
    for publication in Publication.objects.all():
        assert tally_sha256(json.loads(publication.document)) == publication.tally.sha256


def test_the_standalone_verifier_recounts_without_django(night, tmp_path):
    bundle = export(tmp_path)
    script = (
        "import sys, runpy; sys.modules['django'] = None; "
        "runpy.run_module('audit.verify', run_name='__main__', alter_sys=True)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(bundle)], cwd=MAIN, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert "published results documents recounted from the log" in result.stdout
