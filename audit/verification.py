"""Verifying and exporting the log held in the database, with the same checks as the standalone verifier.

On PostgreSQL `verify_database` reads the entries with `COPY (SELECT ...) TO STDOUT`, the columns
already in the form the entry document needs (the timestamp formatted by the server exactly as
`entry_document` formats it, the payload as JSON text), recomputes each leaf hash from them, and
splits the leaves between this process and forked workers, each reading its own range on its own
connection; this process builds the tree from the recomputed leaf hashes in order and checks every
checkpoint, as `verify_log` does (audit.verify.verify_leaves). Elsewhere (SQLite), and for an export,
the entries are read through the ORM.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import multiprocessing
import os
import queue
import re
import traceback
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from json.encoder import c_make_encoder, encode_basestring
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from audit import keys, merkle
from audit.canonical import canonical_bytes
from audit.models import Action, Checkpoint, Entry, Leaf, Node, entry_document
from audit.recount import Recount
from audit.selectors import NodeReader, tree_size
from audit.verify import BUNDLE_FORMAT, LeafBatch, LogCheck, Problem, Report, verify_leaves, verify_log

ProgressCallback = Callable[[int], None]
_CHUNK = 5000
_COLUMNS = ("index", "hash", "entry__id", "entry__action", "entry__actor", "entry__payload", "entry__created_at")

# Below this many leaves one process verifies the whole log (a fork costs more than it saves).
PARALLEL_MIN_LEAVES = 50_000
# The share of the leaves this process hashes itself when it forks workers: it also builds the tree
# and runs the checks for all of them, so it takes less than an equal share (measured, docs/benchmarks.md).
PARENT_SHARE = 0.4
# At most this many workers besides this process (one per further core).
MAX_WORKERS = 3


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


# --- Leaves straight from PostgreSQL (COPY) ---------------------------------------------------------------

# entry_document's `created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")`, done by the server.
# Outside the years 1 to 9999 (which a Python datetime cannot hold) it gives NULL, reported as a problem.
_CREATED_AT_FORMAT = """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""
# strftime pads %Y to four digits on some platforms and Python versions and not on others; to_char
# always does, so a year before 1000 is rewritten to whatever entry_document gives here.
_YEAR_PADDED = datetime(1, 1, 1).strftime("%Y") == "0001"
_BATCH = 5000  # leaves per LeafBatch
# Settings for the COPY's session (restored after it on this process's connection). The processes of
# verify_audit already keep the cores busy: a parallel plan (a hash join of both tables and a sort,
# with two more server processes per COPY) and JIT compilation only add CPU time. Measured on a
# 1,000,000-entry log: server CPU 3.8-4.1 s with the defaults, 2.5-2.6 s with these.
SESSION_SETTINGS: dict[str, str] = {"jit": "off", "max_parallel_workers_per_gather": "0"}


def leaves_sql(start: int = 0, end: int | None = None) -> str:
    """The SELECT the PostgreSQL verifier streams for leaves start <= index < end: per leaf its index,
    stored hash (hex), and the entry's id, action, actor, payload (JSON text) and created_at (text)."""
    q = connection.ops.quote_name
    leaf, entry = q(Leaf._meta.db_table), q(Entry._meta.db_table)
    index, created_at = q("index"), f"e.{q('created_at')}"
    where = f"l.{index} >= {int(start)}" + (f" AND l.{index} < {int(end)}" if end is not None else "")
    return (
        f"SELECT l.{index}, encode(l.{q('hash')}, 'hex'), e.{q('id')}, e.{q('action')}, e.{q('actor')}, "
        f"e.{q('payload')}::text, "
        f"CASE WHEN {created_at} >= '0001-01-01 00:00:00+00' AND {created_at} < '10000-01-01 00:00:00+00' "
        f"THEN to_char({created_at} AT TIME ZONE 'UTC', {_CREATED_AT_FORMAT}) END "
        f"FROM {leaf} l JOIN {entry} e ON e.{q('id')} = l.{q(Leaf._meta.get_field('entry').column)} "
        f"WHERE {where} ORDER BY l.{index}"
    )


class _FloatInJson(Exception):
    pass


def _no_float(text: str) -> Any:
    raise _FloatInJson(text)


# json.loads without its wrapper (the scanner alone is about twice as fast on a small payload), refusing
# floats (and NaN, Infinity) so that what it returns needs no type check before canonical encoding.
_scan_json = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_float).scan_once
# canonical_bytes' encoder, for values known to be plain (they come from the scanner above): the C
# encoder that JSONEncoder.encode builds on every call, built once (the same text in half the time).
_encode = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False, allow_nan=False
).encode
_c_encoder = (
    c_make_encoder(None, json.JSONEncoder().default, encode_basestring, None, ":", ",", True, False, False)
    if c_make_encoder is not None
    else None
)
_sha256 = hashlib.sha256
_COPY_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))", re.DOTALL)
_COPY_CHARACTERS = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _copy_unescape(field: str) -> str | None:
    """A field of COPY's text format as the value it stands for (None for NULL)."""
    if field == "\\N":
        return None

    def one(match: re.Match) -> str:
        octal, hexadecimal, other = match.groups()
        if octal is not None:
            return chr(int(octal, 8))
        if hexadecimal is not None:
            return chr(int(hexadecimal, 16))
        return _COPY_CHARACTERS.get(other, other)

    return _COPY_ESCAPE.sub(one, field)


def _canonical_leaf_data(index: int, id_: str, action: str, actor: str, payload_text: str, created_at: str):
    """(canonical bytes of the entry's document, its payload) the slow way, for what the fast path in
    `_leaf_batches` does not take (a float, odd JSON, an encoding error): `json.loads` and
    `canonical_bytes` themselves, which also word the problem as the entry-by-entry verifier does."""
    payload = json.loads(payload_text)
    document = {"id": int(id_), "action": action, "actor": actor, "payload": payload, "created_at": created_at}
    try:
        return canonical_bytes(document), payload
    except (TypeError, ValueError) as error:
        raise Problem(f"entry {index}: {error}", index=index) from error


def _copy_out(pgconn: Any, sql: str, rows: int = 1000) -> Iterator[bytes]:
    """The text of `COPY (sql) TO STDOUT`, read from libpq directly in chunks of `rows` rows.

    psycopg's `Cursor.copy()` hands over one row per read, through a generator and a wait loop per
    row; here it is one C call per row (about 2 µs a row less, measured). The connection is left
    idle, the COPY read to its end, whatever stops the caller.
    """
    from psycopg import errors, pq

    pgconn.send_query(f"COPY ({sql}) TO STDOUT".encode())
    result = pgconn.get_result()
    done = False
    try:
        if result is None or result.status != pq.ExecStatus.COPY_OUT:
            done = True
            raise errors.error_from_result(result) if result is not None else errors.InternalError("no COPY")
        get = pgconn.get_copy_data
        parts: list[memoryview] = []
        while True:
            nbytes, data = get(0)
            if nbytes < 0:
                done = True  # the COPY's end (-1) or its failure (-2, reported by get_result below)
                break
            parts.append(data)
            if len(parts) >= rows:
                yield b"".join(parts)
                parts = []
        if parts:
            yield b"".join(parts)
    finally:
        while not done and pgconn.get_copy_data(0)[0] >= 0:
            pass  # the rest of the rows: the connection must be left ready for the next statement
        failed = None
        while (result := pgconn.get_result()) is not None:
            if result.status not in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.COPY_OUT) and failed is None:
                failed = errors.error_from_result(result)
    if failed is not None:
        raise failed


def _leaf_batches(
    blocks: Iterable[bytes | memoryview], start: int, wanted: Callable[[str], bool]
) -> Iterator[LeafBatch]:
    """LeafBatches from the COPY text of `leaves_sql(start, ...)`: every leaf hash recomputed from the
    entry's columns and compared with the stored one; the entries `wanted` by their action kept.

    A Problem (a missing leaf, an entry that cannot be hashed) is raised after the batch of the leaves
    before it, so the walk reaches it exactly where verify_log would.
    """
    expected = batch_start = start
    hashes = bytearray()
    entries: list[tuple[int, dict]] = []
    mismatch: int | None = None
    wants: dict[str, bool] = {}
    rest = b""
    sha256, fromhex, scan, escape, join = _sha256, bytes.fromhex, _scan_json, encode_basestring, "".join
    encode = _c_encoder
    problem: Problem | None = None
    try:
        for block in blocks:
            data = rest + block
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            rest = data[cut + 1 :]
            for line in data[:cut].decode().split("\n"):
                fields = line.split("\t")
                if "\\" in line:
                    fields = [_copy_unescape(field) for field in fields]
                index_text, stored, id_, action, actor, payload_text, created_at = fields
                index = int(index_text)
                if index != expected:
                    raise Problem(
                        f"entry {index} where entry {expected} was expected: entries are missing, repeated or "
                        f"out of order",
                        index=expected,
                    )
                if created_at is None:
                    raise Problem(f"entry {index}: created_at is outside the years 1 to 9999", index=index)
                if created_at[0] == "0" and not _YEAR_PADDED:
                    created_at = created_at[:4].lstrip("0") + created_at[4:]
                # The common case: exactly canonical_bytes(entry_document(...)), the five keys in sorted
                # order around the payload's canonical encoding; anything else the slow way.
                try:
                    payload, end = scan(payload_text, 0)
                    if end != len(payload_text):
                        raise ValueError("trailing text")
                    data_ = (
                        '{"action":' + escape(action) + ',"actor":' + escape(actor) + ',"created_at":"'
                        + created_at + '","id":' + id_ + ',"payload":'
                        + (join(encode(payload, 0)) if encode is not None else _encode(payload)) + "}"
                    ).encode()  # fmt: skip
                except (_FloatInJson, StopIteration, ValueError):
                    data_, payload = _canonical_leaf_data(index, id_, action, actor, payload_text, created_at)
                leaf = sha256(b"\x00" + data_).digest()
                hashes += leaf
                if mismatch is None and leaf != fromhex(stored):
                    mismatch = index
                want = wants.get(action)
                if want is None:
                    want = wants[action] = wanted(action)
                if want:
                    document = {"id": int(id_), "action": action, "actor": actor, "payload": payload,
                                "created_at": created_at}  # fmt: skip
                    entries.append((index, document))
                expected += 1
                if expected - batch_start >= _BATCH:
                    yield LeafBatch(batch_start, bytes(hashes), entries, mismatch)
                    batch_start, hashes, entries, mismatch = expected, bytearray(), [], None
        if rest:
            raise ValueError("COPY data does not end with a newline")
    except Problem as found:
        problem = found
    # Whatever stops the stream (its end, a Problem), the leaves before it are delivered first.
    if expected > batch_start:
        yield LeafBatch(batch_start, bytes(hashes), entries, mismatch)
    if problem is not None:
        raise problem


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
    reader = NodeReader()
    wanted = sorted({node for pair in pairs for node in merkle.consistency_proof_nodes(*pair)})
    if connection.vendor == "postgresql":
        known = _stored_nodes(wanted)
    else:
        known = {}
        for start in range(0, len(wanted), 500):
            reader.prefetch(wanted[start : start + 500])

    def nodes(level: int, index: int) -> bytes:
        # One not read above (none should be) is read, or found missing, by NodeReader as before.
        value = known.get((level, index))
        return value if value is not None else reader(level, index)

    previous = None
    for id_, checkpoint_size, note in checkpoints:
        proof = None
        if previous is not None and 0 < previous <= checkpoint_size <= size:
            proof = merkle.consistency_proof(previous, checkpoint_size, nodes)
        yield id_, note, proof
        previous = checkpoint_size


def _stored_nodes(wanted: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored hashes of these (level, index) subtrees, in one query per table (PostgreSQL arrays):
    a thousand checkpoints need thousands of nodes, which NodeReader.prefetch reads 500 at a time
    with a condition per node, about 0.3 s per 200 checkpoints here."""
    q = connection.ops.quote_name
    found: dict[tuple[int, int], bytes] = {}
    leaves = [index for level, index in wanted if level == 0]
    interior = [(level, index) for level, index in wanted if level > 0]
    with connection.cursor() as cursor:
        if interior:
            cursor.execute(
                f"SELECT n.{q('level')}, n.{q('index')}, n.{q('hash')} FROM {q(Node._meta.db_table)} n "
                f"JOIN unnest(%s::integer[], %s::bigint[]) AS w(level, index) "
                f"ON n.{q('level')} = w.level AND n.{q('index')} = w.index",
                [[level for level, _ in interior], [index for _, index in interior]],
            )
            for level, index, value in cursor.fetchall():
                found[(level, index)] = bytes(value)
        if leaves:
            table, index_ = q(Leaf._meta.db_table), q("index")
            cursor.execute(f"SELECT {index_}, {q('hash')} FROM {table} WHERE {index_} = ANY(%s::bigint[])", [leaves])
            for index, value in cursor.fetchall():
                found[(0, index)] = bytes(value)
    return found


def verify_database(*, on_progress: ProgressCallback | None = None, workers: int | None = None) -> Report:
    """Recompute every leaf from its entry, every checkpoint's root and signature, and the consistency
    between consecutive checkpoints; recount every published result from the entries; name the first
    entry, checkpoint or document that differs.

    `workers`: processes forked to hash ranges of leaves alongside this one (PostgreSQL only, outside
    a transaction, since they read on their own connections); by default one per further core.
    """
    try:
        recount = _Recount(_published_documents(), keys.verifier(), _checkpoint_roots())
    except Problem as problem:
        return Report(ok=False, problem=str(problem))
    checks: list[LogCheck] = [recount]
    if connection.vendor == "postgresql":
        # Checkpoints (and their proofs' nodes) are read before the entries, so the entries read
        # cover every checkpoint's size, as when the walk started with the first checkpoint.
        checkpoints = _read_ahead(_checkpoints())
        with contextlib.closing(_database_leaves(checks, on_progress, workers)) as batches:
            report = verify_leaves(batches, checkpoints, keys.verifier(), settings.KALPI_LOG_ORIGIN, checks=checks)
    else:
        report = verify_log(
            _entries(on_progress), _checkpoints(), keys.verifier(), settings.KALPI_LOG_ORIGIN, checks=checks
        )
    if report.ok and recount.summary():
        report.notes.append(recount.summary())
    return report


class _Recount(Recount):
    def wants(self, action: str) -> bool:
        # Exactly the entries Recount.entry acts on: those whose action has a handler.
        return getattr(self, "_" + action.replace(".", "_"), None) is not None


def _read_ahead(items: Iterable[Any]) -> Iterator[Any]:
    """The items read now; an error reading them is raised where it came, after the items before it."""
    read, error = [], None
    try:
        read.extend(items)
    except Exception as exc:
        error = exc

    def replay() -> Iterator[Any]:
        yield from read
        if error is not None:
            raise error

    return replay()


def _wanted(checks: list[LogCheck]) -> Callable[[str], bool]:
    """Whether some check wants the entries of an action (a check without `wants` wants them all)."""
    wants = [getattr(check, "wants", None) for check in checks]
    if any(w is None for w in wants):
        return lambda action: True
    return lambda action: any(w(action) for w in wants)


def _worker_count(workers: int | None, size: int) -> int:
    if workers is not None:
        return max(0, workers)
    if size < PARALLEL_MIN_LEAVES or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(0, min(MAX_WORKERS, cores - 1))


def _database_leaves(checks: list[LogCheck], on_progress: ProgressCallback | None, workers: int | None):
    """Every leaf, hashed from its entry's columns, as LeafBatches in index order (PostgreSQL)."""
    wanted = _wanted(checks)
    size = tree_size()
    count = _worker_count(workers, size)
    if connection.in_atomic_block or "fork" not in multiprocessing.get_all_start_methods():
        count = 0  # workers on other connections would not see this transaction's rows
    # Leaves [0, bounds[0]) here, [bounds[k], bounds[k + 1]) in worker k, the last one to the end.
    own = size if not count else int(size * PARENT_SHARE)
    bounds = [own + (size - own) * k // count for k in range(count)] + [None]
    children = []
    try:
        if count:
            params = {k: v for k, v in connection.get_connection_params().items() if k not in _NOT_PICKLED}
            unwanted = frozenset(action for action in Action.values if not wanted(action))
            context = multiprocessing.get_context("fork")
            for k in range(count):
                results = context.Queue()
                process = context.Process(
                    target=_worker,
                    args=(params, leaves_sql(bounds[k], bounds[k + 1]), bounds[k], unwanted, results),
                    name=f"verify_audit leaves {bounds[k]}-",
                    daemon=True,
                )
                process.start()
                children.append((process, results))
        with connection.cursor() as cursor:
            previous = {}
            for name, value in SESSION_SETTINGS.items():
                cursor.execute("SELECT current_setting(%s), set_config(%s, %s, false)", [name, name, value])
                previous[name] = cursor.fetchone()[0]
        try:
            own = _copy_out(connection.connection.pgconn, leaves_sql(0, bounds[0] if count else None))
            with contextlib.closing(own):
                for batch in _leaf_batches(own, 0, wanted):
                    yield batch
                    if on_progress is not None:
                        on_progress(batch.end)
        finally:
            if previous:
                with connection.cursor() as cursor:
                    for name, value in previous.items():
                        cursor.execute("SELECT set_config(%s, %s, false)", [name, value])
        for process, results in children:
            for batch in _received(process, results):
                yield batch
                if on_progress is not None:
                    on_progress(batch.end)
    finally:
        for process, results in children:
            if process.is_alive():
                process.terminate()
            process.join()
            results.close()


# Connection parameters a forked worker cannot use: Django's adapters and cursor class.
_NOT_PICKLED = {"context", "cursor_factory"}


def _worker(params: dict, sql: str, start: int, unwanted: frozenset[str], results) -> None:
    """A forked worker: hash the leaves `sql` selects on its own connection and send the LeafBatches."""
    import psycopg

    try:
        with psycopg.connect(**params) as conn:
            for name, value in SESSION_SETTINGS.items():
                conn.execute("SELECT set_config(%s, %s, false)", [name, value])
            for batch in _leaf_batches(_copy_out(conn.pgconn, sql), start, lambda action: action not in unwanted):
                results.put(batch)
        results.put(None)
    except Problem as problem:
        results.put(("problem", str(problem), problem.index))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def _received(process, results) -> Iterator[LeafBatch]:
    while True:
        try:
            item = results.get(timeout=1.0)
        except queue.Empty:
            if process.is_alive():
                continue
            try:
                item = results.get(timeout=1.0)
            except queue.Empty:
                raise RuntimeError(f"a verify_audit worker exited with {process.exitcode} before its end") from None
        if item is None:
            return
        if isinstance(item, LeafBatch):
            yield item
        elif item[0] == "problem":
            raise Problem(item[1], index=item[2])
        else:
            raise RuntimeError(f"a verify_audit worker failed:\n{item[1]}")


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
