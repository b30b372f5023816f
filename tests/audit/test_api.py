"""The public audit API: checkpoint, public key, entries, proofs — each checkable by an outsider."""

from __future__ import annotations

import base64

import pytest
from django.db import transaction

from audit import keys, merkle, note, services
from audit.canonical import canonical_bytes
from audit.models import Action
from audit.selectors import NodeReader


@pytest.fixture
def log(db):
    """Eleven entries, a checkpoint at 6 and one at 11."""
    for batch in (6, 5):
        with transaction.atomic():
            for i in range(batch):
                services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={"n": i, "name": "סניף"})
        services.integrate_pending()
        services.sign_checkpoint()


def get(client, path, **params):
    return client.get(f"/api/v1/audit/{path}", params)


def test_the_checkpoint_is_a_signed_note_that_verifies_with_the_public_key(client, log):
    response = get(client, "checkpoint/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    key = get(client, "public-key/").content.decode().strip()
    assert key == keys.verifier_key()
    body = note.open_note(response.content.decode(), [note.Verifier.from_key(key)])
    checkpoint = note.parse_checkpoint(body)
    assert (checkpoint.origin, checkpoint.size) == ("kalpi.test/audit", 11)


def test_entries_hash_to_the_checkpoint_root(client, log):
    entries = get(client, "entries/", start=0, end=100).json()["entries"]
    assert [e["index"] for e in entries] == list(range(11))
    leaves = [merkle.leaf_hash(canonical_bytes(e["entry"])) for e in entries]
    body = note.open_note(get(client, "checkpoint/").content.decode(), [keys.verifier()])
    assert merkle.root(leaves) == note.parse_checkpoint(body).root
    assert entries[3]["entry"]["payload"] == {"n": 3, "name": "סניף"}


def test_an_entry_range_is_clipped_to_the_tree_and_to_a_thousand(client, log):
    assert [e["index"] for e in get(client, "entries/", start=9, end=5000).json()["entries"]] == [9, 10]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"start": 0}, "end"), ({"start": "a", "end": 3}, "start"), ({"start": 5, "end": 5}, "end"),
     ({"start": 11, "end": 12}, "start"), ({"start": -1, "end": 2}, "start")],
)  # fmt: skip
def test_a_bad_entry_range_is_refused_in_the_envelope(client, log, params, field):
    response = get(client, "entries/", **params)
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid" and field in body["extra"]["fields"]


def test_every_inclusion_proof_verifies_against_the_signed_roots(client, log):
    for size in (6, 11):
        root = NodeReader().root(size)
        for index in range(size):
            body = get(client, "proofs/inclusion/", index=index, size=size).json()
            proof = [bytes.fromhex(h) for h in body["proof"]]
            merkle.verify_inclusion(bytes.fromhex(body["leaf_hash"]), index, size, proof, root)


def test_every_consistency_proof_verifies(client, log):
    reader = NodeReader()
    for first in range(1, 12):
        for second in range(first, 12):
            body = get(client, "proofs/consistency/", first=first, second=second).json()
            proof = [bytes.fromhex(h) for h in body["proof"]]
            merkle.verify_consistency(first, second, reader.root(first), reader.root(second), proof)


@pytest.mark.parametrize(
    ("path", "params"),
    [("proofs/inclusion/", {"index": 11, "size": 11}), ("proofs/inclusion/", {"index": 0, "size": 12}),
     ("proofs/consistency/", {"first": 5, "second": 12}), ("proofs/consistency/", {"first": 7, "second": 6}),
     ("proofs/consistency/", {"first": 0, "second": 6})],
)  # fmt: skip
def test_a_proof_beyond_the_tree_is_refused(client, log, path, params):
    response = get(client, path, **params)
    assert response.status_code == 400 and response.json()["code"] == "invalid"


def test_no_checkpoint_yet_is_a_404_in_the_envelope(client, db):
    response = get(client, "checkpoint/")
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_the_api_only_reads(client, log):
    assert client.post("/api/v1/audit/entries/?start=0&end=1").status_code == 405


def test_the_root_in_the_checkpoint_is_base64(client, log):
    lines = get(client, "checkpoint/").content.decode().split("\n")
    assert base64.b64decode(lines[2]) == NodeReader().root(11)


def test_a_proof_reads_its_nodes_in_a_bounded_number_of_queries(client, log, django_assert_max_num_queries):
    # tree size, leaves, interior nodes: the same few queries whatever the size of the tree
    with django_assert_max_num_queries(4):
        assert get(client, "proofs/inclusion/", index=3, size=11).status_code == 200
    with django_assert_max_num_queries(4):
        assert get(client, "proofs/consistency/", first=5, second=11).status_code == 200


def test_the_openapi_schema_documents_the_audit_api(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("checkpoint", "public-key", "entries", "proofs/inclusion", "proofs/consistency"):
        assert f"/api/v1/audit/{path}/" in schema["paths"]
