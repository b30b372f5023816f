"""Verify an exported audit log on your own machine: `python -m audit.verify DIR` (stdlib + cryptography only).

This module and the three it uses (`audit.canonical`, `audit.merkle`, `audit.note`) never import
Django, so an observer needs nothing but Python and `cryptography` to check an export.

Bundle format 1, as `manage.py export_audit DIR` writes it (every file UTF-8):

- `DIR/manifest.json`: `{"format": 1, "origin": "<the log's origin>", "tree_size": N}`, N being the
  number of entries exported. Other keys are ignored.
- `DIR/public-key.txt`: one line, the verifier key in the signed-note format,
  `<name>+<8-hex key id>+<base64(0x01 ‖ Ed25519 public key)>`.
- `DIR/entries.jsonl`: one JSON object per line, leaf index order, indices dense from 0:
  `{"index": i, "entry": {...}}`, optionally with `"leaf_hash": "<64 lowercase hex>"` (the log's
  stored leaf hash). The leaf's bytes are the canonical bytes of `entry` (audit.canonical).
- `DIR/checkpoints.jsonl`: one JSON object per line in signing order (increasing id):
  `{"id": n, "note": "<the whole signed note: checkpoint body, blank line, signature lines>"}`,
  optionally with `"consistency_proof": ["<hex>", ...]`, the RFC 9162 §2.1.4 proof that this
  checkpoint's tree extends the previous line's.
- `DIR/results.jsonl` (optional): one published results document per line, as the service published
  it (DESIGN.md "Public API and pages"). When present, each is recounted from the entries
  (audit/recount.py): its signature, its publication in the log, and every number in it.
No other keys are allowed on entry or checkpoint lines.

What is checked, streaming (memory O(log n) for the tree, whatever the size of the log): every
entry's leaf hash is recomputed; at each checkpoint's size the root of the recomputed tree must be
the one the checkpoint signed; every checkpoint must be signed by the public key, carry the
manifest's origin, and be no smaller than the one before it. The first problem is reported.

A bundle vouches for nothing by itself: anyone can write one, key included. What ties it to the
real log is the key and the checkpoints published elsewhere, so pass the published key with
`--public-key` and compare the summary's latest root with a checkpoint you hold (a published
results document embeds one).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, Protocol

from audit.canonical import canonical_bytes
from audit.merkle import HASH_SIZE, ProofError, RootBuilder, leaf_hash, verify_consistency
from audit.note import NoteError, Verifier, open_note, parse_checkpoint

__all__ = [
    "BUNDLE_FORMAT",
    "LeafBatch",
    "LogCheck",
    "Problem",
    "Report",
    "main",
    "verify_bundle",
    "verify_leaves",
    "verify_log",
]

BUNDLE_FORMAT = 1

# (index, entry) or (index, entry, stored leaf hash or None)
EntryItem = tuple[int, dict[str, Any]] | tuple[int, dict[str, Any], bytes | None]
# (id, signed note) or (id, signed note, consistency proof from the previous checkpoint or None)
CheckpointItem = tuple[int, str] | tuple[int, str, Sequence[bytes] | None]


class Problem(Exception):
    """The first thing wrong with the log; its message is what the verifier reports."""

    def __init__(self, message: str, *, checkpoint: int | None = None, index: int | None = None) -> None:
        super().__init__(message)
        self.checkpoint = checkpoint
        self.index = index


class LogCheck(Protocol):
    """An extra check fed every entry in index order, after its leaf hash is recomputed.

    The hook for checks beyond the tree, such as recomputing each round's tally from the entries
    (a later issue). Raise Problem to fail the verification.

    Optionally a check may also define `wants(action: str) -> bool`: then `verify_leaves` feeds it
    only the entries whose action it wants (a check that would ignore most entries anyway saves the
    caller building them). `verify_log` feeds every check every entry, as before.
    """

    def entry(self, index: int, entry: dict[str, Any]) -> None: ...

    def finish(self) -> None: ...


@dataclass
class Report:
    """What one verification found: everything checked out (`ok`), or the first `problem`."""

    ok: bool
    problem: str | None = None
    entries: int = 0
    checkpoints: int = 0
    latest_size: int | None = None
    latest_root: bytes | None = None
    # The checkpoint id and the entry index the problem is about, when it names them.
    failed_checkpoint: int | None = None
    first_bad_index: int | None = None
    # What further checks found, for the summary ("3 published results recounted from the log").
    notes: list[str] = field(default_factory=list)

    @property
    def uncovered(self) -> int:
        """Entries after the latest checkpoint: not yet signed, so not yet verifiable (not an error)."""
        return self.entries - (self.latest_size or 0)

    def summary(self) -> str:
        if not self.ok:
            return f"FAILED: {self.problem}"
        root = self.latest_root.hex() if self.latest_root is not None else "-"
        line = f"OK: {self.entries} entries, {self.checkpoints} checkpoints, latest size {self.latest_size} root {root}"
        if self.uncovered:
            line += f"; {self.uncovered} entries after it not yet covered by a checkpoint"
        return "; ".join([line, *self.notes])


class _Walk:
    """One pass over the entries, advanced checkpoint by checkpoint."""

    def __init__(self, entries: Iterable[EntryItem], checks: Sequence[LogCheck]) -> None:
        self.entries = iter(entries)
        self.checks = checks
        self.tree = RootBuilder()
        self.first_stored_mismatch: int | None = None
        self.has_stored_hashes = False

    def advance_to(self, size: int) -> bool:
        """Read entries until the tree has `size` leaves; False if they run out first."""
        while self.tree.size < size:
            item = next(self.entries, None)
            if item is None:
                return False
            self._take(item)
        return True

    def drain(self) -> None:
        for item in self.entries:
            self._take(item)

    def _take(self, item: EntryItem) -> None:
        index, entry = item[0], item[1]
        stored = item[2] if len(item) > 2 else None
        expected = self.tree.size
        if index != expected:
            raise Problem(
                f"entry {index} where entry {expected} was expected: entries are missing, repeated or out of order",
                index=expected,
            )
        if type(entry) is not dict:
            raise Problem(f"entry {index}: not a JSON object", index=index)
        try:
            recomputed = leaf_hash(canonical_bytes(entry))
        except (TypeError, ValueError) as error:
            raise Problem(f"entry {index}: {error}", index=index) from error
        if stored is not None:
            self.has_stored_hashes = True
            if bytes(stored) != recomputed and self.first_stored_mismatch is None:
                # Not reported yet: the signed root decides whether the entry or the stored hash changed.
                self.first_stored_mismatch = index
        self.tree.append(recomputed)
        for check in self.checks:
            check.entry(index, entry)


class LeafBatch(NamedTuple):
    """Consecutive leaves `start`, `start + 1`, ... whose hashes the caller recomputed from their entries.

    For `verify_leaves`, when the entries are hashed elsewhere (in parallel, from database columns):
    `hashes` holds the recomputed leaf hashes, 32 bytes each, never the stored ones; `entries` the
    `(index, entry)` of those leaves some check wants, in index order; `stored_mismatch` the first
    leaf of the batch whose stored hash differs from the recomputed one (None if none does);
    `has_stored` whether stored hashes were compared at all.
    """

    start: int
    hashes: bytes
    entries: Sequence[tuple[int, dict[str, Any]]] = ()
    stored_mismatch: int | None = None
    has_stored: bool = True

    @property
    def end(self) -> int:
        return self.start + len(self.hashes) // HASH_SIZE


class _BatchWalk(_Walk):
    """The walk of `verify_leaves`: the same checks as `_Walk`, over leaves hashed by the caller."""

    def __init__(self, batches: Iterable[LeafBatch], checks: Sequence[LogCheck]) -> None:
        super().__init__((), checks)
        self.batches = iter(batches)
        self.batch: LeafBatch | None = None
        self.next_entry = 0  # position in self.batch.entries
        self.wants: dict[tuple[int, str], bool] = {}

    def _current(self) -> LeafBatch | None:
        """The batch holding leaf `tree.size`, reading the next one when this one is used up."""
        while self.batch is None or self.tree.size >= self.batch.end:
            batch = next(self.batches, None)
            if batch is None:
                self.batch = None
                return None
            if batch.start != self.tree.size:
                expected = self.tree.size
                raise Problem(
                    f"entry {batch.start} where entry {expected} was expected: entries are missing, repeated or "
                    f"out of order",
                    index=expected,
                )
            if len(batch.hashes) % HASH_SIZE:
                raise ValueError(f"a batch of leaf hashes is {len(batch.hashes)} bytes, not a multiple of {HASH_SIZE}")
            indices = [index for index, _ in batch.entries]
            if indices != sorted(indices) or (indices and not batch.start <= indices[0] <= indices[-1] < batch.end):
                raise ValueError("a batch's entries must be among its leaves, in index order")
            self.batch, self.next_entry = batch, 0
        return self.batch

    def advance_to(self, size: int) -> bool:
        while self.tree.size < size:
            batch = self._current()
            if batch is None:
                return False
            self._take_until(batch, min(size, batch.end))
        return True

    def drain(self) -> None:
        while (batch := self._current()) is not None:
            self._take_until(batch, batch.end)

    def _take_until(self, batch: LeafBatch, stop: int) -> None:
        tree, hashes, start, entries = self.tree, batch.hashes, batch.start, batch.entries
        append = tree.append
        if batch.has_stored:
            self.has_stored_hashes = True
        while tree.size < stop:
            # The next leaf that needs more than appending: an entry a check wants, or the first mismatch.
            index = tree.size
            event = stop
            if self.next_entry < len(entries):
                event = min(event, entries[self.next_entry][0])
            mismatch = batch.stored_mismatch
            if mismatch is not None and index <= mismatch < event:
                event = mismatch
            for offset in range((index - start) * HASH_SIZE, (event - start) * HASH_SIZE, HASH_SIZE):
                append(hashes[offset : offset + HASH_SIZE])
            if event == stop:
                return
            if event == mismatch and self.first_stored_mismatch is None:
                self.first_stored_mismatch = mismatch
            offset = (event - start) * HASH_SIZE
            append(hashes[offset : offset + HASH_SIZE])
            while self.next_entry < len(entries) and entries[self.next_entry][0] == event:
                self._feed(*entries[self.next_entry])
                self.next_entry += 1

    def _feed(self, index: int, entry: dict[str, Any]) -> None:
        action = entry.get("action")
        for number, check in enumerate(self.checks):
            wants = getattr(check, "wants", None)
            if wants is not None and type(action) is str:
                key = (number, action)
                wanted = self.wants.get(key)
                if wanted is None:
                    wanted = self.wants[key] = bool(wants(action))
                if not wanted:
                    continue
            check.entry(index, entry)


def verify_log(
    entries: Iterable[EntryItem],
    checkpoints: Iterable[CheckpointItem],
    verifier: Verifier,
    origin: str,
    *,
    checks: Sequence[LogCheck] = (),
) -> Report:
    """Verify a log given as its entries (index order) and its signed checkpoints (id order).

    Entries are `(index, entry)` or `(index, entry, stored_leaf_hash)`; checkpoints are `(id, note)`
    or `(id, note, consistency_proof)`. Both are consumed lazily, once. Returns a Report naming the
    first problem; Problem raised by either iterable or by a check is reported the same way.
    """
    return _run(_Walk(entries, checks), checkpoints, verifier, origin)


def verify_leaves(
    batches: Iterable[LeafBatch],
    checkpoints: Iterable[CheckpointItem],
    verifier: Verifier,
    origin: str,
    *,
    checks: Sequence[LogCheck] = (),
) -> Report:
    """`verify_log` for a caller that recomputed the leaf hashes itself (LeafBatch), in index order.

    Every other check is the same, and so is the report: the same problem, named the same way, as
    `verify_log` would give for the entries the hashes were computed from. The checks are fed the
    entries of `LeafBatch.entries` only, so the caller must include every entry a check wants
    (every entry, for a check without `wants`). A Problem the batches raise (an entry that cannot
    be hashed) is reported when the walk reaches it, as `verify_log` reports one from its entries.
    """
    return _run(_BatchWalk(batches, checks), checkpoints, verifier, origin)


def _run(walk: _Walk, checkpoints: Iterable[CheckpointItem], verifier: Verifier, origin: str) -> Report:
    report = Report(ok=False)
    try:
        _verify(walk, checkpoints, verifier, origin, report)
    except Problem as problem:
        report.problem = str(problem)
        report.failed_checkpoint = problem.checkpoint
        report.first_bad_index = problem.index
    report.entries = walk.tree.size
    return report


def _verify(
    walk: _Walk, checkpoints: Iterable[CheckpointItem], verifier: Verifier, origin: str, report: Report
) -> None:
    previous: tuple[int, int, bytes] | None = None  # (id, size, root) of the previous checkpoint
    for item in checkpoints:
        checkpoint_id, text = item[0], item[1]
        proof = item[2] if len(item) > 2 else None
        where = f"checkpoint {checkpoint_id}"
        if previous is not None and checkpoint_id <= previous[0]:
            raise Problem(f"{where} comes after checkpoint {previous[0]}: ids must increase", checkpoint=checkpoint_id)
        try:
            checkpoint = parse_checkpoint(open_note(text, [verifier]))
        except NoteError as error:
            raise Problem(f"{where}: {error}", checkpoint=checkpoint_id) from error
        if checkpoint.origin != origin:
            raise Problem(
                f"{where}: origin {checkpoint.origin!r} is not the log's {origin!r}", checkpoint=checkpoint_id
            )
        if previous is not None and checkpoint.size < previous[1]:
            raise Problem(
                f"{where}: size {checkpoint.size} is smaller than checkpoint {previous[0]}'s {previous[1]}: "
                f"a log never shrinks",
                checkpoint=checkpoint_id,
            )
        if not walk.advance_to(checkpoint.size):
            raise Problem(
                f"{where} signs {checkpoint.size} entries but the log has only {walk.tree.size}: "
                f"entries were removed from its end",
                checkpoint=checkpoint_id,
                index=walk.tree.size,
            )
        _check_root(walk, checkpoint_id, checkpoint.size, checkpoint.root, previous)
        # Consistency between checkpoints needs no proof here: both roots were just recomputed from
        # prefixes of one and the same leaf sequence, which is what a consistency proof attests.
        # A bundle may carry the log's proofs all the same; then they must verify too.
        if proof is not None:
            _check_proof(checkpoint_id, checkpoint.size, checkpoint.root, previous, proof)
        previous = (checkpoint_id, checkpoint.size, checkpoint.root)
        report.checkpoints += 1
        report.latest_size, report.latest_root = checkpoint.size, checkpoint.root
    walk.drain()
    if walk.first_stored_mismatch is not None:
        raise Problem(
            f"entry {walk.first_stored_mismatch} (not yet covered by a checkpoint): its stored leaf hash differs "
            f"from the one recomputed from the entry",
            index=walk.first_stored_mismatch,
        )
    for check in walk.checks:
        check.finish()
    if previous is None:
        # Without a signature nothing here is verified; an export always carries the latest checkpoint.
        raise Problem(f"no checkpoint: none of the {walk.tree.size} entries is covered by a signature")
    report.ok = True


def _check_root(
    walk: _Walk, checkpoint_id: int, size: int, signed: bytes, previous: tuple[int, int, bytes] | None
) -> None:
    recomputed = walk.tree.root()
    mismatch = walk.first_stored_mismatch
    if recomputed == signed:
        if mismatch is not None:
            raise Problem(
                f"entry {mismatch}: its stored leaf hash differs from the one recomputed from the entry, though "
                f"checkpoint {checkpoint_id}'s root matches the entries: the stored hash was altered",
                checkpoint=checkpoint_id,
                index=mismatch,
            )
        return
    # The previous checkpoint matched, so the first difference lies at or after its size.
    since = previous[1] if previous is not None else 0
    what = (
        f"checkpoint {checkpoint_id} (size {size}): the root recomputed from the entries, {recomputed.hex()}, "
        f"is not the signed {signed.hex()}"
    )
    if mismatch is not None:
        raise Problem(
            f"{what}; entry {mismatch} is the first whose recomputed leaf hash differs from its stored one: "
            f"it was changed after it was logged",
            checkpoint=checkpoint_id,
            index=mismatch,
        )
    span = f"among entries {since}..{size - 1}" if since < size - 1 else f"entry {since}"
    together = " together with their stored leaf hashes" if walk.has_stored_hashes else ""
    raise Problem(
        f"{what}; the first entry that differs from what was signed is {span}: an entry was edited, deleted, "
        f"inserted or reordered{together}",
        checkpoint=checkpoint_id,
    )


def _check_proof(
    checkpoint_id: int, size: int, root: bytes, previous: tuple[int, int, bytes] | None, proof: Sequence[bytes]
) -> None:
    if previous is None or previous[1] == 0:
        if proof:
            raise Problem(
                f"checkpoint {checkpoint_id}: a consistency proof, but no earlier checkpoint with entries",
                checkpoint=checkpoint_id,
            )
        return
    try:
        verify_consistency(previous[1], size, previous[2], root, proof)
    except ProofError as error:
        raise Problem(
            f"checkpoint {checkpoint_id}: the consistency proof from checkpoint {previous[0]} (size {previous[1]}) "
            f"does not verify: {error.reason}",
            checkpoint=checkpoint_id,
        ) from error


# The bundle on disk


def _json_lines(handle: BinaryIO, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(handle, 1):
        where = f"{name} line {number}"
        try:
            value = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            raise Problem(f"{where}: not UTF-8") from error
        except json.JSONDecodeError as error:
            raise Problem(f"{where}: not valid JSON ({error.msg} at column {error.colno})") from error
        if type(value) is not dict:
            raise Problem(f"{where}: not a JSON object")
        yield number, value


def _check_keys(value: dict[str, Any], required: set[str], optional: set[str], where: str) -> None:
    if missing := required - value.keys():
        raise Problem(f"{where}: missing {', '.join(sorted(missing))}")
    if unknown := value.keys() - required - optional:
        raise Problem(f"{where}: unknown {', '.join(sorted(unknown))}")


def _hex_hash(value: Any, where: str) -> bytes:
    if type(value) is not str or len(value) != 64 or value != value.lower():
        raise Problem(f"{where}: a hash is 64 lowercase hex digits")
    try:
        return bytes.fromhex(value)
    except ValueError as error:
        raise Problem(f"{where}: a hash is 64 lowercase hex digits") from error


def _is_int(value: Any) -> bool:
    return type(value) is int  # not bool, not float


def _bundle_entries(handle: BinaryIO) -> Iterator[EntryItem]:
    for number, line in _json_lines(handle, "entries.jsonl"):
        where = f"entries.jsonl line {number}"
        _check_keys(line, {"index", "entry"}, {"leaf_hash"}, where)
        index, entry = line["index"], line["entry"]
        # Checked here as well as in verify_log, to name the line: line n holds leaf n - 1.
        if not _is_int(index) or index != number - 1:
            raise Problem(
                f"{where}: index {index!r} where {number - 1} was expected: entries are missing, repeated or "
                f"out of order",
                index=number - 1,
            )
        if type(entry) is not dict:
            raise Problem(f"{where}: entry {index} is not a JSON object", index=index)
        stored = _hex_hash(line["leaf_hash"], f"{where}: leaf_hash") if "leaf_hash" in line else None
        yield index, entry, stored


def _bundle_checkpoints(handle: BinaryIO) -> Iterator[CheckpointItem]:
    for number, line in _json_lines(handle, "checkpoints.jsonl"):
        where = f"checkpoints.jsonl line {number}"
        _check_keys(line, {"id", "note"}, {"consistency_proof"}, where)
        if not _is_int(line["id"]) or type(line["note"]) is not str:
            raise Problem(f"{where}: id must be an integer and note a string")
        proof = None
        if "consistency_proof" in line:
            if type(line["consistency_proof"]) is not list:
                raise Problem(f"{where}: consistency_proof must be a list of hashes")
            proof = [_hex_hash(element, f"{where}: consistency_proof") for element in line["consistency_proof"]]
        yield line["id"], line["note"], proof


def _read_manifest(directory: Path) -> tuple[str, int]:
    try:
        manifest = json.loads((directory / "manifest.json").read_bytes().decode("utf-8"))
    except FileNotFoundError as error:
        raise Problem(f"manifest.json is missing from {directory}") from error
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Problem(f"manifest.json: not valid JSON ({error})") from error
    if type(manifest) is not dict:
        raise Problem("manifest.json: not a JSON object")
    if manifest.get("format") != BUNDLE_FORMAT or not _is_int(manifest.get("format")):
        raise Problem(
            f"manifest.json: format {manifest.get('format')!r}, but this verifier reads format {BUNDLE_FORMAT}"
        )
    origin, size = manifest.get("origin"), manifest.get("tree_size")
    if type(origin) is not str or not origin or not _is_int(size) or size < 0:
        raise Problem("manifest.json: origin must be a non-empty string and tree_size a non-negative integer")
    return origin, size


def _read_public_key(directory: Path) -> Verifier:
    try:
        text = (directory / "public-key.txt").read_bytes().decode("utf-8")
    except FileNotFoundError as error:
        raise Problem(f"public-key.txt is missing from {directory}") from error
    except UnicodeDecodeError as error:
        raise Problem("public-key.txt: not UTF-8") from error
    key = text.removesuffix("\n")
    if not key or "\n" in key:
        raise Problem("public-key.txt: one line, the verifier key")
    try:
        return Verifier.from_key(key)
    except NoteError as error:
        raise Problem(f"public-key.txt: {error}") from error


def _check_expected_key(verifier: Verifier, public_key: str) -> None:
    try:
        expected = Verifier.from_key(public_key.strip())
    except NoteError as error:
        raise Problem(f"the expected public key: {error}") from error
    if verifier.verifier_key != expected.verifier_key:
        raise Problem(
            f"public-key.txt: the bundle's key {verifier.name}+{verifier.key_id.hex()} is not the expected "
            f"{expected.name}+{expected.key_id.hex()}"
        )


def _open(directory: Path, name: str) -> BinaryIO:
    try:
        return (directory / name).open("rb")
    except FileNotFoundError as error:
        raise Problem(f"{name} is missing from {directory}") from error


def verify_bundle(path: str | Path, *, public_key: str | None = None, checks: Sequence[LogCheck] = ()) -> Report:
    """Verify the bundle in directory `path` (format in the module docstring).

    `public_key`, the log's published verifier key, if given, must be the one the bundle carries. When
    the bundle holds published results, each is recounted from the entries as well.
    """
    directory = Path(path)
    recount = None
    try:
        if not directory.is_dir():
            raise Problem(f"{directory} is not a directory")
        origin, size = _read_manifest(directory)
        verifier = _read_public_key(directory)
        if public_key is not None:
            _check_expected_key(verifier, public_key)
        if (directory / "results.jsonl").exists():
            recount = _recount(directory, verifier)
            checks = [*checks, recount]
        with _open(directory, "entries.jsonl") as entries, _open(directory, "checkpoints.jsonl") as checkpoints:
            report = verify_log(
                _bundle_entries(entries), _bundle_checkpoints(checkpoints), verifier, origin, checks=checks
            )
    except Problem as problem:
        return Report(
            ok=False, problem=str(problem), failed_checkpoint=problem.checkpoint, first_bad_index=problem.index
        )
    if report.ok and report.entries != size:
        report.ok = False
        report.problem = f"manifest.json: tree_size {size}, but entries.jsonl holds {report.entries} entries"
    if report.ok and recount is not None and recount.summary():
        report.notes.append(recount.summary())
    return report


def _recount(directory: Path, verifier: Verifier):
    from audit.recount import Recount  # it uses Problem from here

    with _open(directory, "results.jsonl") as handle:
        documents = [document for _, document in _json_lines(handle, "results.jsonl")]
    roots = {}
    with _open(directory, "checkpoints.jsonl") as handle:
        for item in _bundle_checkpoints(handle):
            try:
                checkpoint = parse_checkpoint(open_note(item[1], [verifier]))
            except NoteError:
                continue  # reported by the walk over the checkpoints
            roots[checkpoint.size] = checkpoint.root
    return Recount(documents, verifier, roots)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m audit.verify",
        description="Verify an exported Kalpi audit log: every leaf, every checkpoint's root and signature.",
    )
    parser.add_argument("directory", metavar="DIR", help="the directory `manage.py export_audit DIR` wrote")
    parser.add_argument(
        "--public-key",
        metavar="KEY",
        help="the log's published verifier key (<name>+<key id>+<base64 key>); the bundle's must be this one",
    )
    arguments = parser.parse_args(argv)
    report = verify_bundle(arguments.directory, public_key=arguments.public_key)
    print(report.summary(), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
