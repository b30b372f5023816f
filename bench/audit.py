"""Audit log benchmark: appending entries, integrating them, and verifying a 1,000,000-entry log.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/audit.py                                   # 100,000 entries, a 1,000,000-entry log
    .venv/bin/python bench/audit.py --entries 5000 --log-size 50000 --repeat 1 --no-profile   # a quick trial
    .venv/bin/python bench/audit.py --database-url postgres://user@host:5432/postgres

What it does, in one run, on PostgreSQL:

0. Starts a throwaway cluster (initdb --auth=trust, loopback, port 54332) unless --database-url or
   DATABASE_URL names a server; creates its own database (kalpi_audit_bench_<pid>), runs
   `manage.py migrate`, then `django.setup()` in this process for the service-level parts. The
   signing key is a fresh one (`audit.note.generate_key`), given as KALPI_SIGNING_KEY.
1. Append. A station check-in, one write per transaction, `--entries` times: the reference is an
   INSERT of one row into `bench_checkin` (a table the benchmark creates: bigserial key, unique
   (round, member), 4 columns) in its own `transaction.atomic()`; the audited write is the very same
   INSERT plus `audit.services.record(voter.checked_in, ...)` in the same transaction, the payload
   naming the member by `keys.member_pseudonym` (computed in the audited write only, as the log
   needs it and the check-in row does not). Same connection, same code path, blocks of
   `--block` transactions, reference and audited blocks interleaved (ABBA) so drift in the server
   (checkpoints, table growth) falls on both. Integration after commit is NOT run here:
   `audit.tasks.integrate_entries.delay` is patched to a no-op counter, so `record()` still registers
   its on-commit callback and the callback still runs, but integrates nothing (Celery is eager here,
   no broker; with a broker the callback publishes at most one delayed message per 0.5 s per
   process, which this does not measure). Every entry is thus left pending for step 2. (Not
   `services.integration_deferred()`, which would skip the on-commit registration, a part of the
   cost of every audited write.)
   A third case, interleaved with the two: the same INSERT and its entry written by one statement
   (`audit.services.entries_sql`), in its own `transaction.atomic()`, the form the station API's
   check-in and ballot take.
   Also a second, smaller pair (`--member-writes`): `members.services.save_member(...)`, the admin's
   audited edit (the member's UPDATE and its member.changed entry in one statement), against that
   UPDATE alone with the same values, prepared, in its transaction; then against `Member.save()`.
   First of all (`--station-writes` of each): the station API's own audited writes, a check-in and
   a ballot (`ballots.services.station.check_in_by_token`, `record_ballot_by_token`: one prepared
   statement each, in autocommit, the device found by its token in the statement), against the same
   statement text with its audit CTEs taken out, in an election of its own (roster import, one
   station, an open round, a token). The reference does all the vote does but write the entry.
   Then (`--action-writes` of most kinds): officials' actions, each through its service function
   (a token issued and revoked, the electorate changed both ways, a role given, a round moved, a
   station closed and sealed, a paper return's two entries, a draft election re-loaded), against the same function with the entry
   taken out of its statements (`bench_official_actions`). These two run first because setting up
   their elections integrates and signs what is pending.
2. Integrate: `audit.services.integrate_pending()` over everything step 1 left pending, timed (it
   signs one checkpoint at the end, as it does in production).
3. Verify: grows the log to `--log-size` entries (Entry and PendingEntry `bulk_create`, check-in
   payloads as in step 1, in chunks of `--checkpoint-every`; each chunk integrated with
   `integrate_pending()` and signed with `sign_checkpoint()`, so the log has one checkpoint per
   `--checkpoint-every` entries, about one a minute on a 1,000,000-entry election day), then
   VACUUM (ANALYZE) of the audit tables (what autovacuum has done on a real server; without it the
   first reader pays for setting hint bits) and a CHECKPOINT. Then, each `--repeat` times, median
   reported, each a child process timed by wall clock from start to exit (peak RSS from its rusage):
   - floor (psql): `\\copy (the verifier's own SELECT, audit.verification.leaves_sql()) TO '/dev/null'`: the server reading and
     sending the rows, nothing else;
   - floor (Python, COPY): `COPY (that SELECT) TO STDOUT` read through libpq in Python as the verifier
     reads it (`get_copy_data`), the rows not parsed;
   - floor (Python): the same SELECT through psycopg with a server-side cursor fetching 5,000 rows
     at a time, as Django's `.iterator(chunk_size=5000)` does (rows decoded, nothing computed);
   - `manage.py verify_audit`, which must print OK with every entry and checkpoint;
   - `manage.py export_audit DIR` and `python -m audit.verify DIR` on the same log.
4. Profile (unless --no-profile): cProfile of `--profile-writes` audited writes with every SQL
   statement timed; of `integrate_pending()` over `--profile-writes` pending entries; of
   `verify_database(workers=0)` (one process, so the profile sees every row) over the whole log, and
   its checkpoint half (`_checkpoints()`) alone.

The cluster is stopped and the temporary folder removed at the end, whatever happens (--keep keeps
the folder, with the server log). On a given server only the bench's own database is created and
dropped: the role needs CREATEDB, and superuser (or pg_checkpoint) for CHECKPOINT.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
# This file is bench/audit.py: keep its folder off the path, or `import audit` would import it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

GOAL_WRITE_RATIO = 1.2  # an audited write costs under 1.2x the same write without its entry
GOAL_INTEGRATION_RATE = 5000.0  # entries per second
GOAL_VERIFY_SECONDS = 10.0  # verify_audit of 1,000,000 entries
DEFAULT_PORT = 54332
CLUSTER_SETTINGS = {"shared_buffers": "256MB", "max_wal_size": "4GB"}
CLUSTER_LOGGING = {"log_autovacuum_min_duration": "0", "log_checkpoints": "on", "log_line_prefix": "'%m [%p] '"}
ORIGIN = "kalpi.localhost/audit"
STATIONS = 400


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# --- Child processes --------------------------------------------------------------------------------------


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    stdout: str
    stderr: str


def run_measured(argv: list[str], *, env: dict[str, str], workdir: Path) -> Run:
    """One child to its end: wall-clock seconds and its own peak RSS (ru_maxrss)."""
    out_path, err_path = workdir / "child.out", workdir / "child.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        child = subprocess.Popen(argv, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    if code != 0:
        raise BenchError(f"{' '.join(argv[:4])} … exited with {code}:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    return Run(seconds, usage.ru_maxrss * 1024 / 1e6, stdout, stderr)


def run_quiet(argv: list[str], **kwargs) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --- PostgreSQL -----------------------------------------------------------------------------------------------


def find_pg_bin() -> Path:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    if shutil.which("pg_config"):
        candidate = Path(run_quiet(["pg_config", "--bindir"]).strip())
        if (candidate / "pg_ctl").exists():
            return candidate
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    if debian:
        return debian[0]
    raise BenchError("PostgreSQL server binaries not found: set PG_BIN or give --database-url")


class ThrowawayCluster:
    """initdb + pg_ctl in a temporary folder, trust auth on loopback only; stop() whatever happens."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.pg_bin = find_pg_bin()
        self.started = False
        # PostgreSQL refuses to run as root: run its programs as the postgres user then.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @property
    def url(self) -> str:
        return f"postgres://bench@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                raise BenchError(f"port {self.port} is in use: pass --port")
        self.folder.mkdir()
        if self._as:
            shutil.chown(self.folder, "postgres", "postgres")
        initdb = [str(self.pg_bin / "initdb"), "-D", str(self.data), "--auth=trust", "-U", "bench"]
        run_quiet([*self._as, *initdb, "--encoding=UTF8", "--locale=C.UTF-8"])
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder}"
        options += "".join(f" -c {k}={v}" for k, v in {**CLUSTER_SETTINGS, **CLUSTER_LOGGING}.items())
        pg_ctl = [str(self.pg_bin / "pg_ctl"), "-D", str(self.data), "-o", options]
        self.started = True  # from here on, stop() must try
        run_quiet([*self._as, *pg_ctl, "-l", str(self.folder / "server.log"), "-w", "start"])

    def stop(self) -> None:
        if not self.started:
            return
        pg_ctl = [*self._as, str(self.pg_bin / "pg_ctl"), "-D", str(self.data)]
        result = subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True)
        if result.returncode != 0:
            subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)
        self.started = False


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


class Admin:
    """Autocommit connection to the server: creates and drops the bench's own database, CHECKPOINTs."""

    def __init__(self, server_url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(server_url, autocommit=True)
        self.created: list[str] = []
        self.can_checkpoint = True

    def scalar(self, sql: str):
        return self.conn.execute(sql).fetchone()[0]

    def create(self, name: str) -> None:
        self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)

    def checkpoint(self) -> None:
        if not self.can_checkpoint:
            return
        try:
            self.conn.execute("CHECKPOINT")
        except Exception as exc:  # not allowed: measure without it, and say so
            log(f"CHECKPOINT not allowed ({exc}); timings run without it")
            self.can_checkpoint = False

    def close(self) -> None:
        for name in self.created:
            with contextlib.suppress(Exception):
                self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.conn.close()


# --- Results -----------------------------------------------------------------------------------------------


@dataclass
class Row:
    what: str
    count: int | None  # entries (or writes)
    seconds: float | None
    rate: str = ""  # entries/s, or µs per write
    reference: str = ""  # ratio to the reference measured in the same run
    goal: str = ""


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profiles: list[tuple[str, str]] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(_row_line(row), flush=True)


def _row_line(row: Row) -> str:
    count = f"{row.count:,}" if row.count is not None else ""
    seconds = f"{row.seconds:.2f}" if row.seconds is not None else ""
    return f"| {row.what} | {count} | {seconds} | {row.rate} | {row.reference} | {row.goal} |"


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| case | entries / writes | seconds | rate | vs reference (same run) | goal |",
        "|---|--:|--:|--:|--:|---|",
    ]
    return lines + [_row_line(row) for row in rows]


# --- In-process Django ------------------------------------------------------------------------------------------


def django_setup(env: dict[str, str]) -> None:
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def checkin_payload(round_no: int, member_no: int, station: str) -> dict:
    from audit.keys import member_pseudonym

    return {"round": round_no, "station": station, "member": member_pseudonym(f"M{member_no:07d}")}


CHECKIN_TABLE = """
    CREATE TABLE bench_checkin (
        id bigserial PRIMARY KEY,
        round_id integer NOT NULL,
        member_no integer NOT NULL,
        station text NOT NULL,
        checked_in_at timestamptz NOT NULL,
        UNIQUE (round_id, member_no)
    )"""
CHECKIN_INSERT = "INSERT INTO bench_checkin (round_id, member_no, station, checked_in_at) VALUES (%s, %s, %s, %s)"
ONE_STATEMENT_CHECKIN = """
    WITH checkin AS (
        INSERT INTO bench_checkin (round_id, member_no, station, checked_in_at)
        VALUES (1, %(member)s, %(station)s, %(audit_at)s) RETURNING station
    ),
    {entries}
    SELECT 1"""


class NoBroker:
    """Stands in for `integrate_entries.delay`: counts the after-commit calls, sends nothing."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args, **kwargs) -> None:
        self.calls += 1


@contextlib.contextmanager
def no_integration_on_commit():
    from unittest import mock

    from audit import tasks

    stand_in = NoBroker()
    with mock.patch.object(tasks.integrate_entries, "delay", stand_in):
        yield stand_in


def _time_pair(reference, audited, blocks: int, block: int) -> tuple[list[float], list[float]]:
    """Seconds per block of `block` writes, of each, the two interleaved ABBA."""
    ref_times, aud_times = [], []
    for _, reference_first in _interleaved(blocks):
        if reference_first:
            ref_times.append(reference(block))
            aud_times.append(audited(block))
        else:
            aud_times.append(audited(block))
            ref_times.append(reference(block))
    return ref_times, aud_times


def _interleaved(blocks: int):
    """ABBA order: block k runs the reference first when k % 4 in (0, 3), so neither always goes first."""
    for k in range(blocks):
        yield k, k % 4 in (0, 3)


def bench_checkins(entries: int, block: int, results: Results, admin: Admin) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from audit import services
    from audit.canonical import canonical_bytes
    from audit.models import Action, Entry
    from config.db import prepared_cursor

    with connection.cursor() as cursor:
        cursor.execute(CHECKIN_TABLE)
    next_member = iter(range(1, 10**9))
    one_statement_sql = ONE_STATEMENT_CHECKIN.format(
        entries=services.entries_sql("checkin", actor="checkin.station", payload="%(payload)s::jsonb")
    )

    def reference(n: int, cursor=connection.cursor, atomic: bool = True) -> float:
        start = time.perf_counter()
        for _ in range(n):
            member = next(next_member)
            params = [1, member, f"S{member % STATIONS:03d}", timezone.now()]
            with transaction.atomic() if atomic else contextlib.nullcontext(), cursor() as c:
                c.execute(CHECKIN_INSERT, params)
        return time.perf_counter() - start

    def audited(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            member = next(next_member)
            station = f"S{member % STATIONS:03d}"
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(CHECKIN_INSERT, [1, member, station, timezone.now()])
                services.record(
                    action=Action.VOTER_CHECKED_IN, actor=station, payload=checkin_payload(1, member, station)
                )
        return time.perf_counter() - start

    def one_statement(n: int, atomic: bool = True) -> float:
        # The station API's form (ballots.services.station): the change and its entry in one prepared statement.
        start = time.perf_counter()
        for _ in range(n):
            member = next(next_member)
            station = f"S{member % STATIONS:03d}"
            payload = checkin_payload(1, member, station)
            canonical_bytes(payload)
            params = {**services.entry_params(Action.VOTER_CHECKED_IN), "member": member, "station": station}
            with transaction.atomic() if atomic else contextlib.nullcontext(), prepared_cursor() as cursor:
                cursor.execute(one_statement_sql, {**params, "payload": json.dumps(payload)})
            services.recorded()
        return time.perf_counter() - start

    # name: (function, the reference it is compared with, the goal applies, entries it writes). A bare
    # one-row INSERT is no write the product makes: these size the ways of sending an entry, and the
    # goal is judged on the product's own writes (bench_station_writes, bench_member_saves,
    # bench_official_actions).
    cases = {
        "check-in INSERT, one per transaction (reference)": (reference, None, False, 0),
        "same INSERT + `record()` in the transaction": (audited, "check-in INSERT, one per transaction (reference)",
                                                       False, 1),
        "reference, prepared (`config.db.prepared_cursor`)": (
            lambda n: reference(n, prepared_cursor), None, False, 0),
        "same INSERT and its entry in one prepared statement (`entries_sql`), in the transaction": (
            one_statement, "reference, prepared (`config.db.prepared_cursor`)", False, 1),
        "reference, prepared, autocommit (no transaction block)": (
            lambda n: reference(n, prepared_cursor, atomic=False), None, False, 0),
        "the one statement in autocommit (a bare INSERT and its entry)": (
            lambda n: one_statement(n, atomic=False), "reference, prepared, autocommit (no transaction block)",
            False, 1),
    }  # fmt: skip
    # Warm up every path (connection, statement caches, code) outside the timing.
    with no_integration_on_commit():
        for fn, *_ in cases.values():
            fn(200)
    warm_entries = Entry.objects.count()
    admin.checkpoint()
    blocks = max(1, entries // block)
    times: dict[str, list[float]] = {name: [] for name in cases}
    log(f"append: {blocks} x {block} writes of each of {len(cases)} kinds, interleaved (forward, then backward)")
    with no_integration_on_commit() as broker:
        for k in range(blocks):
            for name in list(cases) if k % 2 == 0 else reversed(list(cases)):
                times[name].append(cases[name][0](block))
            if (k + 1) % max(1, blocks // 10) == 0:
                log(f"  {k + 1}/{blocks} blocks: " + ", ".join(
                    f"{sum(t) / len(t) / block * 1e6:.0f}" for t in times.values()) + " µs per write")  # fmt: skip
    n = blocks * block
    audited_kinds = sum(entries_each for *_, entries_each in cases.values())
    if broker.calls != audited_kinds * n:
        raise BenchError(f"{broker.calls} after-commit integrations for {audited_kinds * n} audited writes")
    for name, (_, reference_name, goal, _) in cases.items():
        total = sum(times[name])
        us = total / n * 1e6
        if reference_name is None:
            results.add(Row(name, n, total, f"{us:.0f} µs/write"))
            continue
        ref_us = sum(times[reference_name]) / n * 1e6
        median = statistics.median(a / r for a, r in zip(times[name], times[reference_name], strict=True))
        results.add(
            Row(
                name,
                n,
                total,
                f"{us:.0f} µs/write; {n / total:,.0f} entries/s",
                f"{us / ref_us:.2f}x (median of {blocks} block pairs {median:.2f}x)",
                _goal(us / ref_us < GOAL_WRITE_RATIO, f"< {GOAL_WRITE_RATIO}x") if goal else "for comparison",
            )
        )
    ref_name, aud_name = "check-in INSERT, one per transaction (reference)", "same INSERT + `record()` in the transaction"
    ref_us, aud_us = sum(times[ref_name]) / n * 1e6, sum(times[aud_name]) / n * 1e6
    results.notes.append(
        f"Append: {n:,} audited check-ins through `record()` at {n / sum(times[aud_name]):,.0f} entries/s (one "
        f"entry per transaction, one connection); the entry costs {aud_us - ref_us:.0f} µs on top of a "
        f"{ref_us:.0f} µs write. Per block of {block}: reference {_spread(times[ref_name], block)}, audited "
        f"{_spread(times[aud_name], block)} µs/write (min/median/max)."
    )
    if Entry.objects.count() - warm_entries != audited_kinds * n:
        raise BenchError("the audited writes did not leave one entry each")


def _spread(times: list[float], block: int) -> str:
    us = sorted(t / block * 1e6 for t in times)
    return f"{us[0]:.0f}/{statistics.median(us):.0f}/{us[-1]:.0f}"


def _goal(met: bool, goal: str) -> str:
    return f"{goal}: {'met' if met else '**MISSED**'}"


def _verify_goal(seconds: float, size: int) -> str:
    """The goal is for 10⁶ entries: a smaller log is scaled up linearly (the work is per entry), and
    says so, since a fixed cost (start-up, checkpoints) makes the scaled figure a little pessimistic."""
    per_million = seconds * 1e6 / size if size else float("inf")
    goal = f"< {GOAL_VERIFY_SECONDS:.0f} s per 10⁶"
    if size != 1_000_000:
        goal += f" ({per_million:.1f} s per 10⁶, scaled from {size:,})"
    return _goal(per_million < GOAL_VERIFY_SECONDS, goal)


def bench_member_saves(writes: int, block: int, results: Results) -> None:
    """The admin's audited edit of a member against the same write without its entry.

    `save_member()` writes the member's row and its entry in one prepared statement (PostgreSQL,
    `audit.services.save_with_entry`). The reference is that statement's UPDATE alone, with the same
    values (`audit.services.bare_instance_write`), prepared, each in its own transaction. `Member.save()` in its
    transaction, the ORM's way to write the same row, is timed against it too, for information.
    """
    from datetime import date

    from django.db import transaction

    from audit.services import bare_instance_write
    from config.db import prepared_cursor
    from members.models import Branch, Member
    from members.services import save_member

    branch = Branch.objects.create(code="bench", name="Bench")
    count = 4 * writes + 800  # each save takes the next member: 2 audited, 2 references
    Member.objects.bulk_create(
        [
            Member(
                member_no=f"B{i:07d}",
                first_name="First",
                last_name=f"Last{i}",
                branch=branch,
                joined_on=date(2020, 1, 1),
                status=Member.Status.ACTIVE,
                dues_paid_until=date(2026, 12, 31),
                email=f"m{i}@example.org",
                phone="050-0000000",
            )
            for i in range(count)
        ],
        batch_size=2000,
    )
    members = list(Member.objects.filter(branch=branch).order_by("id"))
    pool = iter(members)
    statuses = [Member.Status.SUSPENDED, Member.Status.ACTIVE]

    def next_member() -> Member:
        member = next(pool)
        member.status = statuses[member.pk % 2]
        return member

    def reference(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            member = next_member()
            with transaction.atomic(), prepared_cursor() as cursor:
                cursor.execute(*bare_instance_write(member))
                if cursor.fetchone() is None:
                    raise BenchError("a reference save wrote nothing")
        return time.perf_counter() - start

    def model_save(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            member = next_member()
            with transaction.atomic():
                member.save()
        return time.perf_counter() - start

    def audited(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            save_member(member=next_member(), changed_fields=["status"], actor="clerk")
        return time.perf_counter() - start

    with no_integration_on_commit():
        reference(100)
        model_save(100)
        audited(200)
    blocks = max(1, writes // block)
    n = blocks * block
    log(f"append: {blocks} x {block} member saves, with and without save_member's entry; then Member.save()")
    with no_integration_on_commit():
        ref_times, aud_times = _time_pair(reference, audited, blocks, block)
        orm_times, orm_aud_times = _time_pair(model_save, audited, blocks, block)
    ref_s, aud_s, orm_s, orm_aud_s = sum(ref_times), sum(aud_times), sum(orm_times), sum(orm_aud_times)
    ratio = aud_s / ref_s
    med_ratio = statistics.median(a / r for a, r in zip(aud_times, ref_times, strict=True))
    results.add(
        Row("the member's UPDATE alone, prepared, in its transaction (reference)", n, ref_s,
            f"{ref_s / n * 1e6:.0f} µs/write")
    )  # fmt: skip
    results.add(
        Row(
            "`save_member()`: the same UPDATE and its entry in one statement",
            n,
            aud_s,
            f"{aud_s / n * 1e6:.0f} µs/write",
            f"{ratio:.2f}x (median of {blocks} block pairs {med_ratio:.2f}x)",
            _goal(ratio < GOAL_WRITE_RATIO, f"< {GOAL_WRITE_RATIO}x"),
        )
    )
    results.add(
        Row(
            "`Member.save()` in its transaction (the ORM's write of the same row)",
            n,
            orm_s,
            f"{orm_s / n * 1e6:.0f} µs/write",
            f"`save_member()` in the same blocks: {orm_aud_s / n * 1e6:.0f} µs/write, {orm_aud_s / orm_s:.2f}x",
        )
    )


def bench_official_actions(writes: int, block: int, results: Results) -> None:
    """Officials' audited actions, each as its service makes it, against the same action without its entry.

    Each action writes its change and its entry in one statement (`audit.services.save_with_entry`,
    or a statement of `with_entry_sql`). The reference runs the very same service function with
    those statements stripped of the entry: `save_with_entry` replaced by a stand-in that checks the
    entry and encodes its payload as `save_with_entry` does, then runs the same INSERT or UPDATE
    alone (`bare_instance_write`, prepared; a seal's link to its entry left empty), and the token's
    revocation and the official's role run as their bare statements (`setup.REVOKE_TOKEN`,
    `setup.GIVE_ROLE`). So each pair differs by exactly the entry's rows in the statement. What runs after commit is left out of both: integration (as everywhere in
    this benchmark), the checkpoint a seal asks for and the provisional results it starts.
    """
    from unittest import mock

    from django.contrib.auth.models import User
    from django.db import connection

    from audit import services as audit_services
    from audit.models import Entry
    from ballots.models import Elector
    from ballots.services import count as counting
    from ballots.services import publish, setup, station
    from config.db import prepared_cursor
    from members.fake_roster import roster_csv_bytes
    from members.services import import_roster

    def save_without_entry(instance, *, action, actor, payload, update_fields=None, entry_field=None):
        if not connection.in_atomic_block:
            raise audit_services.NotInTransaction("as save_with_entry refuses it")
        audit_services.with_entry_params(action=action, actor=actor, payload=payload)
        adding = instance._state.adding
        with prepared_cursor() as cursor:
            cursor.execute(*audit_services.bare_instance_write(instance, update_fields=update_fields))
            row = cursor.fetchone()
        if row is None:
            raise BenchError("a reference save wrote nothing")
        if adding:
            instance.pk = row[0]
        instance._state.adding, instance._state.db = False, connection.alias
        audit_services.recorded()

    blocks = max(1, writes // block)
    n = blocks * block
    warm = 20
    per_side = n + warm
    report = import_roster(stream=io.BytesIO(roster_csv_bytes(int(3 * per_side / 0.8) + 500)), actor="bench")
    if not report.ok:
        raise BenchError(report.summary())
    stations = [
        {"code": f"{prefix}-{i:05d}", "name": f"Station {prefix}{i}", "mode": mode, "branches": []}
        for prefix, mode in (("a", "electronic"), ("p", "paper"))
        for i in range(2 * (per_side // 10 + warm))
    ]

    def definition(slug: str, name: str, stations: list) -> dict:
        return {
            "slug": slug, "name": name, "roster_cutoff": "2011-06-30", "require_dues": False,
            "candidates": [{"code": c, "name": c.title()} for c in ("yachimovich", "peretz", "herzog")],
            "stations": stations,
            "rule": {"method": "two_round", "threshold_percent": "40", "threshold_base": "valid",
                     "quorum_percent": None, "advance": 2, "tie_break": "lot"},
            "rounds": [{"number": 1, "opens_at": "2011-09-12T07:00:00+03:00",
                        "closes_at": "2011-09-12T22:00:00+03:00"},
                       {"number": 2, "opens_at": "2011-09-19T07:00:00+03:00",
                        "closes_at": "2011-09-19T22:00:00+03:00"}],
            "runoff_after_days": 7, "certifications_required": 2,
        }  # fmt: skip

    election, _ = setup.load_election(data=definition("audit-actions", "Actions", stations), actor="bench")
    setup.freeze_electorate(election=election, actor="bench")
    setup.open_round(election=election, number=1, actor="bench")
    round_ = election.rounds.get(number=1)
    first_station = election.stations.order_by("position").first()
    electors = list(
        Elector.objects.filter(election=election).order_by("id").values_list("member__member_no", flat=True)
    )
    if len(electors) < 2 * per_side:
        raise BenchError(f"{len(electors)} electors for {2 * per_side} changes")
    User.objects.bulk_create([User(username=f"bench-official-{i}", is_staff=True) for i in range(2 * per_side + 4)])
    draft_stations = stations[:4]
    drafts = [definition("audit-draft", name, draft_stations) for name in ("Draft A", "Draft B")]

    def series(action):
        """action(i) runs the i-th action of one side; each side gets its own i's."""

        def side(offset: int):
            counter = iter(range(offset, 10**9, 2))

            def run(k: int) -> float:
                start = time.perf_counter()
                for _ in range(k):
                    action(next(counter))
                return time.perf_counter() - start

            return run

        return side(0), side(1)

    tokens = {}

    def issue(i: int) -> None:
        tokens[i], _ = setup.issue_station_token(station=first_station, actor="bench")

    def revoke(i: int) -> None:
        if not setup.revoke_station_token(token=tokens.pop(i), actor="bench"):
            raise BenchError("a token was not revoked")

    def remove(i: int) -> None:
        setup.change_electorate(election=election, member_no=electors[i], add=False, reason="bench", actor="bench")

    def add_back(i: int) -> None:
        setup.change_electorate(election=election, member_no=electors[i], add=True, reason="bench", actor="bench")

    def give_role(i: int) -> None:
        setup.add_official(username=f"bench-official-{i}", role="clerk", password="", actor="bench")

    station_list = list(election.stations.filter(mode="electronic").order_by("position"))

    def close(i: int) -> None:
        station.close_station(station=station_list[i], actor="bench", round_=round_)

    # Paper stations with no check-ins, closed: a return of zeros is what they may report.
    paper = list(election.stations.filter(mode="paper").order_by("position"))
    for paper_station in paper:
        station.close_station(station=paper_station, actor="bench", round_=round_)
    zeros = {"counts": {"yachimovich": 0, "peretz": 0, "herzog": 0}, "blank": 0, "invalid": 0, "total": 0}

    def first_entry(i: int) -> None:
        if station.enter_return(station=paper[i], entry=1, actor="bench", **zeros)[0] != "awaiting_second_entry":
            raise BenchError("a first entry was not left awaiting the second")

    def second_entry(i: int) -> None:
        if station.enter_return(station=paper[i], entry=2, actor="bench", **zeros)[0] != "accepted":
            raise BenchError("a second, equal entry was not accepted")

    second_round = election.rounds.get(number=2)
    hours = [0]

    def reschedule(i: int) -> None:
        hours[0] = 1 - hours[0]  # an hour later, then back, whichever side ran last
        opens_at = second_round.opens_at.replace(hour=4 + hours[0])
        counting.reschedule_round(round_=second_round, opens_at=opens_at, closes_at=second_round.closes_at, actor="bench")

    draft = [1]

    def reload_draft(i: int) -> None:
        draft[0] = 1 - draft[0]  # the other definition each time, whichever side ran last
        setup.load_election(data=drafts[draft[0]], actor="bench")

    setup.load_election(data=drafts[1], actor="bench")
    actions = [
        ("a station's device token issued (`issue_station_token`)", issue, block),
        ("that token revoked (`revoke_station_token`)", revoke, block),
        ("a member removed from the frozen electorate (`change_electorate`)", remove, block),
        ("the member added back (`change_electorate`)", add_back, block),
        ("a role given to an official (`add_official`, the user exists)", give_role, block),
        ("a scheduled round moved (`reschedule_round`)", reschedule, block),
        ("a station closed and sealed, two entries (`close_station`)", close, max(1, block // 10)),
        ("a paper station's return, first entry (`enter_return`)", first_entry, max(1, block // 10)),
        ("the second entry, equal: accepted and sealed, two entries (`enter_return`)", second_entry,
         max(1, block // 10)),
        ("a draft election re-loaded, 4 stations (`load_election`)", reload_draft, max(1, block // 10)),
    ]
    log(f"append: officials' actions, {n:,} of most, with and without their entries, interleaved")
    entries_before = Entry.objects.count()
    expected = 0
    with (
        no_integration_on_commit(),
        mock.patch.object(audit_services, "request_checkpoint", lambda: None),
        mock.patch.object(publish, "provisional_after_commit", lambda round_id: None),
    ):
        for name, action, size in actions:
            count = n if size == block else max(1, n // 10)
            a_side, b_side = series(action)
            action_blocks = max(1, count // size)

            def reference(k: int, side=a_side) -> float:
                with (
                    mock.patch.object(audit_services, "save_with_entry", save_without_entry),
                    mock.patch.object(setup, "_REVOKE", setup.REVOKE_TOKEN),
                    mock.patch.object(setup, "_GIVE_ROLE", setup.GIVE_ROLE),
                ):
                    return side(k)

            audited = b_side
            # The warm-up takes the first i's of each side; the blocks follow with the next ones.
            reference(2)
            audited(2)
            ref_times, aud_times = _time_pair(reference, audited, action_blocks, size)
            done = action_blocks * size
            expected += (done + 2) * (2 if action in (close, second_entry) else 1)
            ref_s, aud_s = sum(ref_times), sum(aud_times)
            median = statistics.median(a / r for a, r in zip(aud_times, ref_times, strict=True))
            results.add(
                Row(
                    name,
                    done,
                    aud_s,
                    f"{aud_s / done * 1e6:,.0f} µs with its entry, {ref_s / done * 1e6:,.0f} µs without",
                    f"{aud_s / ref_s:.2f}x (median of {action_blocks} block pairs {median:.2f}x)",
                    _goal(aud_s / ref_s < GOAL_WRITE_RATIO, f"< {GOAL_WRITE_RATIO}x"),
                )
            )
    if Entry.objects.count() - entries_before != expected:
        raise BenchError(f"the audited actions left {Entry.objects.count() - entries_before} entries, not {expected}")


def bench_station_writes(writes: int, block: int, results: Results) -> None:
    """The station API's own audited writes against the same writes without their entries.

    A check-in and a ballot as the API makes them (`check_in_by_token`, `record_ballot_by_token`: one
    prepared statement each, in autocommit, the device found by its token's hash in the statement),
    against the very same statement text with its audit CTEs taken out, run through the same kind of
    cursor. The reference therefore does everything the vote does (the device, the open round, the
    elector or the choice, the station's counter, the row) but write its entry.
    """
    import uuid

    from django.db import connection
    from django.utils import timezone

    from audit.models import Entry
    from ballots.models import SPECIAL_CHOICES, Elector
    from ballots.services import setup, station
    from config.db import prepared_cursor
    from members.fake_roster import roster_csv_bytes
    from members.services import import_roster

    blocks = max(1, writes // block)
    n = blocks * block
    warm = 200
    # About 85% of the fake roster is eligible at the cutoff; every check-in needs its own elector.
    report = import_roster(stream=io.BytesIO(roster_csv_bytes(int((2 * (n + warm)) / 0.8) + 1000)), actor="bench")
    if not report.ok:
        raise BenchError(report.summary())
    candidates = ["yachimovich", "peretz", "herzog", "braverman"]
    election, _ = setup.load_election(
        data={
            "slug": "audit-bench", "name": "Audit benchmark", "roster_cutoff": "2011-06-30",
            "require_dues": False, "candidates": [{"code": c, "name": c.title()} for c in candidates],
            "stations": [{"code": "st-001", "name": "Station 1", "mode": "electronic", "branches": []}],
            "rule": {"method": "two_round", "threshold_percent": "40", "threshold_base": "valid",
                     "quorum_percent": None, "advance": 2, "tie_break": "lot"},
            "rounds": [{"number": 1, "opens_at": "2011-09-12T07:00:00+03:00",
                        "closes_at": "2011-09-12T22:00:00+03:00"}],
            "runoff_after_days": 7, "certifications_required": 2,
        },
        actor="bench",
    )  # fmt: skip
    setup.freeze_electorate(election=election, actor="bench")
    setup.open_round(election=election, number=1, actor="bench")
    _, token = setup.issue_station_token(station=election.stations.get(), actor="bench")
    key_hash = setup.hash_key(token)
    members = list(Elector.objects.filter(election=election).values_list("member__member_no", flat=True))
    if len(members) < 2 * (n + warm):
        raise BenchError(f"{len(members)} electors for {2 * (n + warm)} check-ins")
    random.Random(7).shuffle(members)
    pool = iter(members)
    special = list(SPECIAL_CHOICES)

    def without_entry(sql: str, entry: str) -> str:
        bare = sql.replace("," + entry, "", 1)
        if bare == sql:
            raise BenchError("the statement's audit CTEs were not found in it")
        return bare

    checkin_sql = without_entry(station._CHECK_IN_BY_TOKEN, station._CHECK_IN_ENTRY)
    ballot_sql = without_entry(station._BALLOT_BY_TOKEN, station._BALLOT_ENTRY)

    def reference(sql: str, params, what: str):
        def run(k: int) -> float:
            start = time.perf_counter()
            for i in range(k):
                with prepared_cursor() as cursor:
                    cursor.execute(sql, params(i))
                    if cursor.fetchone() is None:
                        raise BenchError(f"a reference {what} wrote nothing")
            return time.perf_counter() - start

        return run

    checkin_reference = reference(
        checkin_sql, lambda i: {"key_hash": key_hash, "member_no": next(pool), "audit_at": timezone.now()}, "check-in"
    )
    ballot_reference = reference(
        ballot_sql,
        lambda i: {"key_hash": key_hash, "id": uuid.uuid4(), "choice": candidates[i % 4], "special": special},
        "ballot",
    )

    def checkin_audited(k: int) -> float:
        start = time.perf_counter()
        for _ in range(k):
            if station.check_in_by_token(key_hash=key_hash, member_no=next(pool)) is None:
                raise BenchError("an audited check-in wrote nothing")
        return time.perf_counter() - start

    def ballot_audited(k: int) -> float:
        start = time.perf_counter()
        for i in range(k):
            if not station.record_ballot_by_token(key_hash=key_hash, ballot_id=uuid.uuid4(), choice=candidates[i % 4]):
                raise BenchError("an audited ballot wrote nothing")
        return time.perf_counter() - start

    if connection.in_atomic_block:
        raise BenchError("the station's writes run in autocommit")
    entries_before = Entry.objects.count()
    pairs = [
        ("station check-in, the API's statement without its audit CTEs (reference)", checkin_reference,
         "the same check-in with its entry (`check_in_by_token`), autocommit", checkin_audited),
        ("station ballot, the API's statement without its audit CTEs (reference)", ballot_reference,
         "the same ballot with its entry (`record_ballot_by_token`), autocommit", ballot_audited),
    ]  # fmt: skip
    log(f"append: {blocks} x {block} of each station write, with and without its entry, interleaved")
    with no_integration_on_commit():
        for ref_name, reference, aud_name, audited in pairs:
            reference(warm)
            audited(warm)
            ref_times, aud_times = _time_pair(reference, audited, blocks, block)
            ref_s, aud_s = sum(ref_times), sum(aud_times)
            median = statistics.median(a / r for a, r in zip(aud_times, ref_times, strict=True))
            results.add(Row(ref_name, n, ref_s, f"{ref_s / n * 1e6:.0f} µs/write"))
            results.add(
                Row(
                    aud_name,
                    n,
                    aud_s,
                    f"{aud_s / n * 1e6:.0f} µs/write; {n / aud_s:,.0f} entries/s",
                    f"{aud_s / ref_s:.2f}x (median of {blocks} block pairs {median:.2f}x)",
                    _goal(aud_s / ref_s < GOAL_WRITE_RATIO, f"< {GOAL_WRITE_RATIO}x"),
                )
            )
    if Entry.objects.count() - entries_before != 2 * (n + warm):
        raise BenchError("the audited station writes did not leave one entry each")


def bench_integration(results: Results) -> int:
    from audit import services
    from audit.models import PendingEntry

    pending = PendingEntry.objects.count()
    log(f"integrate: {pending:,} pending entries")
    start = time.perf_counter()
    done = services.integrate_pending()
    seconds = time.perf_counter() - start
    if done != pending or PendingEntry.objects.exists():
        raise BenchError(f"integrate_pending() integrated {done} of {pending}")
    rate = done / seconds
    results.add(
        Row(
            "`integrate_pending()` of everything appended above",
            done,
            seconds,
            f"{rate:,.0f} entries/s",
            "",
            _goal(rate >= GOAL_INTEGRATION_RATE, f"≥ {GOAL_INTEGRATION_RATE:,.0f}/s"),
        )
    )
    return done


def grow_log(log_size: int, chunk: int, results: Results) -> tuple[int, int]:
    """Bulk-append entries until the log holds log_size, integrating and signing every `chunk`."""
    from django.db import transaction
    from django.utils import timezone

    from audit import services
    from audit.models import Action, Checkpoint, Entry, PendingEntry
    from audit.selectors import tree_size

    size = first = tree_size()
    member = 10**7  # apart from the check-ins of step 1
    log(f"grow: {size:,} → {log_size:,} entries, a checkpoint every {chunk:,}")
    start = time.perf_counter()
    integrate_seconds = 0.0
    last_note = start
    while size < log_size:
        n = min(chunk, log_size - size)
        with transaction.atomic():
            now = timezone.now()
            objs = []
            for _ in range(n):
                member += 1
                station = f"S{member % STATIONS:03d}"
                objs.append(
                    Entry(
                        action=Action.VOTER_CHECKED_IN,
                        actor=station,
                        payload=checkin_payload(1, member, station),
                        created_at=now,
                    )
                )
            created = Entry.objects.bulk_create(objs)
            PendingEntry.objects.bulk_create([PendingEntry(entry_id=e.id) for e in created])
        t = time.perf_counter()
        done = services.integrate_pending()
        integrate_seconds += time.perf_counter() - t
        services.sign_checkpoint()
        if done != n:
            raise BenchError(f"integrated {done} of {n}")
        size += n
        if time.perf_counter() - last_note > 30:
            last_note = time.perf_counter()
            log(f"  {size:,} entries ({size / (last_note - start):,.0f}/s overall)")
    seconds = time.perf_counter() - start
    latest = Checkpoint.objects.order_by("-tree_size").first()
    if latest is None or latest.tree_size < size:
        services.sign_checkpoint()  # the verifier's expected line names every entry as covered
    checkpoints = Checkpoint.objects.count()
    results.notes.append(
        f"Building the log: {log_size:,} entries in {seconds:.0f} s, {checkpoints:,} checkpoints; "
        f"`integrate_pending()` on chunks of {chunk:,} as the log grew took {integrate_seconds:.1f} s in all "
        f"({(size - first) / integrate_seconds:,.0f} entries/s)."
        if integrate_seconds
        else f"Building the log: nothing to add ({size:,} entries already)."
    )
    return size, checkpoints


def verifier_sql() -> str:
    """The SELECT `verify_database()` streams with COPY on PostgreSQL (all the leaves, one process)."""
    from audit.verification import leaves_sql

    return leaves_sql()


def floor_child(url: str, sql: str, mode: str) -> None:
    """The Python floors: the verifier's rows through psycopg, 5,000 at a time from a server-side
    cursor (`cursor`), or its COPY read through libpq as the verifier reads it, rows not parsed (`copy`)."""
    import psycopg

    count = 0
    with psycopg.connect(url) as conn:
        if mode == "copy":
            pgconn = conn.pgconn
            pgconn.send_query(f"COPY ({sql}) TO STDOUT".encode())
            pgconn.get_result()
            while pgconn.get_copy_data(0)[0] >= 0:
                count += 1
            while pgconn.get_result() is not None:
                pass
        else:
            with conn.cursor(name="floor") as cursor:
                cursor.itersize = 5000
                cursor.execute(sql)
                while rows := cursor.fetchmany(5000):
                    count += len(rows)
    print(count)


def vacuum(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        for table in ("audit_entry", "audit_leaf", "audit_node", "audit_checkpoint", "audit_pendingentry"):
            conn.execute(f"VACUUM (ANALYZE) {table}")


def bench_verify(
    *, db_url: str, env: dict, work: Path, admin: Admin, size: int, checkpoints: int, repeat: int, results: Results
) -> None:
    python = sys.executable
    sql = verifier_sql()
    pg_bin_psql = shutil.which("psql") or "psql"
    log("verify: VACUUM (ANALYZE) of the audit tables, CHECKPOINT")
    vacuum(db_url)

    def measured(argv: list[str], check) -> list[Run]:
        runs = []
        for _ in range(repeat):
            admin.checkpoint()
            run = run_measured(argv, env=env, workdir=work)
            check(run)
            runs.append(run)
        return runs

    def expect_rows(run: Run) -> None:
        if run.stdout.split() != [str(size)] and f"COPY {size}" not in run.stdout:
            raise BenchError(f"floor read {run.stdout.strip()!r}, expected {size} rows")

    expected_ok = f"OK: {size} entries, {checkpoints} checkpoints, latest size {size}"

    def expect_ok(run: Run) -> None:
        if not run.stdout.startswith(expected_ok):
            raise BenchError(f"expected {expected_ok!r}, got {run.stdout.strip()!r} {run.stderr[-500:]!r}")

    log("verify: floor (psql \\copy)")
    psql = measured([pg_bin_psql, db_url, "-X", "-q", "-c", f"\\copy ({sql}) TO '/dev/null'"], lambda run: None)
    log("verify: floor (Python, COPY through libpq)")
    copy_floor = measured([python, __file__, "--floor-child", db_url, sql, "copy"], expect_rows)
    log("verify: floor (Python, psycopg)")
    py_floor = measured([python, __file__, "--floor-child", db_url, sql, "cursor"], expect_rows)
    log("verify: manage.py verify_audit")
    verify = measured([python, "manage.py", "verify_audit"], expect_ok)
    bundles = []
    exports = []
    for attempt in range(repeat):
        target = work / f"bundle{attempt}"
        admin.checkpoint()
        log(f"verify: manage.py export_audit ({attempt + 1}/{repeat})")
        exports.append(run_measured([python, "manage.py", "export_audit", str(target)], env=env, workdir=work))
        bundles.append(target)
    bundle_runs = []
    for target in bundles:
        log("verify: python -m audit.verify DIR")
        run = run_measured([python, "-m", "audit.verify", str(target)], env=env, workdir=work)
        expect_ok(run)
        bundle_runs.append(run)
    bundle_mb = sum(f.stat().st_size for f in bundles[0].iterdir()) / 1e6
    for target in bundles:
        shutil.rmtree(target)

    def med(runs: list[Run]) -> float:
        return statistics.median(r.seconds for r in runs)

    def rss(runs: list[Run]) -> str:
        return f"peak RSS {max(r.peak_rss_mb for r in runs):.0f} MB"

    floor_s, copy_floor_s, py_floor_s, verify_s = med(psql), med(copy_floor), med(py_floor), med(verify)
    results.add(Row("floor: `psql \\copy (verifier's SELECT) TO /dev/null`", size, floor_s, f"{size / floor_s:,.0f}/s"))
    results.add(
        Row(
            "floor: `COPY (same SELECT) TO STDOUT` read in Python via libpq, rows not parsed",
            size,
            copy_floor_s,
            f"{size / copy_floor_s:,.0f}/s; {rss(copy_floor)}",
            f"{copy_floor_s / floor_s:.1f}x psql",
        )
    )
    results.add(
        Row(
            "floor: same SELECT via psycopg, server-side cursor, 5,000/fetch",
            size,
            py_floor_s,
            f"{size / py_floor_s:,.0f}/s; {rss(py_floor)}",
            f"{py_floor_s / floor_s:.1f}x psql",
        )
    )
    results.add(
        Row(
            "`manage.py verify_audit`",
            size,
            verify_s,
            f"{size / verify_s:,.0f}/s; {rss(verify)}",
            f"{verify_s / floor_s:.1f}x psql, {verify_s / copy_floor_s:.1f}x COPY floor",
            _verify_goal(verify_s, size),
        )
    )
    export_s, bundle_s = med(exports), med(bundle_runs)
    results.add(
        Row(
            f"`manage.py export_audit DIR` ({bundle_mb:,.0f} MB)",
            size,
            export_s,
            f"{size / export_s:,.0f}/s; {rss(exports)}",
            f"{export_s / floor_s:.1f}x psql",
        )
    )
    results.add(
        Row(
            "`python -m audit.verify DIR`",
            size,
            bundle_s,
            f"{size / bundle_s:,.0f}/s; {rss(bundle_runs)}",
            f"{bundle_s / verify_s:.2f}x verify_audit",
        )
    )
    for name, runs in (
        ("psql floor", psql),
        ("COPY floor", copy_floor),
        ("psycopg floor", py_floor),
        ("verify_audit", verify),
        ("export_audit", exports),
        ("audit.verify", bundle_runs),
    ):
        results.notes.append(f"Single runs, {name}: " + ", ".join(f"{r.seconds:.2f} s" for r in runs))


# --- Profiles -------------------------------------------------------------------------------------------------


def _pstats(profile: cProfile.Profile, sort: str, limit: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    text = out.getvalue()
    # Keep the table, drop the preamble (it names this machine's paths).
    start = text.find("   ncalls")
    head = next((line.strip() for line in text.splitlines() if "function calls" in line), "")
    return head + "\n" + text[start:].rstrip()


class SqlTimer:
    """connection.execute_wrapper: time per SQL statement shape (first words)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = _sql_key(sql)
            self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - start
            self.calls[key] = self.calls.get(key, 0) + 1

    def report(self, per: int) -> str:
        lines = [f"{'statement':<60} {'calls':>7} {'µs each':>8} {'µs per write':>12}"]
        for key, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            calls = self.calls[key]
            lines.append(f"{key:<60} {calls:>7} {seconds / calls * 1e6:>8.0f} {seconds / per * 1e6:>12.0f}")
        return "\n".join(lines)


def _sql_key(sql: str) -> str:
    words = sql.split()
    if words[:2] == ["INSERT", "INTO"]:
        return " ".join(words[:3])
    if words and words[0] == "UPDATE":
        return " ".join(words[:2])
    if words and words[0] == "SELECT" and "FROM" in words:
        return "SELECT … FROM " + words[words.index("FROM") + 1]
    return " ".join(words[:3])[:60]


WHAT_IF_ENTRY = (
    "INSERT INTO audit_entry (action, actor, payload, created_at) VALUES (%s, %s, %s::jsonb, %s) RETURNING id"
)
WHAT_IF_PENDING = "INSERT INTO audit_pendingentry (entry_id) VALUES (%s)"
WHAT_IF_ONE_STATEMENT = (
    "WITH e AS (INSERT INTO audit_entry (action, actor, payload, created_at) VALUES (%s, %s, %s::jsonb, %s) "
    "RETURNING id) INSERT INTO audit_pendingentry (entry_id) SELECT id FROM e"
)


def what_if(writes: int, block: int, results: Results) -> None:
    """Where the audited write's extra cost goes: the same entry written in fewer round trips, without the ORM.

    Not Kalpi's code: raw SQL writing the same two rows `record()` writes, to size what a change to
    `record()` could gain. Interleaved with the reference and `record()` itself, same connection.
    """
    import json

    from django.db import connection, transaction
    from django.utils import timezone

    from audit import services
    from audit.canonical import canonical_bytes
    from audit.models import Action

    member = iter(range(4 * 10**7, 5 * 10**7))
    action = Action.VOTER_CHECKED_IN.value

    def reference(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            m = next(member)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(CHECKIN_INSERT, [1, m, f"S{m % STATIONS:03d}", timezone.now()])
        return time.perf_counter() - start

    def app(n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            m = next(member)
            station = f"S{m % STATIONS:03d}"
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute(CHECKIN_INSERT, [1, m, station, timezone.now()])
                services.record(action=Action.VOTER_CHECKED_IN, actor=station, payload=checkin_payload(1, m, station))
        return time.perf_counter() - start

    def raw(n: int, write_entry) -> float:
        """The reference's INSERT, then the entry's two rows as `write_entry(cursor, params)` writes them."""
        start = time.perf_counter()
        for _ in range(n):
            m = next(member)
            station = f"S{m % STATIONS:03d}"
            with transaction.atomic(), connection.cursor() as cursor:
                now = timezone.now()
                cursor.execute(CHECKIN_INSERT, [1, m, station, now])
                payload = checkin_payload(1, m, station)
                canonical_bytes(payload)
                write_entry(cursor, [action, station, json.dumps(payload), now])
        return time.perf_counter() - start

    def two_statements(cursor, params) -> None:
        cursor.execute(WHAT_IF_ENTRY, params)
        cursor.execute(WHAT_IF_PENDING, [cursor.fetchone()[0]])

    def one_statement(cursor, params) -> None:
        cursor.execute(WHAT_IF_ONE_STATEMENT, params)

    # The entry travels with the COMMIT, in the round trip the transaction makes anyway: either a
    # pipeline (the entry prepared, then COMMIT, one Sync: leaving the block after a commit() would
    # send a second one) or one simple query "entry; COMMIT" with the values bound in the client.
    # Django's commit then finds the transaction closed.
    def pipelined_with_the_commit(cursor, params) -> None:
        with connection.connection.pipeline(), connection.connection.cursor() as c:
            c.execute(WHAT_IF_ONE_STATEMENT, params, prepare=True)
            c.execute("COMMIT")

    def simple_query_with_the_commit(cursor, params) -> None:
        import psycopg

        psycopg.ClientCursor(connection.connection).execute(WHAT_IF_ONE_STATEMENT + "; COMMIT", params)

    def select_1(n: int) -> float:
        start = time.perf_counter()
        with connection.cursor() as cursor:
            for _ in range(n):
                cursor.execute("SELECT 1")
                cursor.fetchone()
        return time.perf_counter() - start

    def empty_transaction(n: int) -> float:
        # BEGIN + a trivial statement + COMMIT with nothing to flush: the transaction's own round trips.
        start = time.perf_counter()
        for _ in range(n):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT 1")
        return time.perf_counter() - start

    cases = {
        "reference INSERT": reference,
        "INSERT + record() (Kalpi)": app,
        "INSERT + the same two rows, raw SQL, 2 statements": lambda n: raw(n, two_statements),
        "INSERT + the same two rows, raw SQL, 1 statement (CTE)": lambda n: raw(n, one_statement),
        "INSERT + that statement sent with the COMMIT, pipelined": lambda n: raw(n, pipelined_with_the_commit),
        "INSERT + that statement and COMMIT as one simple query": lambda n: raw(n, simple_query_with_the_commit),
        "SELECT 1 (one round trip, no transaction)": select_1,
        "empty transaction (BEGIN, SELECT 1, COMMIT)": empty_transaction,
    }
    times = {name: [] for name in cases}
    with no_integration_on_commit():
        for fn in cases.values():
            fn(100)  # warm up
        log(f"what-if: {writes:,} writes of each of {len(cases)} kinds, interleaved")
        order = list(cases)
        for k in range(max(1, writes // block)):
            for name in order if k % 2 == 0 else reversed(order):
                times[name].append(cases[name](block))
    n = max(1, writes // block) * block
    base = sum(times["reference INSERT"]) / n
    lines = [f"{'case':<58} {'µs/write':>9} {'vs reference':>13}"]
    for name, ts in times.items():
        us = sum(ts) / n
        lines.append(f"{name:<58} {us * 1e6:>9.0f} {us / base:>12.2f}x")
    results.profiles.append(
        (
            f"what an audited write costs, and what it could: {n:,} of each, blocks of {block} interleaved "
            "(the raw-SQL rows are not Kalpi's code: they write the same two rows as `record()`, for comparison)",
            "\n".join(lines),
        )
    )


def profile_all(writes: int, results: Results) -> None:
    from django.db import connection, transaction
    from django.utils import timezone

    from audit import services
    from audit.models import Action, Entry, PendingEntry
    from audit.verification import _checkpoints, verify_database

    # 1. Audited writes: where the time of the audited check-in goes, with each SQL statement timed;
    #    COMMIT is timed by wrapping the atomic block's exit.
    log(f"profile: {writes:,} audited check-ins")
    member0 = 2 * 10**7
    timer = SqlTimer()
    commit_seconds = 0.0
    profile = cProfile.Profile()
    with no_integration_on_commit(), connection.execute_wrapper(timer):
        wall = time.perf_counter()
        profile.enable()
        for i in range(writes):
            member = member0 + i
            station = f"S{member % STATIONS:03d}"
            atomic = transaction.atomic()
            atomic.__enter__()
            with connection.cursor() as cursor:
                cursor.execute(CHECKIN_INSERT, [1, member, station, timezone.now()])
            services.record(action=Action.VOTER_CHECKED_IN, actor=station, payload=checkin_payload(1, member, station))
            t = time.perf_counter()
            atomic.__exit__(None, None, None)
            commit_seconds += time.perf_counter() - t
        profile.disable()
        wall = time.perf_counter() - wall
    sql_total = sum(timer.seconds.values())
    results.profiles.append(
        (
            f"{writes:,} audited check-ins (INSERT + record(), one transaction each), under cProfile: "
            f"{wall / writes * 1e6:.0f} µs per write, of which SQL statements "
            f"{sql_total / writes * 1e6:.0f} µs and leaving the atomic block (COMMIT, on-commit callback) "
            f"{commit_seconds / writes * 1e6:.0f} µs",
            timer.report(writes) + "\n\n" + _pstats(profile, "tottime", 25),
        )
    )

    # 2. Integration of `writes` fresh pending entries.
    with transaction.atomic():
        now = timezone.now()
        created = Entry.objects.bulk_create(
            Entry(action=Action.VOTER_CHECKED_IN, actor="S001", payload=checkin_payload(1, 3 * 10**7 + i, "S001"),
                  created_at=now)
            for i in range(writes * 5)
        )  # fmt: skip
        PendingEntry.objects.bulk_create([PendingEntry(entry_id=e.id) for e in created])
    pending = PendingEntry.objects.count()
    log(f"profile: integrate_pending() of {pending:,}")
    timer = SqlTimer()
    profile = cProfile.Profile()
    with connection.execute_wrapper(timer):
        wall = time.perf_counter()
        profile.enable()
        done = services.integrate_pending()
        profile.disable()
        wall = time.perf_counter() - wall
    results.profiles.append(
        (
            f"`integrate_pending()` of {done:,} entries under cProfile: {wall:.2f} s ({done / wall:,.0f}/s), "
            f"SQL statements {sum(timer.seconds.values()):.2f} s of it",
            timer.report(done).replace("µs per write", "µs per entry") + "\n\n" + _pstats(profile, "tottime", 25),
        )
    )

    # 3. verify_database() over the whole log, and the checkpoint half alone.
    log("profile: verify_database(workers=0)")
    start = time.perf_counter()
    proofs = list(_checkpoints())
    checkpoints_s = time.perf_counter() - start
    timer = SqlTimer()
    profile = cProfile.Profile()
    with connection.execute_wrapper(timer):
        wall = time.perf_counter()
        profile.enable()
        report = verify_database(workers=0)
        profile.disable()
        wall = time.perf_counter() - wall
    if not report.ok:
        raise BenchError(f"verify_database: {report.summary()}")
    results.profiles.append(
        (
            f"`verify_database(workers=0)` (one process) under cProfile: {wall:.1f} s for {report.entries:,} entries and "
            f"{report.checkpoints:,} checkpoints. Its checkpoint half alone (`list(_checkpoints())`: "
            f"{len(proofs):,} checkpoints, each consistency proof built from stored nodes), "
            f"without cProfile: {checkpoints_s:.2f} s",
            timer.report(report.entries).replace("µs per write", "µs per entry")
            + "\n\n"
            + _pstats(profile, "tottime", 25)
            + "\n\nBy cumulative time:\n"
            + _pstats(profile, "cumulative", 30),
        )
    )


# --- Output ----------------------------------------------------------------------------------------------------


def machine(admin: Admin | None) -> list[str]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    mem = "unknown"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    pg = "unknown"
    if admin is not None:
        with contextlib.suppress(Exception):
            pg = admin.scalar("SHOW server_version")
    return [
        f"Date: {run_quiet(['date']).strip()}",
        f"CPU: {cpu}, {os.cpu_count()} cores; memory {mem}",
        f"PostgreSQL {pg}; Python {platform.python_version()}",
    ]


def code_version() -> str:
    try:
        return run_quiet(["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=12"]).strip()
    except (BenchError, OSError):
        return "unknown"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


# --- Main -----------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=100_000, help="audited check-ins to append (default 100,000)")
    parser.add_argument("--log-size", type=int, default=1_000_000, help="entries in the verified log (1,000,000)")
    parser.add_argument("--checkpoint-every", type=int, default=1000, help="entries per checkpoint when growing")
    parser.add_argument("--member-writes", type=int, default=10_000, help="Member.save pairs (0 to skip)")
    parser.add_argument(
        "--action-writes", type=int, default=2000, help="officials' actions of each kind, each side (0 to skip)"
    )
    parser.add_argument(
        "--station-writes", type=int, default=20_000, help="station check-ins and ballots, each (0 to skip)"
    )
    parser.add_argument("--block", type=int, default=1000, help="transactions per timed block")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each verification case (median)")
    parser.add_argument("--profile-writes", type=int, default=2000, help="audited writes profiled")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (server log)")
    parser.add_argument("--floor-child", nargs=3, metavar=("URL", "SQL", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor_child:
        floor_child(*args.floor_child)
        return 0
    if not args.database_url and os.environ.get("DATABASE_URL") == "":
        args.database_url = None
    if args.block > args.entries:
        args.block = max(1, args.entries)

    # SIGTERM (and SIGHUP) unwind like Ctrl-C, so the cluster is stopped and the folder removed.
    def _terminate(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)

    work = Path(tempfile.mkdtemp(prefix="kalpi-audit-bench-"))
    os.chmod(work, 0o755)  # the server (the postgres user, when run as root) keeps its cluster inside
    cluster = None
    admin = None
    results = Results()
    started = time.perf_counter()
    load_at_start = load()
    try:
        log(f"load average at start: {load_at_start}")
        if os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1):
            log("WARNING: the machine is busy; the figures will be noisy (run it on an idle machine)")
        if args.database_url:
            server_url = args.database_url
        else:
            cluster = ThrowawayCluster(work / "pg", args.port)
            log(f"starting a throwaway PostgreSQL on 127.0.0.1:{args.port}")
            cluster.start()
            server_url = cluster.url
        admin = Admin(server_url)
        name = f"kalpi_audit_bench_{os.getpid()}"
        admin.create(name)
        db_url = with_database(server_url, name)
        from audit import note

        signer_key, _ = note.generate_key(ORIGIN)
        env = {
            **os.environ,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "kalpi-audit-bench-" + os.urandom(16).hex(),
            "KALPI_SIGNING_KEY": signer_key,
            "KALPI_LOG_ORIGIN": ORIGIN,
            "DEBUG": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        for name in ("CELERY_BROKER_URL", "REDIS_URL"):  # embedded Celery (eager), in-process cache
            env.pop(name, None)
            os.environ.pop(name, None)
        log("manage.py migrate")
        run_quiet([sys.executable, "manage.py", "migrate", "--noinput"], env=env, cwd=REPO)
        django_setup(env)
        from django.conf import settings

        if settings.DEBUG:
            raise BenchError("DEBUG is on: Django would keep every query in memory")

        # The station's writes and the officials' actions first: setting up their elections integrates
        # and signs whatever is pending, which must not take the entries of the other cases from step 2.
        if args.station_writes:
            bench_station_writes(args.station_writes, min(args.block, args.station_writes), results)
        if args.action_writes:  # its set-up, too, integrates what is pending
            bench_official_actions(args.action_writes, min(args.block // 5, args.action_writes), results)
        bench_checkins(args.entries, args.block, results, admin)
        if args.member_writes:
            bench_member_saves(args.member_writes, min(args.block, args.member_writes), results)
        bench_integration(results)

        size, checkpoints = grow_log(args.log_size, args.checkpoint_every, results)
        from django.db import connection

        connection.close()  # the children get the server to themselves
        bench_verify(
            db_url=db_url, env=env, work=work, admin=admin, size=size, checkpoints=checkpoints,
            repeat=args.repeat, results=results,
        )  # fmt: skip
        if not args.no_profile:
            what_if(args.profile_writes * 2, min(args.block, 500), results)
            profile_all(args.profile_writes, results)
        connection.close()

        print()
        print("## Audit log benchmark")
        print()
        for line in machine(admin):
            print(f"- {line}")
        print(f"- Code: {code_version()}; load average at the start {load_at_start}, at the end {load()}")
        print(f"- Whole run: {time.perf_counter() - started:.0f} s")
        print()
        for line in table(results.rows):
            print(line)
        print()
        for note_line in results.notes:
            print(f"- {note_line}")
        for title, text in results.profiles:
            print()
            print(f"### Profile: {title}")
            print()
            print("```")
            print(text)
            print("```")
        return 0
    except BenchError as error:
        log(f"FAILED: {error}")
        return 1
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if admin is not None:
            with contextlib.suppress(Exception):
                admin.close()
        if cluster is not None:
            log("stopping the throwaway PostgreSQL")
            cluster.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
