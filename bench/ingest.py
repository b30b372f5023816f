"""Station ingest benchmark: votes and ballot batches over real HTTP, against a bare DRF INSERT view.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/ingest.py                      # defaults below, about 3 minutes on 2 cores
    .venv/bin/python bench/ingest.py --seconds 5 --roster 45000 --vote-members 8000 --batch-checkins 16000 --no-profile   # a quick trial

What it does, in one run:

0. Setup. A throwaway PostgreSQL cluster (initdb --auth=trust in a temporary folder, 127.0.0.1 only,
   port 54335, run as the `postgres` user when started as root; server binaries from `pg_config
   --bindir` or PG_BIN), `manage.py migrate`, a fresh signing key (`manage.py audit_keygen`). Unless
   --eager: a Redis broker (127.0.0.1:63811, no persistence) and one Celery worker on the `audit`
   queue (`celery -A config worker -Q audit --concurrency 1`), as in production, so audit integration
   runs in the worker and not in the request. Then, in this process (django.setup()): a roster of
   --roster members (members.fake_roster through members.services.import_roster), an election with
   --stations electronic stations serving every branch, the electorate frozen, round 1 opened, one
   device token per station. The check-ins the batch phase needs are written here too, by
   bulk INSERT with their stations' counters (setup, not timed; the batch phase measures ballots).
1. Server. gunicorn on 127.0.0.1 (--workers, sync worker class) serving the app with a settings module
   generated in the temporary folder: config.settings unchanged except ROOT_URLCONF, which adds
   `bench/insert/` to the app's own URLs. That view is the ceiling: a DRF APIView (no authentication,
   AllowAny, JSON parser and renderer as the station API) doing one INSERT into a bench table and
   answering 201. Same server, same workers, same settings (CONN_MAX_AGE, middleware).
2. Load, N client threads (--clients), each with its own http.client connection:
   - ceiling: POST bench/insert/ for --seconds, before and after the vote phase (the two averaged);
   - votes: each thread is one station's device; for distinct members it POSTs checkins/ then
     ballots/ (a fresh UUIDv4, a random choice); votes/s = completed pairs per second;
   - batch: --batch-clients threads, each a station, POST ballots/batch/ with --batch-size ballots
     until --seconds have passed or its station's check-ins are used up; ballots/s.
   Every request's latency is recorded; any answer but the expected 2xx is an error.
3. Verification: every acknowledged check-in, ballot and ceiling row is in the database (by member
   and by id), the stations' counters equal the stored rows, and the audit queue drains.
4. Profile (unless --no-profile): --profile-votes check-in + ballot pairs through Django's test client
   in this process (the whole WSGI stack: middleware, DRF, services), under cProfile, with every SQL
   statement counted and timed, and the same for the ceiling view.

Load is loopback only. The client runs in this process and shares the machine's cores with gunicorn
and PostgreSQL: its CPU time is printed with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import http.client
import io
import json
import os
import platform
import pstats
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CHOICES = ["yachimovich", "peretz", "herzog", "mitzna", "blank", "invalid"]
STATION_API = "/api/v1/station/"

SETTINGS_MODULE = '''\
"""Kalpi's settings, with the benchmark's URLconf (the app's URLs plus the ceiling view)."""
from config.settings import *  # noqa: F401,F403

ROOT_URLCONF = "kalpi_ingest_bench_urls"
'''

URLS_MODULE = '''\
"""The app's URLs plus the ceiling: a bare DRF view doing one INSERT."""
from django.db import connection
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from config.urls import urlpatterns as app_urlpatterns


class BareInsert(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    def post(self, request):
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO bench_bare_insert (station, value) VALUES (%s, %s) RETURNING id",
                [str(request.data.get("station", "")), str(request.data.get("value", ""))],
            )
            (row_id,) = cursor.fetchone()
        return Response({"id": row_id}, status=201)


urlpatterns = [path("bench/insert/", BareInsert.as_view()), *app_urlpatterns]
'''


# ---------------------------------------------------------------- machine and processes


def sh(*args: str, **kwargs) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs).stdout


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "date": sh("date").strip(),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def announce(title: str) -> dict[str, str]:
    """Print a benchmark's heading: the machine, its load, and any process keeping it busy."""
    info = machine()
    print(f"# {title}, {info['date']}")
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory']}, Python {info['python']}, {info['os']}")
    print(f"load average at start: {loadavg()}")
    busy = busy_processes()
    if busy:
        print("WARNING: the machine is busy:\n  " + "\n  ".join(busy))
    return info


def signing_key(env: dict[str, str]) -> str:
    """A fresh signer key (`manage.py audit_keygen`) for a benchmark's own Kalpi processes."""
    keygen = subprocess.run(
        [PYTHON, "manage.py", "audit_keygen"], cwd=REPO, env={**os.environ, **env}, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    return next(line.strip() for line in keygen.stdout.splitlines() if line.strip().startswith("PRIVATE+KEY"))


def busy_processes(threshold: float = 20.0, sample: float = 1.0) -> list[str]:
    """Processes (not ours) using more than `threshold` % of a core over `sample` seconds."""

    def snap() -> dict[int, tuple[int, str]]:
        out = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = (entry / "stat").read_text()
                fields = stat.rsplit(")", 1)[1].split()
                ticks = int(fields[11]) + int(fields[12])
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                out[int(entry.name)] = (ticks, cmd or stat.split("(", 1)[1].split(")")[0])
        return out

    hz = os.sysconf("SC_CLK_TCK")
    a = snap()
    time.sleep(sample)
    b = snap()
    found = []
    for pid, (ticks, cmd) in b.items():
        if pid in a and pid != os.getpid():
            pct = 100.0 * (ticks - a[pid][0]) / hz / sample
            if pct >= threshold:
                found.append(f"{pct:.0f}% {cmd[:90]}")
    return found


def cpu_seconds(pids: list[int]) -> float:
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / hz


def children_of(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(Path(entry, "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    kids.append(int(entry.name))
    return kids


def wait_port(host: str, port: int, path: str = "/", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=2)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop_all(procs: list, logs: list, pg, folder: Path, keep: bool) -> None:
    """Stop the servers and workers a run started, whatever happened, and remove its folder."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    for log in logs:
        log.close()
    with contextlib.suppress(Exception):
        from django.db import connections

        connections.close_all()
    pg.stop()
    if keep:
        print(f"kept: {folder}")
    else:
        shutil.rmtree(folder, ignore_errors=True)


class Postgres:
    def __init__(self, folder: Path, port: int) -> None:
        self.folder, self.port = folder, port
        self.bindir = Path(os.environ.get("PG_BIN") or self._bindir())
        self.data = folder / "pgdata"
        self.as_postgres = os.geteuid() == 0
        self.started = False

    @staticmethod
    def _bindir() -> str:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            return sh("pg_config", "--bindir").strip()
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
        if not candidates:
            raise SystemExit("PostgreSQL server binaries not found: set PG_BIN")
        return str(candidates[-1])

    def _run(self, *args: str) -> str:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return sh(*cmd)

    def start(self) -> None:
        if self.as_postgres:
            shutil.chown(self.folder, "postgres")
        self._run("initdb", "-D", str(self.data), "--auth=trust", "-U", "bench", "-E", "UTF8", "--no-sync")
        conf = self.data / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.folder}'\n"
                "shared_buffers = 256MB\nmax_wal_size = 4GB\nmax_connections = 200\n"
            )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-w", "start")
        self.started = True

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.started = False

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def version(self) -> str:
        return self._run("postgres", "--version").strip()


# ---------------------------------------------------------------- setup inside Django


def django_setup(env: dict[str, str], folder: Path) -> None:
    os.environ.update(env)
    sys.path[:0] = [str(folder), str(REPO)]
    import django

    django.setup()


def build_election(args) -> dict:
    """Roster, election, stations, tokens, and the batch phase's check-ins. Returns what the load needs."""
    from django.db import connection, transaction
    from django.db.models import F
    from django.utils import timezone

    from ballots.models import CheckIn, Elector, Round, StationRound
    from ballots.services import setup
    from members.fake_roster import roster_csv_bytes
    from members.services import import_roster

    timings = {}
    t = time.perf_counter()
    report = import_roster(stream=io.BytesIO(roster_csv_bytes(args.roster)), actor="bench")
    assert report.ok, report.summary()
    timings["roster import"] = time.perf_counter() - t

    stations = [
        {"code": f"st-{i:03d}", "name": f"Station {i}", "mode": "electronic", "branches": []}
        for i in range(args.stations)
    ]
    data = {
        "slug": "ingest-bench",
        "name": "Ingest benchmark",
        "roster_cutoff": "2011-06-30",
        "require_dues": False,
        "candidates": [{"code": c, "name": c.title()} for c in CHOICES[:4]],
        "stations": stations,
        "rule": {"method": "two_round", "threshold_percent": "40", "threshold_base": "valid",
                 "quorum_percent": None, "advance": 2, "tie_break": "lot"},
        "rounds": [{"number": 1, "opens_at": "2011-09-12T07:00:00+03:00", "closes_at": "2011-09-12T22:00:00+03:00"}],
        "runoff_after_days": 7,
        "certifications_required": 2,
    }  # fmt: skip
    t = time.perf_counter()
    election, _ = setup.load_election(data=data, actor="bench")
    electorate = setup.freeze_electorate(election=election, actor="bench")
    round_ = setup.open_round(election=election, number=1, actor="bench")
    tokens = {}
    with transaction.atomic():
        for station in election.stations.order_by("position"):
            _, tokens[station.code] = setup.issue_station_token(station=station, actor="bench")
    timings["election, freeze, open, tokens"] = time.perf_counter() - t

    members = list(
        Elector.objects.filter(election=election).order_by("member_id").values_list("member_id", "member__member_no")
    )
    random.Random(7).shuffle(members)
    codes = list(tokens)
    # The batch phase's stations are the last --batch-clients; the vote phase's the first --clients.
    batch_codes = codes[-args.batch_clients :]
    vote_codes = codes[: args.clients]
    if set(batch_codes) & set(vote_codes):
        raise SystemExit("--clients + --batch-clients must not exceed --stations")
    per_batch_station = args.batch_checkins // len(batch_codes)
    # One more station, for the profile's batches: its check-ins are written here too.
    profile_batch_code = codes[-args.batch_clients - 1]
    if profile_batch_code in vote_codes:
        raise SystemExit("--clients + --batch-clients must be below --stations")
    profile_checkins = args.profile_batches * args.batch_size
    need = per_batch_station * len(batch_codes) + profile_checkins
    if need > len(members) - args.vote_members:
        raise SystemExit(f"electorate {len(members)} too small: raise --roster or lower --batch-checkins")
    batch_members, vote_members = members[:need], [m[1] for m in members[need:]]

    t = time.perf_counter()
    by_code = {s.code: s for s in election.stations.all()}
    now = timezone.now()
    with transaction.atomic():
        rows = []
        for k, code in enumerate(batch_codes):
            for member_id, _ in batch_members[k * per_batch_station : (k + 1) * per_batch_station]:
                rows.append(CheckIn(round=round_, member_id=member_id, station=by_code[code], created_at=now))
        for member_id, _ in batch_members[len(rows) :]:
            rows.append(CheckIn(round=round_, member_id=member_id, station=by_code[profile_batch_code], created_at=now))
        CheckIn.objects.bulk_create(rows, batch_size=5000)
        StationRound.objects.filter(round=round_, station__code__in=batch_codes).update(
            checkins=F("checkins") + per_batch_station
        )
        StationRound.objects.filter(round=round_, station__code=profile_batch_code).update(
            checkins=F("checkins") + profile_checkins
        )
    timings["batch check-ins (bulk INSERT)"] = time.perf_counter() - t

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_bare_insert (id bigserial PRIMARY KEY, station varchar(32) NOT NULL, "
            "value varchar(64) NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    connection.close()
    assert Round.objects.filter(pk=round_.pk, status=Round.Status.OPEN).exists()
    return {
        "round_id": round_.pk,
        "electorate": electorate,
        "tokens": tokens,
        "vote_codes": vote_codes,
        "batch_codes": batch_codes,
        "per_batch_station": per_batch_station,
        "profile_batch_code": profile_batch_code,
        "vote_members": vote_members,
        "timings": timings,
    }


# ---------------------------------------------------------------- load


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    ok: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    acked_checkins: list[str] = field(default_factory=list)
    acked_ballots: list[str] = field(default_factory=list)
    acked_bare: list[int] = field(default_factory=list)
    pairs: int = 0
    batch_accepted: int = 0
    batch_duplicates: int = 0
    end: float = 0.0

    def add(self, kind: str, seconds: float) -> None:
        self.latencies.setdefault(kind, []).append(seconds)
        self.ok[kind] = self.ok.get(kind, 0) + 1


class Client:
    def __init__(self, port: int, token: str | None) -> None:
        self.port = port
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Token {token}"
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def post(self, path: str, body: dict) -> tuple[int, bytes, float]:
        data = json.dumps(body).encode()
        t = time.perf_counter()
        try:
            self.conn.request("POST", path, body=data, headers=self.headers)
            response = self.conn.getresponse()
            payload = response.read()
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()  # the sync worker closes; the next request opens a new connection
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            return -1, repr(exc).encode(), time.perf_counter() - t
        return response.status, payload, time.perf_counter() - t

    def close(self) -> None:
        self.conn.close()


def run_threads(n: int, target) -> tuple[list[Tally], float, float]:
    """Run target(i, tally) in n threads at once; returns the tallies, wall seconds and this process's CPU seconds."""
    tallies = [Tally() for _ in range(n)]
    barrier = threading.Barrier(n + 1)

    def body(i: int) -> None:
        barrier.wait()
        try:
            target(i, tallies[i])
        except Exception as exc:  # a crashed client is an error to report, not a crash of the run
            tallies[i].errors.append(f"client crashed: {exc!r}")
        tallies[i].end = time.perf_counter()

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    cpu0 = time.process_time()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = max(t.end for t in tallies) - start
    return tallies, wall, time.process_time() - cpu0


def bare_phase(port: int, clients: int, seconds: float, label: str) -> Tally:
    def target(i: int, tally: Tally) -> None:
        client = Client(port, None)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            status, body, dt = client.post("/bench/insert/", {"station": f"c{i}", "value": uuid.uuid4().hex})
            if status == 201:
                tally.add("insert", dt)
                tally.acked_bare.append(json.loads(body)["id"])
            else:
                tally.errors.append(f"{label}: {status} {body[:200]!r}")
        client.close()

    return merge(*run_threads(clients, target))


def vote_phase(port: int, ctx: dict, clients: int, seconds: float, members: list[list[str]]) -> Tally:
    def target(i: int, tally: Tally) -> None:
        rng = random.Random(i)
        client = Client(port, ctx["tokens"][ctx["vote_codes"][i]])
        deadline = time.perf_counter() + seconds
        for member_no in members[i]:
            if time.perf_counter() >= deadline:
                break
            t = time.perf_counter()
            status, body, dt = client.post(STATION_API + "checkins/", {"member_no": member_no})
            if status != 201:
                tally.errors.append(f"check-in: {status} {body[:200]!r}")
                continue
            tally.add("check-in", dt)
            tally.acked_checkins.append(member_no)
            ballot_id = str(uuid.uuid4())
            status, body, dt = client.post(STATION_API + "ballots/", {"id": ballot_id, "choice": rng.choice(CHOICES)})
            if status != 201:
                tally.errors.append(f"ballot: {status} {body[:200]!r}")
                continue
            tally.add("ballot", dt)
            tally.acked_ballots.append(ballot_id)
            tally.pairs += 1
            tally.add("vote (pair)", time.perf_counter() - t)
        else:
            tally.errors.append(f"client {i} ran out of members before the deadline")
        client.close()

    return merge(*run_threads(clients, target))


def batch_phase(port: int, ctx: dict, clients: int, seconds: float, size: int) -> Tally:
    def target(i: int, tally: Tally) -> None:
        rng = random.Random(1000 + i)
        client = Client(port, ctx["tokens"][ctx["batch_codes"][i]])
        left = ctx["per_batch_station"]
        deadline = time.perf_counter() + seconds
        while left > 0 and time.perf_counter() < deadline:
            ballots = [{"id": str(uuid.uuid4()), "choice": rng.choice(CHOICES)} for _ in range(min(size, left))]
            status, body, dt = client.post(STATION_API + "ballots/batch/", {"ballots": ballots})
            if status != 200:
                tally.errors.append(f"batch: {status} {body[:200]!r}")
                break
            answer = json.loads(body)
            tally.add("batch", dt)
            tally.batch_accepted += answer["accepted"]
            tally.batch_duplicates += answer["duplicates"]
            tally.acked_ballots.extend(b["id"] for b in ballots)
            left -= len(ballots)
        client.close()

    return merge(*run_threads(clients, target))


def merge(tallies: list[Tally], wall: float, client_cpu: float) -> Tally:
    total = Tally()
    for t in tallies:
        for kind, values in t.latencies.items():
            total.latencies.setdefault(kind, []).extend(values)
            total.ok[kind] = total.ok.get(kind, 0) + t.ok[kind]
        total.errors += t.errors
        total.acked_checkins += t.acked_checkins
        total.acked_ballots += t.acked_ballots
        total.acked_bare += t.acked_bare
        total.pairs += t.pairs
        total.batch_accepted += t.batch_accepted
        total.batch_duplicates += t.batch_duplicates
    total.end = wall
    total.client_cpu = client_cpu  # type: ignore[attr-defined]
    return total


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


# ---------------------------------------------------------------- verification and profile


def verify(ctx: dict, bare: list[Tally], votes: list[Tally], batch: Tally) -> dict:
    """Acknowledged = stored, for every phase including the warm-up."""
    from django.db import connection

    from audit.models import PendingEntry
    from ballots.models import Ballot, CheckIn, OpenBallot, StationRound

    connection.close()
    round_id = ctx["round_id"]
    result = {}
    stored_checkins = set(
        CheckIn.objects.filter(round_id=round_id, station__code__in=ctx["vote_codes"]).values_list(
            "member__member_no", flat=True
        )
    )
    acked = {m for t in votes for m in t.acked_checkins}
    result["check-ins acknowledged"] = len(acked)
    result["check-ins stored (vote stations)"] = len(stored_checkins)
    result["check-ins acknowledged, not stored"] = len(acked - stored_checkins)

    acked_ballots = {uuid.UUID(b) for t in [*votes, batch] for b in t.acked_ballots}
    # The stations are still open: their ballots are in the open box (OpenBallot), or sealed (Ballot).
    stored_ballots = {
        i for model in (OpenBallot, Ballot) for i in model.objects.filter(round_id=round_id).values_list("id", flat=True)
    }
    result["ballots acknowledged (single + batch)"] = len(acked_ballots)
    result["ballots stored"] = len(stored_ballots)
    result["ballots acknowledged, not stored"] = len(acked_ballots - stored_ballots)
    result["ballots stored, not acknowledged"] = len(stored_ballots - acked_ballots)

    acked_bare = {i for t in bare for i in t.acked_bare}
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM bench_bare_insert")
        stored_bare = {row[0] for row in cursor.fetchall()}
    result["ceiling rows acknowledged"] = len(acked_bare)
    result["ceiling rows acknowledged, not stored"] = len(acked_bare - stored_bare)

    mismatched = []
    for sr in StationRound.objects.filter(round_id=round_id).select_related("station"):
        ballots = sum(
            model.objects.filter(round_id=round_id, station_id=sr.station_id).count() for model in (OpenBallot, Ballot)
        )
        checkins = CheckIn.objects.filter(round_id=round_id, station_id=sr.station_id).count()
        if (sr.ballots, sr.checkins) != (ballots, checkins):
            mismatched.append(f"{sr.station.code}: counters {sr.checkins}/{sr.ballots}, rows {checkins}/{ballots}")
    result["stations whose counters differ from rows"] = len(mismatched)
    result["_mismatched"] = mismatched

    pending0 = PendingEntry.objects.count()
    t = time.perf_counter()
    while PendingEntry.objects.exists() and time.perf_counter() - t < 120:
        time.sleep(0.5)
    result["audit entries pending when the load ended"] = pending0
    result["audit entries pending after waiting"] = PendingEntry.objects.count()
    result["audit drain seconds"] = round(time.perf_counter() - t, 1)
    return result


def profile(ctx: dict, votes: int, batches: int, batch_size: int) -> str:
    """cProfile + SQL of check-in/ballot pairs and of the ceiling, through the whole WSGI stack."""
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test.utils import CaptureQueriesContext

    members = ctx["profile_members"][:votes]
    token = ctx["tokens"][ctx["profile_code"]]
    client = DjangoClient(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    bare = DjangoClient(HTTP_HOST="127.0.0.1")
    batcher = DjangoClient(
        HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {ctx['tokens'][ctx['profile_batch_code']]}"
    )
    out = io.StringIO()

    def requests(kind: str):
        for k, member_no in enumerate(members):
            if kind == "vote":
                r = client.post(STATION_API + "checkins/", {"member_no": member_no}, content_type="application/json")
                assert r.status_code == 201, r.content
                r = client.post(
                    STATION_API + "ballots/", {"id": str(uuid.uuid4()), "choice": CHOICES[k % 6]},
                    content_type="application/json",
                )  # fmt: skip
                assert r.status_code == 201, r.content
            elif kind == "batch":
                if k >= batches:
                    break
                ballots = [{"id": str(uuid.uuid4()), "choice": CHOICES[j % 6]} for j in range(batch_size)]
                r = batcher.post(STATION_API + "ballots/batch/", {"ballots": ballots}, content_type="application/json")
                assert r.status_code == 200 and r.json()["accepted"] == batch_size, r.content
            else:
                r = bare.post("/bench/insert/", {"station": "p", "value": member_no}, content_type="application/json")
                assert r.status_code == 201, r.content

    requests("ceiling")  # warms the ceiling's code path in this process (the vote path warms on its first pairs)
    members = ctx["profile_members"][votes : 2 * votes]
    for kind, n_requests, unit in (
        ("vote", 2 * len(members), f"{len(members)} check-in + ballot pairs"),
        ("ceiling", len(members), "bare INSERT requests"),
        ("batch", batches, f"batches of {batch_size}"),
    ):
        with CaptureQueriesContext(connection) as queries:
            prof = cProfile.Profile()
            t = time.perf_counter()
            prof.enable()
            requests(kind)
            prof.disable()
            wall = time.perf_counter() - t
        sql_time = sum(float(q["time"]) for q in queries.captured_queries)
        shapes: dict[str, list[float]] = {}
        for q in queries.captured_queries:
            sql = q["sql"]
            key = re.sub(r"'[^']*'|\b\d+\b|\"s\d+_x\d+\"", "?", " ".join(sql.split()))
            key = re.sub(r"(\?, )+\?", "?…", key)[:150]
            shapes.setdefault(key, []).append(float(q["time"]))
        out.write(
            f"\n### {kind}: {unit}, {n_requests} requests, one client, in-process, cProfile on\n"
            f"wall {wall:.2f} s = {wall / n_requests * 1000:.2f} ms/request under cProfile; "
            f"{len(queries.captured_queries) / n_requests:.1f} SQL statements/request; "
            f"SQL (as timed by Django) {sql_time / n_requests * 1000:.2f} ms/request\n\n"
            "statements per request, by shape (count/request, mean ms):\n"
        )
        for key, times in sorted(shapes.items(), key=lambda kv: -sum(kv[1])):
            out.write(f"  {len(times) / n_requests:5.2f}  {statistics.mean(times) * 1000:6.3f}  {key}\n")
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(28)
        out.write("\ncProfile, cumulative, top 28:\n" + "\n".join(s.getvalue().splitlines()[4:]) + "\n")
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(15)
        out.write("\ncProfile, own time, top 15:\n" + "\n".join(s.getvalue().splitlines()[4:]) + "\n")
    return out.getvalue()


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16, help="concurrent station clients (votes, ceiling)")
    parser.add_argument("--batch-clients", type=int, default=8, help="concurrent stations posting batches")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each timed phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up before the timed phases")
    parser.add_argument("--roster", type=int, default=200_000, help="members in the roster")
    parser.add_argument("--vote-members", type=int, default=40_000, help="electors kept for the vote phase")
    parser.add_argument("--batch-checkins", type=int, default=120_000, help="check-ins set up for the batch phase")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers (sync worker class)")
    parser.add_argument("--port", type=int, default=54335, help="PostgreSQL port (loopback)")
    parser.add_argument("--http-port", type=int, default=8765, help="gunicorn port (loopback)")
    parser.add_argument("--redis-port", type=int, default=63811)
    parser.add_argument("--eager", action="store_true", help="no broker: Celery eager, integration in the request")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--profile-votes", type=int, default=300)
    parser.add_argument("--profile-batches", type=int, default=5)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()

    info = announce("Station ingest benchmark")

    folder = Path(tempfile.mkdtemp(prefix="kalpi-ingest-"))
    os.chmod(folder, 0o755)
    pg = Postgres(folder, args.port)
    procs: list[subprocess.Popen] = []
    celery: list[subprocess.Popen] = []
    logs = []
    try:
        pg.start()
        info["postgres"] = pg.version()
        print(f"{info['postgres']}: throwaway cluster on 127.0.0.1:{args.port}, shared_buffers=256MB, fsync on")
        sh(str(pg.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(args.port), "-U", "bench", "kalpi_ingest")
        (folder / "kalpi_ingest_bench_settings.py").write_text(SETTINGS_MODULE)
        (folder / "kalpi_ingest_bench_urls.py").write_text(URLS_MODULE)
        env = {
            "DATABASE_URL": f"postgres://bench@127.0.0.1:{args.port}/kalpi_ingest",
            "SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
            "ALLOWED_HOSTS": "127.0.0.1",
            "DEBUG": "false",
            "DJANGO_SETTINGS_MODULE": "kalpi_ingest_bench_settings",
            "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)]),
            "LOG_LEVEL": "WARNING",
            "MEDIA_ROOT": str(folder / "media"),
        }
        env["KALPI_SIGNING_KEY"] = signing_key(env)
        if not args.eager:
            env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{args.redis_port}/0"
            redis_log = open(folder / "redis.log", "w")  # noqa: SIM115
            logs.append(redis_log)
            procs.append(
                subprocess.Popen(
                    ["redis-server", "--port", str(args.redis_port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--daemonize", "no"],
                    stdout=redis_log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        full_env = {**os.environ, **env}
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=full_env, check=True)
        if not args.eager:
            worker_log = open(folder / "celery.log", "w")  # noqa: SIM115
            logs.append(worker_log)
            celery.append(
                subprocess.Popen(
                    [str(Path(PYTHON).parent / "celery"), "-A", "config", "worker", "-Q", "audit", "--concurrency",
                     "1", "--loglevel", "WARNING"],
                    cwd=REPO, env=full_env, stdout=worker_log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
            procs.append(celery[0])
        print(
            "audit integration: "
            + ("eager, in the request (no broker)" if args.eager else
               f"Redis broker on 127.0.0.1:{args.redis_port}, one Celery worker (-Q audit --concurrency 1)")
        )  # fmt: skip

        django_setup(env, folder)
        t = time.perf_counter()
        ctx = build_election(args)
        print(
            f"setup: {args.roster} members, electorate {ctx['electorate']}, {args.stations} electronic stations, "
            f"{ctx['per_batch_station'] * len(ctx['batch_codes'])} check-ins bulk-written for the batch phase "
            f"({time.perf_counter() - t:.1f} s: "
            + ", ".join(f"{k} {v:.1f} s" for k, v in ctx["timings"].items()) + ")"
        )  # fmt: skip
        members = ctx["vote_members"]
        # Vote-phase members: disjoint slices per client; warm-up and profile take theirs from the end.
        per_client = (len(members) - 2 * args.profile_votes - 200) // args.clients
        slices = [members[i * per_client : (i + 1) * per_client] for i in range(args.clients)]
        spare = members[args.clients * per_client :]
        ctx["profile_members"] = spare[:-200]
        warm_members = spare[-200:]
        # The profile runs at a vote station that is not used by the batch phase (its counters then still check).
        ctx["profile_code"] = ctx["vote_codes"][0]

        server_log = folder / "gunicorn.log"
        gunicorn = subprocess.Popen(
            [str(Path(PYTHON).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{args.http_port}",
             "--workers", str(args.workers), "--worker-class", "sync", "--error-logfile", str(server_log),
             "--log-level", "warning"],
            cwd=REPO, env=full_env,
        )  # fmt: skip
        procs.append(gunicorn)
        wait_port("127.0.0.1", args.http_port, "/healthz")
        print(f"server: gunicorn {args.workers} sync workers on 127.0.0.1:{args.http_port}, DEBUG off, "
              f"CONN_MAX_AGE default (600 s, health checks on)")  # fmt: skip
        time.sleep(1)
        workers = children_of(gunicorn.pid)

        def pg_pids() -> list[int]:
            return [pg.postmaster_pid(), *children_of(pg.postmaster_pid())]

        def celery_pids() -> list[int]:
            return [p.pid for p in celery] + [c for p in celery for c in children_of(p.pid)]

        # Warm-up: every worker opens its connection and imports its code paths.
        warm_split = [warm_members[i :: args.clients] for i in range(args.clients)]
        warm_bare = bare_phase(args.http_port, args.clients, args.warmup, "warm-up")
        warm = vote_phase(args.http_port, ctx, args.clients, args.warmup, warm_split)
        warm_errors = [e for e in warm.errors if "ran out of members" not in e]
        if warm_errors:
            raise SystemExit("warm-up failed:\n" + "\n".join(warm_errors[:5]))
        print(f"warm-up: {warm.pairs} votes, done; load average {loadavg()}")

        def measured(fn, *a):
            cpu0 = cpu_seconds(workers), cpu_seconds(pg_pids()), cpu_seconds(celery_pids())
            tally = fn(*a)
            cpu1 = cpu_seconds(workers), cpu_seconds(pg_pids()), cpu_seconds(celery_pids())
            tally.cpu = {  # type: ignore[attr-defined]
                "gunicorn": (cpu1[0] - cpu0[0]) / tally.end,
                "postgres": (cpu1[1] - cpu0[1]) / tally.end,
                "celery": (cpu1[2] - cpu0[2]) / tally.end,
                "client": tally.client_cpu / tally.end,  # type: ignore[attr-defined]
            }
            return tally

        bare1 = measured(bare_phase, args.http_port, args.clients, args.seconds, "ceiling")
        print(f"ceiling (1): {bare1.ok.get('insert', 0) / bare1.end:.0f} req/s, load average {loadavg()}")
        votes = measured(vote_phase, args.http_port, ctx, args.clients, args.seconds, slices)
        print(f"votes: {votes.pairs / votes.end:.0f} votes/s, load average {loadavg()}")
        bare2 = measured(bare_phase, args.http_port, args.clients, args.seconds, "ceiling")
        print(f"ceiling (2): {bare2.ok.get('insert', 0) / bare2.end:.0f} req/s, load average {loadavg()}")
        batch = measured(batch_phase, args.http_port, ctx, args.batch_clients, args.seconds, args.batch_size)
        print(f"batch: {batch.batch_accepted / batch.end:.0f} ballots/s, load average {loadavg()}")
        load_end = loadavg()

        # ---------------------------------------------------------------- report
        ceiling_rate = statistics.mean([bare1.ok["insert"] / bare1.end, bare2.ok["insert"] / bare2.end])
        vote_requests = votes.ok.get("check-in", 0) + votes.ok.get("ballot", 0)
        vote_rate = vote_requests / votes.end
        votes_per_s = votes.pairs / votes.end
        batch_rate = batch.batch_accepted / batch.end
        ratio = vote_rate / ceiling_rate
        check = verify(ctx, [warm_bare, bare1, bare2], [warm, votes], batch)
        errors = len(bare1.errors) + len(bare2.errors) + len(votes.errors) + len(batch.errors)
        lost = (
            check["check-ins acknowledged, not stored"]
            + check["ballots acknowledged, not stored"]
            + check["ceiling rows acknowledged, not stored"]
        )

        lines = [
            "",
            f"Run: {info['date']}; {info['cpu']}, {info['cores']} cores, {info['memory']}; {info['postgres']}; "
            f"Python {info['python']}.",
        ]
        lines.append(
            f"gunicorn {args.workers} sync workers; {args.clients} client threads (votes, ceiling), "
            f"{args.batch_clients} (batch, {args.batch_size} ballots/request); {args.seconds:.0f} s per phase; "
            f"load average after the run {load_end}."
        )
        lines += [
            "",
            "| Phase | Requests | Wall (s) | Requests/s | Items/s | p50 (ms) | p99 (ms) | Errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]

        def row(name, tally, kind, items=None, items_label=""):
            lat = tally.latencies.get(kind, [])
            n = len(lat)
            items_s = f"{items / tally.end:,.0f} {items_label}" if items is not None else ""
            return (
                f"| {name} | {n:,} | {tally.end:.1f} | {n / tally.end:,.0f} | {items_s} | {ms(pct(lat, 50))} | "
                f"{ms(pct(lat, 99))} | {len(tally.errors)} |"
            )

        lines.append(row("ceiling: bare DRF INSERT (before)", bare1, "insert"))
        lines.append(row("ceiling: bare DRF INSERT (after)", bare2, "insert"))
        lines.append(
            f"| votes: check-in + ballot | {vote_requests:,} | {votes.end:.1f} | {vote_rate:,.0f} | "
            f"{votes_per_s:,.0f} votes/s | | | {len(votes.errors)} |"
        )
        lines.append(row("&nbsp;&nbsp;check-in", votes, "check-in"))
        lines.append(row("&nbsp;&nbsp;ballot", votes, "ballot"))
        lines.append(row("&nbsp;&nbsp;vote (the pair)", votes, "vote (pair)"))
        lines.append(row("batch: ballots/batch/", batch, "batch", batch.batch_accepted, "ballots/s"))
        lines += [
            "",
            "CPU, in cores busy (of "
            + info["cores"]
            + "), per phase: "
            + "; ".join(
                f"{name} " + ", ".join(f"{k} {v:.2f}" for k, v in t.cpu.items())  # type: ignore[attr-defined]
                for name, t in (("ceiling (1)", bare1), ("votes", votes), ("ceiling (2)", bare2), ("batch", batch))
            ),
            "",
            "| Goal | Measured | Met |",
            "|---|---|---|",
            f"| single-vote path ≥ 60% of the ceiling's request rate | {vote_rate:,.0f} / {ceiling_rate:,.0f} "
            f"req/s = {ratio:.0%} | {'yes' if ratio >= 0.6 else 'no'} |",
            f"| batch path ≥ 5,000 ballots/s | {batch_rate:,.0f} ballots/s | {'yes' if batch_rate >= 5000 else 'no'} |",
            f"| zero errors | {errors} | {'yes' if errors == 0 else 'no'} |",
            f"| zero lost votes (acknowledged = stored) | {lost} lost | {'yes' if lost == 0 else 'no'} |",
            "",
            "Verification: " + "; ".join(f"{k} {v}" for k, v in check.items() if not k.startswith("_")) + ".",
        ]
        if batch.batch_duplicates:
            lines.append(f"Batch duplicates reported: {batch.batch_duplicates}.")
        for name, t in (("ceiling", bare1), ("votes", votes), ("ceiling", bare2), ("batch", batch)):
            for e in t.errors[:5]:
                lines.append(f"error ({name}): {e}")
        for m in check["_mismatched"][:5]:
            lines.append(f"counter mismatch: {m}")
        print("\n".join(lines))

        if not args.no_profile:
            print("\n## Profile (in-process, after the load)")
            print(profile(ctx, args.profile_votes, args.profile_batches, args.batch_size))
        return 0 if errors == 0 and lost == 0 else 1
    finally:
        stop_all(procs, logs, pg, folder, args.keep)


if __name__ == "__main__":
    sys.exit(main())
