"""Roster import benchmark: Kalpi's `import_roster` against a raw `psql \\copy` of the same file.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/roster_import.py                 # 1,000,000 rows, throwaway PostgreSQL + SQLite
    .venv/bin/python bench/roster_import.py --rows 20000    # a quick trial
    .venv/bin/python bench/roster_import.py --database-url postgres://user@host:5432/postgres

What it does, in one run:

1. Generates the roster CSV (`members.fake_roster`, seed 2011) and the corrected export with every
   10th member changed (`changed_every=10`) into a temporary folder.
2. PostgreSQL: starts a throwaway cluster (initdb --auth=trust, loopback, port 54331) unless
   --database-url or DATABASE_URL names a server. On a given server it only creates and drops its own
   databases (kalpi_bench_<pid>_*): the role must be allowed to CREATE DATABASE.
   - floor: `psql -c "\\copy bare_table FROM 'file' WITH (FORMAT csv, HEADER true)"` into a bare table
     with the same 9 columns (no key, no index), a new empty table each time;
   - for information, the same `\\copy` into a copy of members_member (its columns, checks and
     indexes, the branch code as text in place of the foreign key): what the indexes alone cost;
   - for information, the same `\\copy` into a table with members_member's columns and no index, then
     its primary key and unique member number built, in one transaction: the least any fresh import
     that ends with the roster's keys can cost;
   - fresh: `manage.py import_roster FILE` into a freshly migrated, empty database;
   - re-import: `manage.py import_roster CHANGED_FILE` into that same database, right after
     (expects 10% updated, 90% unchanged, and fails loudly otherwise; so does an error the import
     only logs).
3. SQLite: the same fresh import and re-import on its own file in the temporary folder (never the
   repository's db.sqlite3).
4. Profile (unless --no-profile): the CSV parsing alone; the fresh import and the re-import on
   PostgreSQL split by phase; cProfile of a fresh PostgreSQL import of --profile-rows rows.

Every case is one child process (psql, or `python manage.py`), timed by wall clock from start to exit,
its peak RSS taken from that child's own rusage (os.wait4). A shared machine makes timings noisy, so
each run also measures the share of the machine's CPU that other processes used meanwhile; a case is
run until --repeat (default 3) runs stayed under --max-other-load (10%), or --attempts runs in all
(default 2 x --repeat). The table shows the median of those runs (of all runs, marked *, when none
stayed under), and every single run is printed below it. On PostgreSQL, before every
timed run the server is CHECKPOINTed, so one run's dirty pages are not written during the next, and
before a re-import the members table is VACUUM ANALYZEd (untimed), as autovacuum would have done
between two exports, so that autovacuum does not start in the middle of the timed run.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import platform
import pstats
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
GOAL_FRESH = 2.0
GOAL_REIMPORT = 3.0
GOAL_RSS_MB = 300.0
DEFAULT_PORT = 54331
# Settings of the throwaway cluster; everything else is PostgreSQL's default (fsync and
# synchronous_commit on, wal_level replica). A given --database-url server is used as it is.
CLUSTER_SETTINGS = {"shared_buffers": "256MB", "max_wal_size": "4GB"}
# Logging only (changes nothing measured): shows in the server log whether autovacuum or a
# checkpoint ran during a timed run (keep the log with --keep).
CLUSTER_LOGGING = {"log_autovacuum_min_duration": "0", "log_checkpoints": "on", "log_line_prefix": "'%m [%p] '"}
CSV_COLUMNS = "member_no, first_name, last_name, branch, joined_on, status, dues_paid_until, email, phone"
FLOOR_COLUMNS = (
    "member_no text, first_name text, last_name text, branch text, joined_on date, status text, "
    "dues_paid_until date, email text, phone text"
)
_COUNTS_PREFIX = "created "


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# --- Child processes, timed, with their own peak RSS -------------------------------------------------------


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float  # 10^6 bytes
    cpu_seconds: float  # the child's own user + system CPU time
    stdout: str
    stderr: str
    other_load: float | None = None  # share of the machine's CPU used by anything else meanwhile

    @property
    def other(self) -> str:
        return "n/a" if self.other_load is None else f"{100 * self.other_load:.0f}%"


class CpuMeter:
    """What else used the CPU during a run: the machine's busy CPU time (/proc/stat, steal included)
    less the child's own, the throwaway server's (its processes, and through the postmaster's
    cutime those that ended) and this process's. A shared machine makes timings noisy; this says
    how much, and runs with too much of it are measured again."""

    def __init__(self) -> None:
        self.server_pid: int | None = None
        self.known = os.path.exists("/proc/stat")
        self.tick = os.sysconf("SC_CLK_TCK")

    def _machine(self) -> float:
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq, steal, *_ = map(int, f.readline().split()[1:])
        return (user + nice + system + irq + softirq + steal) / self.tick

    def _server(self) -> float:
        if self.server_pid is None:
            return 0.0
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid = int(stat.parent.name)
            if pid == self.server_pid:
                total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
            elif int(fields[1]) == self.server_pid:
                total += int(fields[11]) + int(fields[12])
        return total / self.tick

    def snapshot(self) -> tuple[float, float, float] | None:
        if not self.known:
            return None
        own = os.times()
        return self._machine(), self._server(), own.user + own.system

    def other_load(self, start, end, child_cpu: float, wall: float) -> float | None:
        if start is None or end is None:
            return None
        other = (end[0] - start[0]) - (end[1] - start[1]) - (end[2] - start[2]) - child_cpu
        return max(0.0, other) / ((os.cpu_count() or 1) * wall)


METER = CpuMeter()


_current_child: subprocess.Popen | None = None


def run_measured(argv: list[str], *, env: dict[str, str] | None = None, workdir: Path) -> Run:
    """Run one child to its end; wall-clock seconds and the child's own peak RSS (ru_maxrss, in KiB)."""
    global _current_child
    out_path, err_path = workdir / "child.out", workdir / "child.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        before = METER.snapshot()
        start = time.perf_counter()
        child = subprocess.Popen(argv, env=env, cwd=REPO, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _current_child = child
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
        after = METER.snapshot()
        _current_child = None
        child.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    if child.returncode != 0:
        raise BenchError(f"{' '.join(argv[:4])} … exited with {child.returncode}:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    cpu = usage.ru_utime + usage.ru_stime
    other = METER.other_load(before, after, cpu, seconds)
    return Run(seconds, usage.ru_maxrss * 1024 / 1e6, cpu, stdout, stderr, other)


def run_quiet(argv: list[str], **kwargs) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if result.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


# --- PostgreSQL: a throwaway cluster, or the server given ---------------------------------------------------


def find_pg_bin() -> Path:
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    if shutil.which("pg_config"):
        candidate = Path(run_quiet(["pg_config", "--bindir"]).strip())
        if (candidate / "pg_ctl").exists():
            return candidate
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise BenchError("PostgreSQL server binaries not found: set PG_BIN or give --database-url")


class ThrowawayCluster:
    """initdb + pg_ctl in a temporary folder, trust auth on loopback only, stopped whatever happens."""

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
        settings = {**CLUSTER_SETTINGS, **CLUSTER_LOGGING}
        options += "".join(f" -c {name}={value}" for name, value in settings.items())
        log_file = self.folder / "server.log"
        run_quiet(
            [
                *self._as,
                str(self.pg_bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(log_file),
                "-w",
                "start",
            ]
        )
        self.started = True

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.data / "postmaster.pid").read_text().split()[0])
        return None

    def stop(self) -> None:
        if not self.started:
            return
        pg_ctl = [*self._as, str(self.pg_bin / "pg_ctl"), "-D", str(self.data)]
        result = subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True)
        if result.returncode != 0:
            subprocess.run([*pg_ctl, "-m", "immediate", "-w", "stop"], capture_output=True)
        self.started = False


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class Postgres:
    """Admin connection to the server; creates and drops only the bench's own databases."""

    def __init__(self, server_url: str, prefix: str) -> None:
        import psycopg

        self.server_url = server_url
        self.prefix = prefix
        self.conn = psycopg.connect(server_url, autocommit=True)
        self.created: list[str] = []
        self.can_checkpoint = True

    def scalar(self, sql: str):
        return self.conn.execute(sql).fetchone()[0]

    def create(self, suffix: str, template: str | None = None) -> str:
        name = f"{self.prefix}_{suffix}"
        self.drop(name)
        template_sql = f' TEMPLATE "{template}"' if template else ""
        self.conn.execute(f'CREATE DATABASE "{name}"{template_sql}')
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def settle(self, url: str, *, reimport: bool) -> None:
        """Before a timed run: the members table vacuumed and analysed before a re-import (as autovacuum
        would have done between two exports, instead of starting in the middle of the run), then a
        CHECKPOINT so that the previous run's dirty pages are not written during this one."""
        if reimport:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM (ANALYZE) members_member")
        self.checkpoint()

    def checkpoint(self) -> None:
        if not self.can_checkpoint:
            return
        try:
            self.conn.execute("CHECKPOINT")
        except Exception as exc:  # not a superuser (nor pg_checkpoint): measure without it, and say so
            log(f"CHECKPOINT not allowed ({exc}); timings run without it")
            self.can_checkpoint = False

    def close(self) -> None:
        for name in list(self.created):
            with contextlib.suppress(Exception):
                self.drop(name)
        self.conn.close()


# --- The cases -------------------------------------------------------------------------------------------


@dataclass
class Case:
    name: str
    rows: int
    runs: list[Run] = field(default_factory=list)
    floor: Case | None = None
    time_goal: float | None = None  # max ratio to the floor
    reference: bool = False

    @property
    def clean_runs(self) -> list[Run]:
        return [r for r in self.runs if r.other_load is None or r.other_load <= LIMITS["max_other_load"]]

    @property
    def noisy(self) -> bool:
        """No run of this case had the machine to itself: its median is of all runs, and flagged."""
        return not self.clean_runs

    @property
    def seconds(self) -> float:
        return statistics.median(r.seconds for r in (self.clean_runs or self.runs))

    @property
    def peak_rss_mb(self) -> float:
        return max(r.peak_rss_mb for r in self.runs)

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.floor.seconds if self.floor else None

    def goal(self) -> str:
        if self.reference:
            return "(reference)"
        misses = []
        if self.time_goal is not None and self.ratio is not None and self.ratio > self.time_goal:
            misses.append(f"{self.ratio:.1f}x > {self.time_goal:g}x")
        if self.peak_rss_mb >= GOAL_RSS_MB:
            misses.append(f"{self.peak_rss_mb:.0f} MB >= {GOAL_RSS_MB:.0f} MB")
        return "no: " + ", ".join(misses) if misses else "yes"


# Set once by main(): the share of the machine that other processes may use during a run that counts.
LIMITS = {"max_other_load": 0.10}
# Set once per run by main(): e.g. the throwaway audit signing key.
_EXTRA_ENV: dict[str, str] = {}


def kalpi_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url, "SECRET_KEY": "kalpi-bench-not-a-secret", "DEBUG": "0"})
    env.update(_EXTRA_ENV)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def manage(*args: str) -> list[str]:
    return [sys.executable, str(REPO / "manage.py"), *args]


def parse_counts(stdout: str) -> dict[str, int]:
    for line in stdout.splitlines():
        if line.startswith(_COUNTS_PREFIX):
            return {k: int(v) for v, k in (part.strip().split(" ")[::-1] for part in line.split(","))}
    raise BenchError(f"no counts in the import's output:\n{stdout[-2000:]}")


def make_signing_key(work: Path) -> None:
    """A throwaway audit signing key: with DEBUG off, Kalpi refuses to sign its log without one."""
    if not (REPO / "audit" / "management" / "commands" / "audit_keygen.py").exists():
        return
    out = run_quiet(manage("audit_keygen"), env=kalpi_env(f"sqlite:///{work / 'unused.sqlite3'}"), cwd=REPO)
    key = next(line for line in out.splitlines() if line.startswith("PRIVATE+KEY+"))
    path = work / "signing-key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    _EXTRA_ENV["KALPI_SIGNING_KEY"] = str(path)


def expect_counts(stdout: str, expected: dict[str, int], what: str) -> None:
    counts = parse_counts(stdout)
    if counts != expected:
        raise BenchError(f"{what}: expected {expected}, the import printed {counts}")


def expect_no_traceback(run: Run, what: str) -> None:
    # An error logged after the commit (an on_commit hook) does not change the exit status.
    if "Traceback" in run.stderr:
        raise BenchError(f"{what}: the import logged an error:\n{run.stderr[-3000:]}")


def expected_counts(rows: int, changed_every: int, fresh: bool) -> dict[str, int]:
    if fresh:
        return {"created": rows, "updated": 0, "unchanged": 0, "rejected": 0}
    changed = len(range(0, rows, changed_every))
    return {"created": 0, "updated": changed, "unchanged": rows - changed, "rejected": 0}


def measure(case: Case, repeat: int, attempts: int, once) -> None:
    """Run `once()` (which returns a Run) until `repeat` runs had the machine to themselves, or `attempts` runs."""
    for attempt in range(1, attempts + 1):
        run = once()
        case.runs.append(run)
        log(f"{case.name} run {attempt}: {run.seconds:.2f} s, {run.peak_rss_mb:.0f} MB, other load {run.other}")
        if len(case.clean_runs) >= repeat:
            return


def least_disturbed(once, attempts: int) -> Run:
    """The first run during which the machine was quiet enough, else the least disturbed of `attempts`."""
    runs = []
    for _ in range(attempts):
        runs.append(once())
        if runs[-1].other_load is None or runs[-1].other_load <= LIMITS["max_other_load"]:
            return runs[-1]
    return min(runs, key=lambda r: r.other_load or 0.0)


def bench_floors(
    pg: Postgres, template: str, csv_path: Path, rows: int, repeat: int, attempts: int, work: Path
) -> list[Case]:
    """The floor (a bare table), and for information the same COPY into a table with the members table's indexes."""
    import psycopg

    floor = Case("PostgreSQL psql \\copy (floor)", rows, reference=True)
    indexed = Case("PostgreSQL psql \\copy, members table's indexes", rows, reference=True)
    floor.floor = None
    indexed.floor = floor
    url = with_database(pg.server_url, pg.create("floor", template=template))

    def copy_into(table: str, create: list[str], options: str, after: tuple[str, ...] = ()):
        def once() -> Run:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
                for sql in create:
                    conn.execute(sql)
            pg.checkpoint()
            copy = f"\\copy {table} ({CSV_COLUMNS}) FROM '{csv_path}' WITH (FORMAT csv, HEADER true{options})"
            # With statements after it, one transaction (-1), as an import's COPY and its keys are.
            then = [arg for sql in after for arg in ("-c", sql)]
            single = ["-1"] if after else []
            psql = ["psql", "-X", "-q", *single, "-v", "ON_ERROR_STOP=1", "-d", url, "-c", copy, *then]
            run = run_measured(psql, workdir=work)
            with psycopg.connect(url, autocommit=True) as conn:
                loaded = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            if loaded != rows:
                raise BenchError(f"{table}: loaded {loaded} rows, expected {rows}")
            return run

        return once

    measure(floor, repeat, attempts, copy_into("roster_floor", [f"CREATE TABLE roster_floor ({FLOOR_COLUMNS})"], ""))
    # The members table's columns, constraints and indexes, with the branch code in place of the key.
    like_members = [
        "CREATE TABLE roster_indexed (LIKE members_member INCLUDING ALL)",
        "ALTER TABLE roster_indexed DROP COLUMN branch_id",
        "ALTER TABLE roster_indexed ADD COLUMN branch text NOT NULL",
        "CREATE INDEX ON roster_indexed (branch)",
        "ALTER TABLE roster_indexed ALTER COLUMN updated_at SET DEFAULT now()",
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        count = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'members_member'").fetchone()[0]
    indexed.name = f"PostgreSQL psql \\copy, table with the {count} indexes of members"
    options = ", FORCE_NOT_NULL (email, phone)"
    measure(indexed, repeat, attempts, copy_into("roster_indexed", like_members, options))
    # The least any import into the roster can cost: the same columns, filled with no key or index,
    # then only the two keys the roster cannot do without (the primary key, the unique member number),
    # each built in one pass. No check of the file, no staging, no branch table or index, no
    # statistics, no interpreter: a fresh import can only be slower than this.
    keys_after = Case("PostgreSQL psql \\copy, then members' two keys built", rows, reference=True)
    keys_after.floor = floor
    bare_members = [
        "CREATE TABLE roster_keys (LIKE members_member INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS)",
        "ALTER TABLE roster_keys DROP COLUMN branch_id",
        "ALTER TABLE roster_keys ADD COLUMN branch text NOT NULL",
        "ALTER TABLE roster_keys ALTER COLUMN updated_at SET DEFAULT now()",
    ]
    build_keys = (
        "ALTER TABLE roster_keys ADD PRIMARY KEY (id)",
        "ALTER TABLE roster_keys ADD UNIQUE (member_no)",
    )
    measure(keys_after, repeat, attempts, copy_into("roster_keys", bare_members, options, build_keys))
    pg.drop(f"{pg.prefix}_floor")
    return [floor, indexed, keys_after]


def bench_kalpi(
    label: str, fresh_url, files: tuple[Path, Path], rows: int, repeat: int, attempts: int, work: Path, settle, floor
) -> tuple[Case, Case]:
    """Fresh import then re-import into the same database, until `repeat` of each had the machine to
    themselves (or `attempts` pairs); `fresh_url()` gives a freshly migrated, empty database."""
    fresh = Case(f"{label} Kalpi fresh import", rows, floor=floor, time_goal=GOAL_FRESH if floor else None)
    again = Case(f"{label} Kalpi re-import, 10% changed", rows, floor=floor, time_goal=GOAL_REIMPORT if floor else None)
    csv_path, changed_path = files
    for attempt in range(1, attempts + 1):
        url = fresh_url()
        env = kalpi_env(url)
        for case, path, is_fresh in ((fresh, csv_path, True), (again, changed_path, False)):
            settle(url, reimport=not is_fresh)
            run = run_measured(manage("import_roster", str(path)), env=env, workdir=work)
            expect_counts(run.stdout, expected_counts(rows, 10, fresh=is_fresh), case.name)
            expect_no_traceback(run, case.name)
            case.runs.append(run)
            log(f"{case.name} run {attempt}: {run.seconds:.2f} s, {run.peak_rss_mb:.0f} MB, other load {run.other}")
        if min(len(fresh.clean_runs), len(again.clean_runs)) >= repeat:
            break
    return fresh, again


# --- Profile ---------------------------------------------------------------------------------------------

_PARSE_ONLY = """
import sys, time
sys.path.insert(0, sys.argv[1])
from members.roster_csv import RosterReader
start = time.perf_counter()
rows = bad = 0
with open(sys.argv[2], "rb") as f:
    for row, errors in RosterReader(f):
        rows += 1
        bad += bool(errors)
print(rows, bad, time.perf_counter() - start)
"""

# The import's top-level steps (nested ones would be counted twice). Older code had other names.
_PHASES = (
    "transaction_lock", "_copy_into_empty_roster", "_stage_in_server", "_stage_in_python", "_create_staging", "_stage_rows",
    "_find_repeated_member_numbers", "_merge", "_drop_staging",
)  # fmt: skip
_NESTED = {"_stage_in_python": ("_create_staging", "_stage_rows", "_find_repeated_member_numbers")}


def phase_child(csv_path: str) -> None:
    """In a child: run import_roster with each phase, the commit and each SQL statement timed; print JSON."""
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection

    from members import services

    phases: dict[str, float] = {}
    statements: list[tuple[str, float]] = []

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    present = [name for name in _PHASES if hasattr(services, name)]
    nested = {inner for outer in present for inner in _NESTED.get(outer, ())}
    for name in present:
        if name not in nested:
            setattr(services, name, timed(name, getattr(services, name)))
    connection.commit = timed("commit", connection.commit)

    def sql_timer(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((" ".join(sql.split()[:3])[:48], time.perf_counter() - start))

    start = time.perf_counter()
    with connection.execute_wrapper(sql_timer), open(csv_path, "rb") as stream:
        # Newer code names who runs the import (for the audit log); the command's default is "cli".
        takes_actor = "actor" in inspect.signature(services.import_roster).parameters
        report = services.import_roster(stream=stream, **({"actor": "cli"} if takes_actor else {}))
    total = time.perf_counter() - start
    counts = (
        f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}, rejected {report.rejected}"
    )
    print(json.dumps({"total": total, "phases": phases, "statements": statements, "counts": counts}))


_PROFILED_PARTS = {
    ("services.py", "import_roster"): "the whole import",
    ("roster_csv.py", "__iter__"): "reading, decoding and checking the CSV",
    ("roster_csv.py", "parse_row"): "checking one record (part of the line above)",
    ("_copy_base.py", "write_row"): "psycopg formatting rows for COPY",
    ("services.py", "_copy_into_empty_roster"): "a first import's COPY straight into members, keys built after",
    ("services.py", "_with_branch_ids"): "turning branch codes into ids (part of the line above)",
    ("services.py", "_stage_in_server"): "the fast path: checking plain chunks and COPYing them",
    ("roster_copy.py", "plain_chunks"): "checking the chunks (part of the line above)",
    ("services.py", "_find_repeated_member_numbers"): "the repeated member number query",
    ("services.py", "_merge"): "the merge statements",
}


def profile(
    pg: Postgres, template: str, files: tuple[Path, Path], rows: int, profile_rows: int, attempts: int, work: Path
) -> list[str]:
    """Where the time of a PostgreSQL import goes. Returns lines for the output."""
    csv_path, changed_path = files
    lines = []

    def parse_only() -> Run:
        return run_measured([sys.executable, "-c", _PARSE_ONLY, str(REPO), str(csv_path)], workdir=work)

    run = least_disturbed(parse_only, attempts)
    parsed, bad, parse_seconds = run.stdout.split()
    lines.append(
        f"Parse only (RosterReader over {int(parsed):,} rows, no database): {float(parse_seconds):.2f} s "
        f"in-process ({run.seconds:.2f} s with interpreter start), {run.peak_rss_mb:.0f} MB peak RSS, "
        f"other load {run.other}"
    )
    if int(bad):
        raise BenchError(f"parse only: {bad} rows rejected")

    def by_phase() -> list[tuple[Run, dict]]:
        name = pg.create("profile", template=template)
        url = with_database(pg.server_url, name)
        env = kalpi_env(url)
        pair = []
        for path, fresh in ((csv_path, True), (changed_path, False)):
            pg.settle(url, reimport=not fresh)
            argv = [sys.executable, str(Path(__file__).resolve()), "--phase-child", str(path)]
            run = run_measured(argv, env=env, workdir=work)
            data = json.loads(run.stdout.strip().splitlines()[-1])
            expect_counts(data["counts"], expected_counts(rows, 10, fresh=fresh), "phase profile")
            expect_no_traceback(run, "phase profile")
            pair.append((run, data))
        pg.drop(name)
        return pair

    for attempt in range(1, attempts + 1):
        pair = by_phase()
        worst = max(r.other_load or 0.0 for r, _ in pair)
        log(f"phase profile run {attempt}: other load up to {100 * worst:.0f}%")
        if worst <= LIMITS["max_other_load"]:
            break
    for (run, data), title in zip(pair, ("fresh import", "re-import (10% changed)"), strict=True):
        lines.append(
            f"PostgreSQL {title} of {rows:,} rows, by phase (in-process {data['total']:.2f} s, "
            f"child wall clock {run.seconds:.2f} s, other load {run.other}):"
        )
        analyze = sum(s for sql, s in data["statements"] if sql.startswith("ANALYZE roster_staging"))
        for phase, seconds in data["phases"].items():
            note = ""
            if phase in ("_stage_rows", "_stage_in_server"):
                note = f"  (parse + COPY stream {seconds - analyze:.2f} s, ANALYZE {analyze:.2f} s)"
            lines.append(f"  {phase:32} {seconds:8.2f} s{note}")
        rest = data["total"] - sum(data["phases"].values())
        lines.append(f"  {'the rest':32} {rest:8.2f} s")
        lines.append("  SQL statements of 0.05 s or more:")
        for sql, seconds in data["statements"]:
            if seconds >= 0.05:
                lines.append(f"    {seconds:8.2f} s  {sql}")

    small = work / f"roster-{profile_rows}.csv"
    write_csv(small, profile_rows)
    name = pg.create("cprofile", template=template)
    env = kalpi_env(with_database(pg.server_url, name))
    prof_path = work / "import.prof"
    pg.checkpoint()
    run = run_measured(
        [sys.executable, "-m", "cProfile", "-o", str(prof_path), *manage("import_roster", str(small))[1:]],
        env=env,
        workdir=work,
    )
    # cProfile's shares are of the process's own time: other load matters less here; said, not retried.
    expect_counts(run.stdout, expected_counts(profile_rows, 10, fresh=True), "cProfile import")
    expect_no_traceback(run, "cProfile import")
    pg.drop(name)
    stats = pstats.Stats(str(prof_path))
    lines.append(
        f"cProfile of a fresh PostgreSQL import of {profile_rows:,} rows ({run.seconds:.2f} s under the "
        f"profiler, which slows Python code; other load {run.other}): top functions by own time"
    )
    entries = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # type: ignore[attr-defined]
    total_tt = stats.total_tt  # type: ignore[attr-defined]
    for (filename, lineno, func), (_cc, calls, tottime, cumtime, _callers) in entries[:14]:
        where = f"{Path(filename).name}:{lineno}({func})" if lineno else func
        lines.append(f"  {tottime:7.2f} s {100 * tottime / total_tt:5.1f}%  cum {cumtime:7.2f} s  {calls:>9}  {where}")
    lines.append("  cumulative time of the import's parts (under the profiler):")
    for (filename, _lineno, func), (_cc, _calls, _tottime, cumtime, _callers) in sorted(
        stats.stats.items(), key=lambda item: item[1][3], reverse=True
    ):  # type: ignore[attr-defined]
        if (Path(filename).name, func) in _PROFILED_PARTS:
            lines.append(
                f"    {cumtime:7.2f} s  {Path(filename).name}({func}): {_PROFILED_PARTS[Path(filename).name, func]}"
            )
    return lines


# --- Output ----------------------------------------------------------------------------------------------


def machine() -> list[str]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    mem = "unknown"
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        kib = int(next(line.split()[1] for line in f if line.startswith("MemTotal")))
        mem = f"{kib / 1024 / 1024:.1f} GiB"
    return [
        f"Date: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"CPU: {cpu}, {os.cpu_count()} cores; memory {mem}",
        f"Python {platform.python_version()}; SQLite {__import__('sqlite3').sqlite_version}",
    ]


def code_version() -> str:
    """The commit measured, marked -dirty when tracked files differ from it."""
    try:
        return run_quiet(["git", "-C", str(REPO), "describe", "--always", "--dirty", "--abbrev=12"]).strip()
    except (BenchError, OSError):
        return "unknown (not a git checkout)"


def table(cases: list[Case]) -> list[str]:
    head = ("case", "rows", "seconds", "rows/s", "x floor", "peak RSS MB", "goal met")
    body = []
    for c in cases:
        ratio = f"{c.ratio:.2f}" if c.ratio is not None else ("1.00" if c.reference else "-")
        body.append(
            (
                c.name,
                f"{c.rows:,}",
                f"{c.seconds:.2f}" + ("*" if c.noisy else ""),
                f"{c.rows / c.seconds:,.0f}",
                ratio,
                f"{c.peak_rss_mb:.0f}",
                c.goal(),
            )
        )
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]
    fmt = "| " + " | ".join(f"{{:{'<' if i in (0, 6) else '>'}{w}}}" for i, w in enumerate(widths)) + " |"
    sep = (
        "|"
        + "|".join(("-" * (w + 1) + ":" if i not in (0, 6) else ":" + "-" * (w + 1)) for i, w in enumerate(widths))
        + "|"
    )
    return [fmt.format(*head), sep, *(fmt.format(*row) for row in body)]


def write_csv(path: Path, rows: int, **kwargs) -> None:
    sys.path.insert(0, str(REPO))
    from members.fake_roster import write_roster_csv

    with open(path, "w", encoding="utf-8", newline="") as out:
        write_roster_csv(out, rows, **kwargs)


# --- Main ------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each case; the median is reported")
    parser.add_argument(
        "--max-other-load",
        type=float,
        default=0.10,
        help="a run during which other processes used more than this share of the machine's CPU is measured "
        "again (default 0.10); the median is of the runs under it",
    )
    parser.add_argument("--attempts", type=int, default=0, help="most runs of a case (default: 2 x --repeat)")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", ""),
        help="PostgreSQL server to use (default: DATABASE_URL, else a throwaway cluster)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port of the throwaway cluster")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--profile-rows", type=int, default=200_000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (CSV files, logs)")
    parser.add_argument("--phase-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase_child:
        phase_child(args.phase_child)
        return 0
    if args.database_url and not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url / DATABASE_URL must be a postgres:// URL (SQLite always uses a temporary file)")

    LIMITS["max_other_load"] = args.max_other_load
    attempts = args.attempts or 2 * args.repeat
    # A SIGTERM runs the same clean-up as an error: the cluster is stopped, the temporary folder removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    load_before = os.getloadavg()
    code_rev = code_version()
    if load_before[0] > 0.5:
        log(f"the machine is busy (load average {load_before[0]:.2f}): timings will be slower and noisier")
    work = Path(tempfile.mkdtemp(prefix="kalpi-bench-"))
    os.chmod(work, 0o755)  # the cluster's owner (postgres, when run as root) must reach its folder inside
    cluster: ThrowawayCluster | None = None
    pg: Postgres | None = None
    cases: list[Case] = []
    notes: list[str] = []
    profile_lines: list[str] = []
    try:
        csv_path, changed_path = work / "roster.csv", work / "roster-changed.csv"
        start = time.perf_counter()
        make_signing_key(work)
        write_csv(csv_path, args.rows)
        write_csv(changed_path, args.rows, changed_every=10)
        log(
            f"generated {args.rows:,} rows ({csv_path.stat().st_size / 1e6:.0f} MB) twice in "
            f"{time.perf_counter() - start:.1f} s"
        )

        if not args.no_postgres:
            server_url = args.database_url
            if not server_url:
                cluster = ThrowawayCluster(work / "pg", args.port)
                cluster.start()
                METER.server_pid = cluster.postmaster_pid()
                server_url = cluster.url
                notes.append(
                    "PostgreSQL: throwaway cluster (initdb --auth=trust, loopback), settings "
                    + ", ".join(f"{k}={v}" for k, v in CLUSTER_SETTINGS.items())
                    + ", everything else default"
                )
            else:
                notes.append("PostgreSQL: the server given by --database-url, as configured")
            pg = Postgres(server_url, f"kalpi_bench_{os.getpid()}")
            version = pg.scalar("SHOW server_version")
            settings = ", ".join(
                f"{s}={pg.scalar(f'SHOW {s}')}"
                for s in ("shared_buffers", "max_wal_size", "fsync", "synchronous_commit", "wal_level")
            )
            notes.append(f"PostgreSQL {version} ({settings}); psql {run_quiet(['psql', '--version']).split()[2]}")
            log(notes[-1])

            template = pg.create("template")
            run_quiet(manage("migrate", "--noinput"), env=kalpi_env(with_database(server_url, template)), cwd=REPO)

            floors = bench_floors(pg, template, csv_path, args.rows, args.repeat, attempts, work)
            cases += floors
            floor = floors[0]

            def fresh_pg_url() -> str:
                return with_database(server_url, pg.create("run", template=template))

            cases += bench_kalpi(
                "PostgreSQL",
                fresh_pg_url,
                (csv_path, changed_path),
                args.rows,
                args.repeat,
                attempts,
                work,
                pg.settle,
                floor,
            )

        if not args.no_sqlite:
            sqlite_dir = work / "sqlite"
            sqlite_dir.mkdir()
            template_file, db_file = sqlite_dir / "template.sqlite3", sqlite_dir / "bench.sqlite3"
            run_quiet(manage("migrate", "--noinput"), env=kalpi_env(f"sqlite:///{template_file}"), cwd=REPO)

            def fresh_sqlite_url() -> str:
                for stale in sqlite_dir.glob("bench.sqlite3*"):
                    stale.unlink()
                shutil.copyfile(template_file, db_file)
                return f"sqlite:///{db_file}"

            cases += bench_kalpi(
                "SQLite",
                fresh_sqlite_url,
                (csv_path, changed_path),
                args.rows,
                args.repeat,
                attempts,
                work,
                lambda *_, **__: None,
                None,
            )

        if pg is not None and not args.no_profile:
            log("profiling the fresh PostgreSQL import")
            profile_lines = profile(
                pg, template, (csv_path, changed_path), args.rows, min(args.profile_rows, args.rows), attempts, work
            )
    finally:
        if _current_child is not None and _current_child.poll() is None:
            _current_child.kill()
        if pg is not None:
            pg.close()
        if cluster is not None:
            cluster.stop()
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    load = " / ".join(f"{x:.2f}" for x in load_before), " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        "\n".join(
            [
                *machine(),
                f"Kalpi commit {code_rev}",
                *notes,
                f"Load average (1/5/15 min) at start {load[0]}, at end {load[1]}",
            ]
        )
    )
    other = (
        "other processes' share of the machine's CPU measured during each run"
        if METER.known and (cluster is not None or args.no_postgres)
        else "other load not measured (the server is not this machine's throwaway cluster)"
    )
    print(
        f"Seconds: the median of the runs during which other processes used at most "
        f"{100 * args.max_other_load:.0f}% of the machine's CPU ({other}); each case was run until {args.repeat} "
        f"such runs, or {attempts} runs in all; a * marks a case with no such run, whose median is of all its runs. "
        "Wall clock of the child process (psql, or Kalpi's manage.py including interpreter and Django start); "
        "peak RSS the highest of the child process (not the server)."
    )
    print()
    print("\n".join(table(cases)))
    print()
    print("Single runs: wall clock (the child's own CPU time) / peak RSS / other processes' share of the CPU")
    for c in cases:
        runs = (
            f"{r.seconds:.2f} s ({r.cpu_seconds:.2f} s CPU) / {r.peak_rss_mb:.0f} MB / {r.other}"
            + ("" if r in c.clean_runs else " (not counted)")
            for r in c.runs
        )
        print(f"  {c.name}: " + ", ".join(runs))
    if profile_lines:
        print()
        print("\n".join(profile_lines))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"roster_import bench failed: {exc}", file=sys.stderr)
        sys.exit(1)
