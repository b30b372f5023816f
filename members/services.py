"""Every write to the roster: the CSV import (bulk, all-or-nothing) and its report."""

from __future__ import annotations

import hashlib
import io
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

import psycopg
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from audit import services as audit
from audit.keys import member_pseudonym
from audit.models import Action
from config.locks import transaction_lock
from members import roster_copy
from members.models import Member
from members.roster_csv import HeaderError, RosterReader, RosterRow, RowError

# How many errors a report keeps in full; the rest are only counted, so memory stays flat.
MAX_REPORTED_ERRORS = 1000
# Rows per INSERT batch on SQLite (COPY streams them on PostgreSQL).
SQLITE_BATCH = 5000
PROGRESS_EVERY = 10_000
IMPORT_WORK_MEM = "64MB"

_STAGING = "roster_staging"
_MEMBER_NO_HASH = "hashtextextended(member_no, 0)"
# Statistics of the columns the merge joins on, the only ones a plan needs: half the time of all ten
# (1,000,000 rows: 0.10 s against 0.21 s), which goes on reading the sample.
_ANALYZE_STAGING = f"ANALYZE {_STAGING} (member_no, branch)"
_STAGING_COLUMNS = (
    "line",
    "member_no",
    "first_name",
    "last_name",
    "branch",
    "joined_on",
    "status",
    "dues_paid_until",
    "email",
    "phone",
)
# The member fields an import sets; a row counts as changed when any of them differs.
_COMPARED = ("first_name", "last_name", "joined_on", "status", "dues_paid_until", "email", "phone")
# The merge's pieces of SQL over `_COMPARED`, shared by its SQLite and PostgreSQL forms.
_SET_COMPARED = ", ".join(f"{c} = s.{c}" for c in _COMPARED)
_INSERTED_COLUMNS = ", ".join(("member_no", *_COMPARED))
_FILE_VALUES = ", ".join(f"s.{c}" for c in ("member_no", *_COMPARED))

ProgressCallback = Callable[[int, int], None]  # (bytes read, rows read)


@dataclass
class ImportReport:
    sha256: str = ""
    dry_run: bool = False
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    branches_created: int = 0
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and self.error_count == 0

    @property
    def written(self) -> bool:
        return self.ok and not self.dry_run

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)

    def summary(self) -> str:
        counts = f"created {self.created}, updated {self.updated}, unchanged {self.unchanged}, rejected {self.rejected}"
        if not self.ok:
            return f"Rejected: {self.rejected} bad row(s) in {self.rows}; nothing was written ({counts})."
        if self.dry_run:
            return f"Dry run of {self.rows} rows, nothing written: would have {counts}."
        return f"Imported {self.rows} rows: {counts}."


class RosterFileError(Exception):
    """The file cannot be imported at all (for example, its header is wrong)."""

    code = "roster_invalid"


class _HashingStream:
    """Wraps a binary stream, hashing what is read, so the report can name the exact file."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()

    def __iter__(self):
        for chunk in self._stream:
            self.digest.update(chunk)
            yield chunk


def import_roster(
    *, stream: BinaryIO, actor: str, dry_run: bool = False, on_progress: ProgressCallback | None = None
) -> ImportReport:
    """Import a roster CSV: upsert members by member number, create unknown branches.

    All or nothing, in one transaction: any bad row (or a crash, or a kill) leaves the roster exactly
    as it was. The rows go into a staging table, are checked there for repeated member numbers, then
    merged by set-based statements that touch only the members whose data changed (on PostgreSQL, into
    a roster that has members: one parallel comparison, then an UPDATE of the changed members and an
    INSERT of the new ones; into an empty one: an INSERT, with the keys built after it).
    On PostgreSQL, with a seekable file, a plain file goes to COPY once each chunk is proven plainly
    good (`roster_copy`): straight into the members table when the roster is empty
    (`_copy_into_empty_roster`), else as its own bytes into the staging table. If anything in it is
    not plainly good, the file is read again by `RosterReader`, which names every bad row (then COPY
    of its rows on PostgreSQL, batched inserts on SQLite). Safe to run twice: the second run reports
    everything unchanged. Two imports at once are serialised by a lock. A real
    import writes one `roster.imported` audit entry (the file's SHA-256 and the counts) in the same
    transaction.
    """
    in_server = connection.vendor == "postgresql" and hasattr(stream, "seekable") and stream.seekable()
    start = stream.tell() if in_server else 0
    hashing, reader = (None, None) if in_server else _python_reader(stream)
    report = ImportReport(dry_run=dry_run)

    with transaction.atomic():
        # Two imports at once would each see the other's members as missing; serialise them.
        transaction_lock("kalpi.roster_import")
        with connection.cursor() as cursor:
            copied = in_server and not dry_run and _copy_into_empty_roster(cursor, stream, report, on_progress)
            if in_server and not copied:
                stream.seek(start)
                report = ImportReport(dry_run=dry_run)
                if not _stage_in_server(cursor, stream, report, on_progress):
                    stream.seek(start)
                    report = ImportReport(dry_run=dry_run)
                    hashing, reader = _python_reader(stream)
            if reader is not None:
                _stage_in_python(cursor, reader, hashing, report, on_progress)
            if not report.ok:
                transaction.set_rollback(True)
                return report
            if dry_run:
                _count_changes(cursor, report)
                transaction.set_rollback(True)
                return report
            if not copied:
                if connection.vendor == "postgresql":
                    # The merge joins the whole file to the whole roster: with the default 4 MB the hash
                    # join spills to disk in 32 batches. For the rest of this transaction only.
                    cursor.execute(f"SET LOCAL work_mem = '{IMPORT_WORK_MEM}'")
                _merge(cursor, report)
                _drop_staging(cursor)
        audit.record(
            action=Action.ROSTER_IMPORTED,
            actor=actor,
            payload={
                "sha256": report.sha256,
                "rows": report.rows,
                "created": report.created,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "branches_created": report.branches_created,
            },
        )
    return report


def _python_reader(stream: BinaryIO) -> tuple[_HashingStream, RosterReader]:
    hashing = _HashingStream(stream)
    try:
        return hashing, RosterReader(hashing)  # type: ignore[arg-type]
    except HeaderError as exc:
        raise RosterFileError(str(exc)) from None


class _PlainFile:
    """A file for the fast path: its header's columns, its chunks proven plain, its hash and progress."""

    def __init__(self, stream: BinaryIO, on_progress: ProgressCallback | None) -> None:
        self.stream = stream
        self.digest = hashlib.sha256()
        self._on_progress = on_progress
        header = stream.readline()
        self.digest.update(header)
        self._done, self._lines = len(header), 0
        self.columns: list[str] | None = None
        if b'"' in header:
            return  # a quoted header could run over several lines: the csv module reads that one
        try:
            self.columns = RosterReader(io.BytesIO(header)).columns
        except HeaderError as exc:
            raise RosterFileError(str(exc)) from None

    def copy_sql(self, table: str, names: Sequence[str]) -> str:
        """COPY of the file's columns, named `names` in `table`; an empty value is NULL only for a date."""
        assert self.columns is not None
        not_null = ", ".join(n for n, c in zip(names, self.columns, strict=True) if c not in roster_copy.DATE_COLUMNS)
        return f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL ({not_null}))"

    def chunks(self) -> Iterator[bytes]:
        assert self.columns is not None
        return roster_copy.plain_chunks(self.stream, self.columns, on_chunk=self._on_chunk)

    def _on_chunk(self, chunk: bytes) -> None:
        self.digest.update(chunk)
        self._done += len(chunk)
        self._lines += chunk.count(b"\n")
        if self._on_progress is not None:
            self._on_progress(self._done, self._lines)


def _stage_in_server(cursor, stream: BinaryIO, report: ImportReport, on_progress: ProgressCallback | None) -> bool:
    """The fast path (`roster_copy`): True with the staging table filled and the report's rows and hash.

    False, with nothing staged, when the file is not plainly good: the caller reads it again in Python.
    A bad header raises RosterFileError, as on the Python path.
    """
    plain = _PlainFile(stream, on_progress)
    if plain.columns is None:
        return False
    try:
        with transaction.atomic():
            _create_staging(cursor)
            with cursor.copy(plain.copy_sql(_STAGING, plain.columns)) as copy:
                for chunk in plain.chunks():
                    copy.write(chunk)
            # Distinct 64-bit hashes sort faster than the numbers as text, most of all for a file not
            # in member-number order (1,000,000 rows: 0.2 s against 0.6 s). A number twice gives fewer
            # hashes, and so could two numbers of one hash: then the numbers themselves decide.
            cursor.execute(f"SELECT COUNT(*), COUNT(DISTINCT {_MEMBER_NO_HASH}) FROM {_STAGING}")
            rows, distinct = cursor.fetchone()
            if rows != distinct:
                cursor.execute(f"SELECT COUNT(DISTINCT member_no) FROM {_STAGING}")
                if cursor.fetchone()[0] != rows:
                    raise roster_copy.NotPlain("a member number twice")  # RosterReader names the lines
            cursor.execute(_ANALYZE_STAGING)
    except (roster_copy.NotPlain, psycopg.Error, DatabaseError):
        # psycopg.Error: Django wraps execute()'s errors, not copy()'s (an impossible date, a wrong
        # column count, lines ending differently).
        return False
    report.rows = rows
    report.sha256 = plain.digest.hexdigest()
    return True


class _NotEmpty(Exception):
    """The roster got members before its lock: a first import's direct COPY does not apply."""


def _copy_into_empty_roster(
    cursor, stream: BinaryIO, report: ImportReport, on_progress: ProgressCallback | None
) -> bool:
    """A first import of a plain file on PostgreSQL: COPY it straight into the members table.

    Staging a first import's file and then copying it into members with INSERT … SELECT wrote the rows
    twice, and INSERT writes one WAL record per row where COPY writes one per page (docs/benchmarks.md).
    Here the members table, locked and empty, has its keys set aside as for any first import; the
    file's chunks are proven plain as on the staging path, their branch codes turned into branch ids
    (new branches are created as they appear, between two COPY statements), and the keys built after
    the COPY are the checks that staging made: the unique member number refuses a number twice, the
    foreign key a branch that is not there. True with the members written and the report filled.
    False, with nothing written and the file to be read again, whenever this path does not apply or
    anything fails: the roster has members, the file is not plain, the server refuses a value, a
    number comes twice. The staging path then decides, and names every bad row, as it always did.
    """
    table = Member._meta.db_table
    if _has_rows(cursor, table):
        return False
    plain = _PlainFile(stream, on_progress)
    if plain.columns is None:
        return False
    branch_at = plain.columns.index("branch")
    names = [("branch_id" if c == "branch" else c) for c in plain.columns]
    copy_sql = plain.copy_sql(table, names)
    try:
        with transaction.atomic(), _keys_built_after_if_empty(cursor, table) as set_aside:
            if not set_aside:
                raise _NotEmpty
            cursor.execute("SELECT code, id FROM members_branch")
            ids = {code.encode(): str(pk).encode() for code, pk in cursor.fetchall()}
            # What the file does not give: the time of the import, as `auto_now` would set it, and the
            # model's empty email and phone when the file has no such column. The defaults are the
            # import's own, dropped again before its transaction ends.
            defaults = {"updated_at": "now()", **{c: "''" for c in ("email", "phone") if c not in plain.columns}}
            cursor.execute(_alter_columns(table, {c: f"SET DEFAULT {v}" for c, v in defaults.items()}))
            report.rows = _copy_with_branch_ids(cursor, copy_sql, plain.chunks(), branch_at, ids, report)
            cursor.execute(_alter_columns(table, dict.fromkeys(defaults, "DROP DEFAULT")))
    except (_NotEmpty, roster_copy.NotPlain, psycopg.Error, DatabaseError):
        return False
    report.created = report.rows
    report.sha256 = plain.digest.hexdigest()
    return True


def _alter_columns(table: str, changes: dict[str, str]) -> str:
    return f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {c} {change}" for c, change in changes.items())


def _copy_with_branch_ids(
    cursor, copy_sql: str, chunks: Iterator[bytes], branch_at: int, ids: dict[bytes, bytes], report: ImportReport
) -> int:
    """COPY the chunks with each row's branch code (column `branch_at`) turned into its id. A chunk
    naming a branch not in `ids` ends the COPY; the new branches are created (and counted in the
    report), and a new COPY goes on from that chunk. Returns the rows copied."""
    rows = 0
    waiting: list[bytes] = []  # the chunk that named a new branch, for the next COPY
    while True:
        with cursor.copy(copy_sql) as copy:
            for chunk in itertools.chain(waiting, chunks):
                data = _with_branch_ids(chunk, branch_at, ids)
                if data is None:
                    waiting = [chunk]
                    break
                copy.write(data)
            else:
                waiting = []
        rows += cursor.rowcount
        if not waiting:
            return rows
        codes = {_fields(line, branch_at)[branch_at].decode() for line in _lines(waiting[0])}
        new = sorted(c for c in codes if c.encode() not in ids)
        _insert_branches(cursor, "SELECT unnest(%s::text[]) AS code", report, [new])
        cursor.execute("SELECT code, id FROM members_branch WHERE code = ANY (%s)", [new])
        ids.update((code.encode(), str(pk).encode()) for code, pk in cursor.fetchall())


def _lines(chunk: bytes) -> list[bytes]:
    # COPY reads \n alone as well as \r\n; a plain chunk has no other \r (roster_copy).
    return chunk.replace(b"\r\n", b"\n").rstrip(b"\n").split(b"\n")


def _fields(line: bytes, branch_at: int) -> list[bytes]:
    # A plain line has no quotes and no commas inside values: the branch is field `branch_at`.
    return line.split(b",", branch_at + 1)


def _with_branch_ids(chunk: bytes, branch_at: int, ids: dict[bytes, bytes]) -> bytes | None:
    """The chunk's lines with their branch codes turned into ids; None if a code is not in `ids`."""
    out = []
    for line in _lines(chunk):
        fields = _fields(line, branch_at)
        branch_id = ids.get(fields[branch_at])
        if branch_id is None:
            return None
        fields[branch_at] = branch_id
        out.append(b",".join(fields))
    out.append(b"")
    return b"\n".join(out)


def _stage_in_python(
    cursor, reader: RosterReader, hashing: _HashingStream, report: ImportReport, on_progress: ProgressCallback | None
) -> None:
    _create_staging(cursor)
    _stage_rows(cursor, _valid_rows(reader, report, on_progress))
    _find_repeated_member_numbers(cursor, report)
    # Drain whatever follows the last record (nothing, usually) so the hash covers the file.
    for _ in hashing:
        pass
    report.sha256 = hashing.digest.hexdigest()


# The member fields whose new values may enter the public log: they decide eligibility. Names and
# contact details are personal; the log only says that they changed.
_LOGGED_VALUES = ("branch", "joined_on", "status", "dues_paid_until")


@transaction.atomic
def save_member(*, member: Member, changed_fields: Sequence[str], actor: str) -> Member:
    """Save a member edited by an official (the admin), with its audit entry in the same transaction.

    `changed_fields` names the fields the official changed; an unchanged form writes nothing. The entry
    names the member by pseudonym, lists the changed fields, and gives new values only of the fields
    that decide eligibility. On PostgreSQL the row and its entry are one statement.
    """
    adding = member.pk is None
    if not adding and not changed_fields:
        return member
    values = {}
    for name in _LOGGED_VALUES:
        if adding or name in changed_fields:
            value = member.branch.code if name == "branch" else getattr(member, name)
            values[name] = value.isoformat() if hasattr(value, "isoformat") else value
    audit.save_with_entry(
        member,
        action=Action.MEMBER_ADDED if adding else Action.MEMBER_CHANGED,
        actor=actor,
        payload={"member": member_pseudonym(member.member_no), "fields": sorted(changed_fields), "values": values},
    )
    return member


def _valid_rows(
    reader: RosterReader, report: ImportReport, on_progress: ProgressCallback | None
) -> Iterable[RosterRow]:
    for row, errors in reader:
        report.rows += 1
        if errors:
            report.rejected += 1
            for error in errors:
                report.add_error(error)
        else:
            yield row
        if on_progress is not None and report.rows % PROGRESS_EVERY == 0:
            on_progress(reader.bytes_read, report.rows)
    if on_progress is not None:
        on_progress(reader.bytes_read, report.rows)


def _create_staging(cursor) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {_STAGING}")
    postgres = connection.vendor == "postgresql"
    # On PostgreSQL UNLOGGED, not TEMPORARY: parallel workers cannot read a session's temporary tables,
    # and the comparison with the roster (`_find_changes`) runs on every core. Created in the import's
    # transaction, it is gone with a rollback or a kill, and `import_roster` drops it before the commit;
    # other sessions never see it (two imports are serialised by their lock before this). Dates are
    # typed there, so that COPY refuses an impossible one; SQLite keeps them as ISO text.
    kind, date = ("UNLOGGED", "date") if postgres else ("TEMPORARY", "text")
    cursor.execute(
        f"""CREATE {kind} TABLE {_STAGING} (
            line integer NOT NULL DEFAULT 0, member_no text NOT NULL, first_name text NOT NULL,
            last_name text NOT NULL, branch text NOT NULL, joined_on {date} NOT NULL, status text NOT NULL,
            dues_paid_until {date}, email text NOT NULL DEFAULT '', phone text NOT NULL DEFAULT ''
        )"""
    )
    if postgres:
        # ANALYZE reads 300 rows per unit of the statistics target. The plans need the row count,
        # whether member numbers repeat and how often each branch comes: a 3,000-row sample gives them,
        # and the plans are those of the default 30,000 (60,000 and 1,000,000 rows against a
        # 1,000,000-member roster). 1,000,000 rows: 0.02 s against 0.12 s.
        cursor.execute(f"ALTER TABLE {_STAGING} ALTER member_no SET STATISTICS 10, ALTER branch SET STATISTICS 10")


def _drop_staging(cursor) -> None:
    cursor.execute(f"DROP TABLE IF EXISTS {_STAGING}")


def _stage_rows(cursor, rows: Iterable[RosterRow]) -> None:
    columns = ", ".join(_STAGING_COLUMNS)
    if connection.vendor == "postgresql":
        with cursor.copy(f"COPY {_STAGING} ({columns}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(
                    (r.line, r.member_no, r.first_name, r.last_name, r.branch, r.joined_on, r.status,
                     r.dues_paid_until, r.email, r.phone)
                )  # fmt: skip
        cursor.execute(_ANALYZE_STAGING)
        return

    sql = f"INSERT INTO {_STAGING} ({columns}) VALUES ({', '.join(['%s'] * len(_STAGING_COLUMNS))})"
    batch: list[tuple] = []
    for r in rows:
        dues = r.dues_paid_until.isoformat() if r.dues_paid_until else None
        batch.append(
            (r.line, r.member_no, r.first_name, r.last_name, r.branch, r.joined_on.isoformat(), r.status, dues,
             r.email, r.phone)
        )  # fmt: skip
        if len(batch) >= SQLITE_BATCH:
            cursor.executemany(sql, batch)
            batch.clear()
    if batch:
        cursor.executemany(sql, batch)
    cursor.execute(f"CREATE INDEX {_STAGING}_member_no ON {_STAGING} (member_no)")


def _find_repeated_member_numbers(cursor, report: ImportReport) -> None:
    cursor.execute(
        f"""SELECT s.line, s.member_no, d.first_line
            FROM {_STAGING} s
            JOIN (SELECT member_no, MIN(line) AS first_line FROM {_STAGING}
                  GROUP BY member_no HAVING COUNT(*) > 1) d ON d.member_no = s.member_no
            WHERE s.line > d.first_line
            ORDER BY s.line"""
    )
    for line, member_no, first_line in cursor.fetchall():
        report.rejected += 1
        report.add_error(RowError(line, "member_no", f"member number {member_no} is also on line {first_line}"))
    if report.error_count:
        report.errors.sort(key=lambda e: e.line)


def _changed_predicate(branch_id: str = "b.id") -> str:
    """Whether member `m` differs from file row `s`, whose branch's id is the expression `branch_id`."""
    parts = [f"m.{c} IS DISTINCT FROM s.{c}" for c in _COMPARED]
    parts.append(f"m.branch_id IS DISTINCT FROM {branch_id}")
    return " OR ".join(parts)


def _count_changes(cursor, report: ImportReport) -> None:
    """What a real import would do, by reading only: the dry run writes nothing at all."""
    cursor.execute(
        f"""SELECT
              (SELECT COUNT(*) FROM {_STAGING} s
               WHERE NOT EXISTS (SELECT 1 FROM members_member m WHERE m.member_no = s.member_no)),
              (SELECT COUNT(*) FROM {_STAGING} s
               JOIN members_member m ON m.member_no = s.member_no
               LEFT JOIN members_branch b ON b.code = s.branch
               WHERE {_changed_predicate()}),
              (SELECT COUNT(DISTINCT s.branch) FROM {_STAGING} s
               WHERE NOT EXISTS (SELECT 1 FROM members_branch b WHERE b.code = s.branch))"""
    )
    report.created, report.updated, report.branches_created = cursor.fetchone()
    report.unchanged = report.rows - report.created - report.updated


def _merge(cursor, report: ImportReport) -> None:
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    if connection.vendor == "postgresql" and _has_rows(cursor, Member._meta.db_table):
        _merge_changes(cursor, report, now)
    else:
        _insert_branches(cursor, f"SELECT DISTINCT branch AS code FROM {_STAGING}", report)
        _update_then_insert(cursor, report, now)
    report.unchanged = report.rows - report.created - report.updated


def _insert_branches(cursor, codes: str, report: ImportReport, params: Sequence = ()) -> None:
    """Create the branches among `codes` (a query of distinct `code`s, with `params`) that do not exist
    yet, and count them in the report.

    The file's few codes first, then the new ones among them: looking each of a million rows up in an
    empty branch table and then grouping them by code took 0.7 s on a first import; 0.2 s so.
    """
    cursor.execute(
        f"""INSERT INTO members_branch (code, name)
            SELECT d.code, d.code FROM ({codes}) AS d
            WHERE NOT EXISTS (SELECT 1 FROM members_branch b WHERE b.code = d.code)""",
        params,
    )
    report.branches_created += cursor.rowcount


def _update_then_insert(cursor, report: ImportReport, now) -> None:
    """SQLite's merge, and PostgreSQL's into an empty roster (whose keys are built after the INSERT)."""
    # Only rows whose data differ are written: a re-import of the same export touches nothing.
    cursor.execute(
        f"""UPDATE members_member AS m
            SET {_SET_COMPARED}, branch_id = b.id, updated_at = %s
            FROM {_STAGING} s JOIN members_branch b ON b.code = s.branch
            WHERE m.member_no = s.member_no AND ({_changed_predicate()})""",
        [now],
    )
    report.updated = cursor.rowcount
    with _keys_built_after_if_empty(cursor, Member._meta.db_table):
        cursor.execute(
            f"""INSERT INTO members_member ({_INSERTED_COLUMNS}, branch_id, updated_at)
                SELECT {_FILE_VALUES}, b.id, %s
                FROM {_STAGING} s JOIN members_branch b ON b.code = s.branch
                WHERE NOT EXISTS (SELECT 1 FROM members_member m WHERE m.member_no = s.member_no)""",
            [now],
        )
        report.created = cursor.rowcount


_CHANGES = "roster_changes"


def _merge_changes(cursor, report: ImportReport, now) -> None:
    """Into a roster that has members (PostgreSQL): find the file's new and changed members, then write
    only those, by primary key.

    The roster is locked against other writers (an official's edit waits; readers do not) from the
    comparison to the commit, so what was compared is what is written and the counts are exact.
    A 1,000,000-row re-import with 100,000 changed members: the comparison 0.7-0.85 s on two cores,
    the writes 0.45-0.6 s, where one MERGE of file and roster took 1.5-1.8 s on one core
    (docs/benchmarks.md).
    """
    table = Member._meta.db_table
    cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
    _find_changes(cursor)
    # A row whose branch is new is among the changes, without a branch id: the new branches are found
    # there, not by grouping the whole file (0.17 s of 1,000,000 rows).
    _insert_branches(cursor, f"SELECT DISTINCT branch AS code FROM {_CHANGES} WHERE branch_id IS NULL", report)
    if report.branches_created:
        cursor.execute(
            f"""UPDATE {_CHANGES} AS s SET branch_id = b.id FROM members_branch b
                WHERE s.branch_id IS NULL AND b.code = s.branch"""
        )
    # The ids as an array: the planner then reads the changed members through the primary key, where a
    # join with the changes would hash the whole roster (0.45-0.6 s against 0.65-0.75 s).
    cursor.execute(
        f"""UPDATE {table} AS m SET {_SET_COMPARED}, branch_id = s.branch_id, updated_at = %s
            FROM {_CHANGES} s
            WHERE m.id = s.member_id
              AND m.id = ANY (ARRAY(SELECT member_id FROM {_CHANGES} WHERE member_id IS NOT NULL))""",
        [now],
    )
    report.updated = cursor.rowcount
    cursor.execute(
        f"""INSERT INTO {table} ({_INSERTED_COLUMNS}, branch_id, updated_at)
            SELECT {_FILE_VALUES}, s.branch_id, %s FROM {_CHANGES} s WHERE s.member_id IS NULL""",
        [now],
    )
    report.created = cursor.rowcount
    cursor.execute(f"DROP TABLE {_CHANGES}")


def _find_changes(cursor) -> None:
    """The file's rows that are new to the roster or differ from it, with the member's id (NULL for a
    new member) and the branch's (NULL for a new branch), into a temporary table.

    One join of the whole file with the whole roster, as a parallel query: CREATE TABLE AS may run
    its SELECT on every core, where MERGE, UPDATE and INSERT run on one. The planner cannot estimate
    how many rows differ (an OR of IS DISTINCT FROM), assumes all of them, and then charges for
    handing each over from the workers; only the changed rows are handed over, so that charge is
    left out for this statement. Without parallel workers the plan is the same hash join, on one core.
    """
    cursor.execute("SET LOCAL parallel_tuple_cost = 0")
    cursor.execute(
        f"""CREATE TEMPORARY TABLE {_CHANGES} ON COMMIT DROP AS
            SELECT m.id AS member_id, b.id AS branch_id, s.branch,
                {", ".join(f"s.{c}" for c in ("member_no", *_COMPARED))}
            FROM {_STAGING} s LEFT JOIN members_branch b ON b.code = s.branch
            LEFT JOIN {Member._meta.db_table} m ON m.member_no = s.member_no
            WHERE m.id IS NULL OR ({_changed_predicate()})"""
    )
    cursor.execute("SET LOCAL parallel_tuple_cost TO DEFAULT")


@contextmanager
def _keys_built_after_if_empty(cursor, table: str) -> Iterator[bool]:
    """On PostgreSQL, fill an empty table without its secondary indexes and keys, then build them.

    What pg_restore does: building an index once over a million rows is several times faster than
    growing it row by row, and adding the foreign key checks all rows in one query where the deferred
    constraint would check each at commit (3.4 s of a 1,000,000-member first import). Only for an
    empty table, locked against everyone until the commit (nobody can be reading an empty roster),
    and in the import's transaction: a failure or a kill leaves the indexes and keys as they were.
    The primary key stays; the rest is rebuilt from the catalogue's own definitions, same names.
    Yields whether it set them aside: False for a table with rows, or not on PostgreSQL.
    """
    if connection.vendor != "postgresql" or _has_rows(cursor, table):
        yield False
        return
    cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    if _has_rows(cursor, table):  # someone added a member before the lock
        yield False
        return
    cursor.execute(
        """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = %s::regclass AND contype IN ('u', 'f') ORDER BY contype DESC, conname""",
        [table],
    )
    constraints = cursor.fetchall()  # unique ones first: a foreign key may need one
    cursor.execute(
        """SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i
           WHERE indrelid = %s::regclass AND NOT indisprimary
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid)
           ORDER BY 1""",
        [table],
    )
    indexes = cursor.fetchall()
    quote = connection.ops.quote_name
    for name, _ in reversed(constraints):
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
    for name, _ in indexes:
        cursor.execute(f"DROP INDEX {name}")
    yield True
    for _, definition in indexes:
        cursor.execute(definition)
    for name, definition in constraints:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
    cursor.execute(f"ANALYZE {table}")


def _has_rows(cursor, table: str) -> bool:
    cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
    return cursor.fetchone()[0]
