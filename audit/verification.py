"""Verifying and exporting the log held in the database, with the same checks as the standalone verifier."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings

from audit import keys, merkle
from audit.canonical import canonical_bytes
from audit.models import Checkpoint, Leaf, entry_document
from audit.recount import Recount
from audit.selectors import NodeReader, tree_size
from audit.verify import BUNDLE_FORMAT, Problem, Report, verify_log

ProgressCallback = Callable[[int], None]
_CHUNK = 5000
_COLUMNS = ("index", "hash", "entry__id", "entry__action", "entry__actor", "entry__payload", "entry__created_at")


def _entries(on_progress: ProgressCallback | None) -> Iterator[tuple[int, dict, bytes]]:
    """Every integrated entry in leaf order with its stored leaf hash, streamed (a server-side cursor
    on PostgreSQL), so memory stays flat whatever the size of the log."""
    rows = Leaf.objects.order_by("index").values_list(*_COLUMNS).iterator(chunk_size=_CHUNK)
    count = 0
    for count, (index, stored, id_, action, actor, payload, created_at) in enumerate(rows, start=1):
        yield index, entry_document(id_, action, actor, payload, created_at), bytes(stored)
        if on_progress is not None and count % _CHUNK == 0:
            on_progress(count)
    if on_progress is not None:
        on_progress(count)


def _checkpoints() -> Iterator[tuple[int, str, list[bytes] | None]]:
    """Checkpoints in signing order, each with the consistency proof from the one before it.

    The proofs are built from the stored interior nodes and checked against the two signed roots,
    so a node changed in the database shows up here even when every leaf is intact.
    """
    size = tree_size()
    checkpoints = list(Checkpoint.objects.order_by("id").values_list("id", "tree_size", "note"))
    pairs = [
        (first, second)
        for (_, first, _), (_, second, _) in itertools.pairwise(checkpoints)
        if 0 < first <= second <= size
    ]
    # Every node of every proof, read in a few queries rather than one query a node.
    nodes = NodeReader()
    wanted = sorted({node for pair in pairs for node in merkle.consistency_proof_nodes(*pair)})
    for start in range(0, len(wanted), 500):
        nodes.prefetch(wanted[start : start + 500])
    previous = None
    for id_, checkpoint_size, note in checkpoints:
        proof = None
        if previous is not None and 0 < previous <= checkpoint_size <= size:
            proof = merkle.consistency_proof(previous, checkpoint_size, nodes)
        yield id_, note, proof
        previous = checkpoint_size


def verify_database(*, on_progress: ProgressCallback | None = None) -> Report:
    """Recompute every leaf from its entry, every checkpoint's root and signature, and the consistency
    between consecutive checkpoints; recount every published result from the entries; name the first
    entry, checkpoint or document that differs."""
    try:
        recount = Recount(_published_documents(), keys.verifier(), _checkpoint_roots())
    except Problem as problem:
        return Report(ok=False, problem=str(problem))
    report = verify_log(
        _entries(on_progress), _checkpoints(), keys.verifier(), settings.KALPI_LOG_ORIGIN, checks=[recount]
    )
    if report.ok and recount.summary():
        report.notes.append(recount.summary())
    return report


def _published_documents() -> Iterator[dict]:
    from ballots.models import Publication  # the log's app does not depend on the ballots app otherwise

    for text in Publication.objects.order_by("id").values_list("document", flat=True).iterator():
        yield json.loads(text)


def _checkpoint_roots() -> dict[int, bytes]:
    return {size: bytes(root) for size, root in Checkpoint.objects.values_list("tree_size", "root")}


def export_bundle(directory: Path, *, on_progress: ProgressCallback | None = None) -> int:
    """Write the log as a bundle for `python -m audit.verify` (format in audit/verify.py); returns its size."""
    directory.mkdir(parents=True, exist_ok=True)
    size = 0
    with (directory / "entries.jsonl").open("wb") as out:
        for index, document, stored in _entries(on_progress):
            line = {"index": index, "entry": document, "leaf_hash": stored.hex()}
            out.write(canonical_bytes(line) + b"\n")
            size = index + 1
    with (directory / "checkpoints.jsonl").open("wb") as out:
        for id_, note, proof in _checkpoints():
            line = {"id": id_, "note": note}
            if proof is not None:
                line["consistency_proof"] = [h.hex() for h in proof]
            out.write(canonical_bytes(line) + b"\n")
    with (directory / "results.jsonl").open("wb") as out:
        for document in _published_documents():
            out.write(canonical_bytes(document) + b"\n")
    (directory / "public-key.txt").write_text(keys.verifier_key() + "\n", encoding="utf-8")
    manifest = {"format": BUNDLE_FORMAT, "origin": settings.KALPI_LOG_ORIGIN, "tree_size": size}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return size
