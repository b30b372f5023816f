"""Result pages benchmark: the public round page and its JSON under gunicorn, against a static file.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/pages.py                      # defaults below, about 9 minutes on 2 cores
    .venv/bin/python bench/pages.py --seconds 2 --warmup 0.5 --stations 50 --elections 1 --small-elections 1 --profile-requests 20   # a quick trial

What it does, in one run:

0. Setup. A throwaway PostgreSQL cluster (bench/ingest.py's: initdb --auth=trust in a temporary
   folder, 127.0.0.1 only, port 54339, run as the `postgres` user when started as root), a Redis
   (127.0.0.1:63813, no persistence) as Celery broker (db 0) and cache (db 1), `manage.py migrate`, a
   fresh signing key (`manage.py audit_keygen`), and two Celery workers as the README deploys them
   (`-Q celery`, and `-Q audit --concurrency 1`); no beat. Then, in this process (django.setup()): a
   roster of --roster members (members.fake_roster through import_roster), two committee members
   (add_official), and --elections elections of --stations electronic stations (each serving every
   branch) plus --small-elections of --small-stations. For each: the electorate frozen, round 1
   opened, --voters stations' worth of votes cast through the services (check_in_voter then
   record_ballot, one transaction each, --voters per station), close_round (every station sealed),
   tally_round, publish_provisional. The first election's round is the one under load.
1. Static files: its page is copied into an extra static folder (bench/round-page.html, for scale:
   the same bytes served by whitenoise), then `manage.py collectstatic` into the temporary folder
   with DEBUG off (CompressedManifestStaticFilesStorage, as in production).
2. Server. gunicorn on 127.0.0.1 (--workers, sync worker class), DEBUG off, SECRET_KEY,
   ALLOWED_HOSTS=127.0.0.1, CONN_MAX_AGE default, with a settings module generated in the temporary
   folder: config.settings with STATIC_ROOT (and one more STATICFILES_DIRS entry) moved there.
3. Load. For each --clients level, N client threads (own http.client connection each; the sync
   worker closes it after every answer) GET one target for --seconds: the static ceiling
   (/static/kalpi/admin-extra.css), the page, the page with If-None-Match (304), results.json and its
   304, the API twin and its 304, the page's bytes as a static file; the ceiling again at the end,
   the two averaged. Every latency is recorded; any other status, or a body of another size, is an
   error. CPU per request of the gunicorn workers and of PostgreSQL is read from /proc.
4. Certification. Each round is approved by two committee members (certify_round); the clock
   starts when the second approval commits (an on_commit callback registered before the service's
   own, so it runs first) and stops when results.json, polled over HTTP every --poll-ms with the
   provisional version's ETag, answers 200 with "status":"official".
5. Profile (unless --no-profile): --profile-requests of each target through Django's test client in
   this process (the whole WSGI stack, whitenoise included), under cProfile, SQL counted; and the
   pieces of a publication of the big round (document and signature, CSV, page) timed.

Load is loopback only. The client runs in this process and shares the machine's cores with gunicorn
and PostgreSQL: its CPU time is printed with the figures.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import http.client
import io
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

# The sibling benchmark's throwaway cluster, process helpers and load harness.
from ingest import (
    PYTHON,
    REPO,
    Postgres,
    Tally,
    announce,
    children_of,
    cpu_seconds,
    django_setup,
    loadavg,
    merge,
    ms,
    pct,
    run_threads,
    sh,
    signing_key,
    stop_all,
    wait_port,
)

CANDIDATES = ["yachimovich", "peretz", "herzog", "mitzna"]
# 20 ballots: the first candidate has half the valid votes, so every round has a winner to certify.
PATTERN = ["yachimovich"] * 9 + ["peretz"] * 5 + ["herzog"] * 3 + ["mitzna", "blank", "invalid"]
STATIC_PATH = "/static/kalpi/admin-extra.css"
PAGE_COPY = "bench/round-page.html"

SETTINGS_MODULE = '''\
"""Kalpi's settings, with static files collected into the benchmark's temporary folder."""
from config.settings import *  # noqa: F401,F403

STATIC_ROOT = {static_root!r}
STATICFILES_DIRS = [*STATICFILES_DIRS, {extra!r}]  # noqa: F405
'''


# ---------------------------------------------------------------- setup inside Django


def build_election(slug: str, stations: int, voters: int, committee: list[str]) -> dict:
    """An election of `stations` stations, round 1 voted at every station, closed, tallied, published."""
    from ballots.models import Elector, Publication, Station
    from ballots.services import count, publish, setup, station

    data = {
        "slug": slug,
        "name": f"Result pages benchmark {slug}",
        "roster_cutoff": "2011-06-30",
        "require_dues": False,
        "candidates": [{"code": c, "name": c.title()} for c in CANDIDATES],
        "stations": [
            {"code": f"st-{i:04d}", "name": f"Station {i}", "mode": "electronic", "branches": []}
            for i in range(stations)
        ],
        "rule": {"method": "two_round", "threshold_percent": "40", "threshold_base": "valid",
                 "quorum_percent": None, "advance": 2, "tie_break": "lot"},
        "rounds": [{"number": 1, "opens_at": "2011-09-12T07:00:00+03:00", "closes_at": "2011-09-12T22:00:00+03:00"}],
        "runoff_after_days": 7,
        "certifications_required": len(committee),
    }  # fmt: skip
    timings = {}
    t = time.perf_counter()
    election, _ = setup.load_election(data=data, actor="bench")
    electorate = setup.freeze_electorate(election=election, actor="bench")
    round_ = setup.open_round(election=election, number=1, actor="bench")
    timings["load, freeze, open"] = time.perf_counter() - t

    members = list(
        Elector.objects.filter(election=election, removed_at__isnull=True)
        .order_by("member_id")
        .values_list("member__member_no", flat=True)[: stations * voters]
    )
    if len(members) < stations * voters:
        raise SystemExit(f"electorate {electorate} too small for {stations} × {voters} voters: raise --roster")
    t = time.perf_counter()
    k = 0
    for st in Station.objects.filter(election=election).order_by("position"):
        for _ in range(voters):
            station.check_in_voter(station=st, member_no=members[k])
            station.record_ballot(station=st, ballot_id=str(uuid.uuid4()), choice=PATTERN[k % len(PATTERN)])
            k += 1
    timings[f"{k} votes through the services"] = time.perf_counter() - t

    t = time.perf_counter()
    setup.close_round(election=election, number=1, actor="bench")
    timings["close_round"] = time.perf_counter() - t
    t = time.perf_counter()
    tally = count.tally_round(election=election, number=1, actor="bench")
    publish.publish_provisional(round_id=round_.pk, actor="bench")
    timings["tally_round + publish_provisional"] = time.perf_counter() - t
    publication = Publication.objects.filter(round=round_).order_by("-version").first()
    assert publication is not None and publication.status == "provisional", publication
    assert tally.complete and tally.decision == "winner", (tally.complete, tally.decision)
    return {
        "slug": slug,
        "election_id": election.pk,
        "round_id": round_.pk,
        "stations": stations,
        "electorate": electorate,
        "votes": k,
        "timings": timings,
    }


def wait_audit_drained(timeout: float = 120.0) -> float:
    """Seconds until the audit queue is empty (the Celery worker integrates)."""
    from audit.models import PendingEntry

    t = time.perf_counter()
    while PendingEntry.objects.exists():
        if time.perf_counter() - t > timeout:
            raise SystemExit("the audit queue did not drain: is the Celery worker up? (see --keep logs)")
        time.sleep(0.2)
    return time.perf_counter() - t


# ---------------------------------------------------------------- load


class Getter:
    """One client's connection; reopened for each request, since the sync worker closes it."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str], float]:
        t = time.perf_counter()
        try:
            self.conn.request("GET", path, headers=headers)
            response = self.conn.getresponse()
            body = response.read()
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            return -1, repr(exc).encode(), {}, time.perf_counter() - t
        return response.status, body, {k.lower(): v for k, v in response.getheaders()}, time.perf_counter() - t

    def close(self) -> None:
        self.conn.close()


def get_phase(port: int, clients: int, seconds: float, target: dict) -> Tally:
    path, headers, status, size = target["path"], target["headers"], target["status"], target["size"]

    def body(i: int, tally: Tally) -> None:
        client = Getter(port)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            code, payload, _, dt = client.get(path, headers)
            if code == status and len(payload) == size:
                tally.add("get", dt)
            else:
                tally.errors.append(f"{target['name']}: {code}, {len(payload)} bytes {payload[:120]!r}")
        client.close()

    return merge(*run_threads(clients, body))


def poll_official(port: int, path: str, etag: str, interval: float, timeout: float = 60.0) -> tuple[float, int]:
    """perf_counter when `path` first answers 200 with the official version, and the number of polls."""
    client = Getter(port)
    deadline = time.perf_counter() + timeout
    polls = 0
    try:
        while time.perf_counter() < deadline:
            code, payload, _, _ = client.get(path, {"If-None-Match": etag})
            polls += 1
            seen = time.perf_counter()
            if code == 200 and b'"status":"official"' in payload:
                return seen, polls
            if code not in (200, 304):
                raise SystemExit(f"polling {path}: {code} {payload[:200]!r}")
            time.sleep(interval)
    finally:
        client.close()
    raise SystemExit(f"{path} was not official within {timeout:.0f} s of the certification")


def certify(ctx: dict, committee: list[str], port: int, interval: float) -> dict:
    """Approve the round twice; seconds from the commit of the last approval to the official JSON over HTTP."""
    from django.db import transaction

    from audit.models import Entry
    from ballots.models import Election, Publication
    from ballots.services import count

    election = Election.objects.get(pk=ctx["election_id"])
    path = f"/results/{ctx['slug']}/rounds/1/results.json"
    provisional = Publication.objects.filter(round_id=ctx["round_id"]).order_by("-version").first()
    etag = f'"{provisional.sha256}"'
    for username in committee[:-1]:
        count.certify_round(election=election, number=1, username=username)
    wait_audit_drained()
    time.sleep(0.5)
    marks: dict[str, float] = {}

    def committed() -> None:
        marks["perf"], marks["wall"] = time.perf_counter(), time.time()

    t = time.perf_counter()
    with transaction.atomic():
        # Registered before certify_round's own callback (which enqueues the publication): runs first.
        transaction.on_commit(committed)
        _, _, certified = count.certify_round(election=election, number=1, username=committee[-1])
    returned = time.perf_counter()
    assert certified
    seen, polls = poll_official(port, path, etag, interval)
    official = Publication.objects.get(round_id=ctx["round_id"], status="official")
    written = Entry.objects.get(pk=official.entry_id).created_at
    return {
        "slug": ctx["slug"],
        "stations": ctx["stations"],
        "certify_ms": (marks["perf"] - t) * 1000,
        "callbacks_ms": (returned - marks["perf"]) * 1000,
        "entry_ms": (written.timestamp() - marks["wall"]) * 1000,
        "visible_ms": (seen - marks["perf"]) * 1000,
        "polls": polls,
        "version": official.version,
    }


# ---------------------------------------------------------------- profile


def profile(paths: dict[str, str], n: int, big: dict) -> str:
    """cProfile + SQL of each target through the whole WSGI stack, the page request taken apart, and the
    pieces of a publication."""
    from django.db import connection
    from django.test import Client as DjangoClient
    from django.test import RequestFactory
    from django.utils import timezone

    from audit.canonical import canonical_bytes
    from ballots import pages, versions
    from ballots.models import Publication, Round
    from ballots.services import publish

    out = io.StringIO()
    client = DjangoClient(HTTP_HOST="127.0.0.1")
    statements: list[tuple[str, float]] = []

    def record_sql(execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((sql, time.perf_counter() - t))

    def fetch(target: dict) -> tuple[bytes, str]:
        extra = {"HTTP_IF_NONE_MATCH": target["etag"]} if target["status"] == 304 else {}
        response = client.get(target["path"], **extra)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        response.close()
        assert response.status_code == target["status"], (target["name"], response.status_code)
        return body, response.get("ETag", "")

    # The round is official by now: its current version's ETag, for the 304s.
    targets = []
    for name, path in paths.items():
        _, etag = fetch({"name": name, "path": path, "status": 200})
        targets.append({"name": name, "path": path, "status": 200})
        if etag and not path.startswith("/static/"):
            targets.append({"name": f"{name} 304", "path": path, "status": 304, "etag": etag})

    summary = []
    for target in targets:
        for _ in range(5):
            fetch(target)  # warm: imports, the static file index, the connection
        statements.clear()
        with connection.execute_wrapper(record_sql):
            prof = cProfile.Profile()
            t = time.perf_counter()
            prof.enable()
            for _ in range(n):
                fetch(target)
            prof.disable()
            wall = time.perf_counter() - t
        sql = list(statements)
        # The same again without the profiler, for the plain per-request cost.
        t = time.perf_counter()
        for _ in range(n):
            fetch(target)
        plain = time.perf_counter() - t
        summary.append(
            f"| {target['name']} | {plain / n * 1000:.2f} | {wall / n * 1000:.2f} | "
            f"{len(sql) / n:.1f} | {sum(d for _, d in sql) / n * 1000:.2f} |"
        )
        if target["name"] in ("page", "static (ceiling)", "page 304"):
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(30)
            out.write(f"\n### {target['name']}: cumulative, top 30 ({n} requests under cProfile)\n")
            out.write("\n".join(s.getvalue().splitlines()[4:]) + "\n")
            shapes: dict[str, list[float]] = {}
            for q, d in sql:
                shapes.setdefault(re.sub(r"%s|\b\d+\b", "?", " ".join(q.split()))[:200], []).append(d)
            for key, times in shapes.items():
                out.write(f"  SQL {len(times) / n:.2f}/request, mean {statistics.mean(times) * 1000:.3f} ms: {key}\n")
    head = [
        f"\n### Per request, in process, one client, Django's test client ({n} requests each)\n",
        "| target | ms/request | ms/request under cProfile | SQL statements/request | SQL ms/request |",
        "|---|---:|---:|---:|---:|",
    ]

    # The page request taken apart: the whole stack, the view alone, its query, the same query raw.
    slug = big["slug"]
    page_path = paths["page"]
    factory = RequestFactory(HTTP_HOST="127.0.0.1")
    latest = Publication.objects.filter(round_id=big["round_id"]).order_by("-version").first()
    etag = f'"{latest.sha256}.html"'
    orm_sql, orm_params = (
        Publication.objects.filter(round__election__slug=slug, round__number=1)
        .only("version", "sha256", "published_at", "page")
        .order_by("-version")[:1]
        .query.sql_with_params()
    )

    def raw(sql_text: str, params) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql_text, params)
            cursor.fetchall()

    def health_check() -> None:
        connection.connection.execute("SELECT 1")  # what CONN_HEALTH_CHECKS runs at a request's first query

    def view(etag_header: str | None) -> None:
        extra = {"HTTP_IF_NONE_MATCH": etag_header} if etag_header else {}
        response = pages.round_page(factory.get(page_path, **extra), slug, 1)
        assert response.status_code == (304 if etag_header else 200)

    cases = {
        "whole stack (test client: middleware, URL resolver, view)": lambda: fetch(targets[1]),
        "the view alone (RequestFactory → pages.round_page)": lambda: view(None),
        "the view alone, If-None-Match → 304": lambda: view(etag),
        "the first design's SQL (whole version, body included), raw": lambda: raw(orm_sql, orm_params),
        "versions.latest_version(): the cache when shared, else one SQL query": lambda: versions.latest_version(slug, 1),
        "versions._latest_in_database(): the SQL query alone": lambda: versions._latest_in_database(slug, 1),
        "SELECT 1 on the raw connection (a health check's round trip)": health_check,
    }
    timings: dict[str, list[float]] = {k: [] for k in cases}
    connection.ensure_connection()
    for _ in range(3):  # interleaved batches; the median of three
        for key, fn in cases.items():
            t = time.perf_counter()
            for _ in range(n):
                fn()
            timings[key].append((time.perf_counter() - t) / n)
    apart = [
        f"\n### The page request taken apart, in process ({n} calls each, median of 3 interleaved batches)\n",
        "| case | ms/call |",
        "|---|---:|",
    ] + [f"| {k} | {statistics.median(v) * 1000:.3f} |" for k, v in timings.items()]

    round_ = Round.objects.select_related("election", "certified_tally").get(pk=big["round_id"])
    tally = round_.certified_tally
    pieces: dict[str, list[float]] = {}
    now = timezone.now().replace(microsecond=0)
    for _ in range(3):
        t = time.perf_counter()
        document = publish.results_document(tally, status="official", version=99, published_at=now)
        pieces.setdefault("results_document (canonical bytes, SHA-256, Ed25519)", []).append(time.perf_counter() - t)
        t = time.perf_counter()
        canonical_bytes(document)
        pieces.setdefault("canonical_bytes of the signed document (stored)", []).append(time.perf_counter() - t)
        t = time.perf_counter()
        publish.results_csv(document)
        pieces.setdefault("results_csv", []).append(time.perf_counter() - t)
        t = time.perf_counter()
        publish.render_page(round_, document)
        pieces.setdefault("render_page (round_context + template)", []).append(time.perf_counter() - t)
    tail = [
        f"\n### The pieces of an official publication of {big['slug']} ({big['stations']} stations), in process, "
        "median of 3\n",
        "| piece | ms |",
        "|---|---:|",
    ] + [f"| {k} | {statistics.median(v) * 1000:.1f} |" for k, v in pieces.items()]
    return "\n".join(head + summary + apart) + "\n" + out.getvalue() + "\n".join(tail) + "\n"


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="1,4", help="concurrent client threads; a comma list runs each level")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each timed target")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up per target")
    parser.add_argument("--stations", type=int, default=1000, help="stations of each big election")
    parser.add_argument("--elections", type=int, default=3, help="big elections (the first is under load)")
    parser.add_argument("--small-elections", type=int, default=5)
    parser.add_argument("--small-stations", type=int, default=10)
    parser.add_argument("--voters", type=int, default=3, help="votes cast at each station")
    parser.add_argument("--roster", type=int, default=5000, help="members in the roster")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (sync worker class)")
    parser.add_argument("--poll-ms", type=float, default=10.0, help="interval of the certification poll")
    parser.add_argument("--port", type=int, default=54339, help="PostgreSQL port (loopback)")
    parser.add_argument("--http-port", type=int, default=8767, help="gunicorn port (loopback)")
    parser.add_argument("--redis-port", type=int, default=63813)
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--profile-requests", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    levels = [int(c) for c in args.clients.split(",")]

    load_start = loadavg()
    info = announce("Result pages benchmark")

    folder = Path(tempfile.mkdtemp(prefix="kalpi-pages-"))
    os.chmod(folder, 0o755)
    pg = Postgres(folder, args.port)
    procs: list[subprocess.Popen] = []
    logs = []
    try:
        pg.start()
        info["postgres"] = pg.version()
        print(f"{info['postgres']}: throwaway cluster on 127.0.0.1:{args.port}, shared_buffers=256MB, fsync on")
        sh(str(pg.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(args.port), "-U", "bench", "kalpi_pages")
        static_root, extra = folder / "static", folder / "static-extra"
        (extra / "bench").mkdir(parents=True)
        (folder / "kalpi_pages_bench_settings.py").write_text(
            SETTINGS_MODULE.format(static_root=str(static_root), extra=str(extra))
        )
        env = {
            "DATABASE_URL": f"postgres://bench@127.0.0.1:{args.port}/kalpi_pages",
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{args.redis_port}/0",
            "REDIS_URL": f"redis://127.0.0.1:{args.redis_port}/1",
            "SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
            "ALLOWED_HOSTS": "127.0.0.1",
            "DEBUG": "false",
            "DJANGO_SETTINGS_MODULE": "kalpi_pages_bench_settings",
            "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)]),
            "LOG_LEVEL": "WARNING",
            "MEDIA_ROOT": str(folder / "media"),
        }
        env["KALPI_SIGNING_KEY"] = signing_key(env)
        full_env = {**os.environ, **env}
        redis_log = open(folder / "redis.log", "w")  # noqa: SIM115
        logs.append(redis_log)
        procs.append(
            subprocess.Popen(
                ["redis-server", "--port", str(args.redis_port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no"],
                stdout=redis_log, stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=full_env, check=True)
        celery = []
        for name, queue_args in (("celery", ["-Q", "celery"]), ("audit", ["-Q", "audit", "--concurrency", "1"])):
            log = open(folder / f"celery-{name}.log", "w")  # noqa: SIM115
            logs.append(log)
            celery.append(
                subprocess.Popen(
                    [str(Path(PYTHON).parent / "celery"), "-A", "config", "worker", *queue_args, "-n",
                     f"{name}@kalpi-pages-bench", "--loglevel", "WARNING"],
                    cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        procs += celery
        print(
            f"Redis on 127.0.0.1:{args.redis_port} (broker db 0, cache db 1); Celery workers: -Q celery "
            "(default concurrency), -Q audit --concurrency 1; no beat"
        )

        django_setup(env, folder)
        from ballots.models import Publication
        from ballots.services.setup import add_official
        from members.fake_roster import roster_csv_bytes
        from members.services import import_roster

        t = time.perf_counter()
        report = import_roster(stream=io.BytesIO(roster_csv_bytes(args.roster)), actor="bench")
        assert report.ok, report.summary()
        committee = ["committee-a", "committee-b"]
        for username in committee:
            add_official(username=username, role="committee", password=uuid.uuid4().hex, actor="bench")
        print(f"setup: roster of {args.roster} members ({time.perf_counter() - t:.1f} s), committee {committee}")
        rounds = []
        specs = [(f"pages-big-{i + 1}", args.stations) for i in range(args.elections)]
        specs += [(f"pages-small-{i + 1}", args.small_stations) for i in range(args.small_elections)]
        for slug, stations in specs:
            t = time.perf_counter()
            ctx = build_election(slug, stations, args.voters, committee)
            rounds.append(ctx)
            print(
                f"setup: {slug}: {stations} stations, electorate {ctx['electorate']}, {ctx['votes']} votes, "
                f"closed, tallied, provisional published ({time.perf_counter() - t:.1f} s: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in ctx["timings"].items()) + f"); load average {loadavg()}"
            )  # fmt: skip
        drain = wait_audit_drained()
        print(f"audit queue drained {drain:.1f} s after the setup")
        big = rounds[0]
        provisional = Publication.objects.filter(round_id=big["round_id"]).order_by("-version").first()
        page_bytes = provisional.page.encode()
        (extra / PAGE_COPY).write_bytes(page_bytes)

        t = time.perf_counter()
        subprocess.run(
            [PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=REPO, env=full_env, check=True
        )
        files = sum(1 for p in static_root.rglob("*") if p.is_file())
        print(f"collectstatic (DEBUG off) into the temporary folder: {files} files, {time.perf_counter() - t:.1f} s")

        gunicorn = subprocess.Popen(
            [str(Path(PYTHON).parent / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{args.http_port}",
             "--workers", str(args.workers), "--worker-class", "sync", "--error-logfile",
             str(folder / "gunicorn.log"), "--log-level", "warning"],
            cwd=REPO, env=full_env,
        )  # fmt: skip
        procs.append(gunicorn)
        wait_port("127.0.0.1", args.http_port, "/healthz")
        time.sleep(1)
        workers = children_of(gunicorn.pid)
        print(f"server: gunicorn {args.workers} sync workers on 127.0.0.1:{args.http_port}, DEBUG off, "
              "CONN_MAX_AGE default")  # fmt: skip

        # The targets, each checked once: its status, its size, and the ETag for its 304.
        slug = big["slug"]
        paths = {
            "static (ceiling)": STATIC_PATH,
            "page": f"/results/{slug}/rounds/1/",
            "results.json": f"/results/{slug}/rounds/1/results.json",
            "API results": f"/api/v1/elections/{slug}/rounds/1/results/",
            "page bytes as a static file": "/static/" + PAGE_COPY,
        }
        probe = Getter(args.http_port)
        targets = []
        sizes = {}
        for name, path in paths.items():
            code, body, headers, _ = probe.get(path, {})
            if code != 200:
                raise SystemExit(f"{path}: {code} {body[:300]!r}")
            sizes[name] = (len(body), len(gzip.compress(body)))
            targets.append({"name": name, "path": path, "headers": {}, "status": 200, "size": len(body)})
            if name in ("page", "results.json", "API results"):
                code, body304, _, _ = probe.get(path, {"If-None-Match": headers["etag"]})
                if code != 304:
                    raise SystemExit(f"{path} with If-None-Match {headers['etag']}: {code}")
                targets.append({"name": f"{name} 304", "path": path, "headers": {"If-None-Match": headers["etag"]},
                                "status": 304, "size": len(body304)})  # fmt: skip
        probe.close()
        assert sizes["page"][0] == len(page_bytes) == sizes["page bytes as a static file"][0]

        def pg_pids() -> list[int]:
            return [pg.postmaster_pid(), *children_of(pg.postmaster_pid())]

        def measured(clients: int, target: dict) -> Tally:
            cpu0 = cpu_seconds(workers), cpu_seconds(pg_pids())
            tally = get_phase(args.http_port, clients, args.seconds, target)
            cpu1 = cpu_seconds(workers), cpu_seconds(pg_pids())
            n = max(1, len(tally.latencies.get("get", [])))
            tally.cpu = {  # type: ignore[attr-defined]
                "gunicorn": (cpu1[0] - cpu0[0]) / n,
                "postgres": (cpu1[1] - cpu0[1]) / n,
                "client": tally.client_cpu / n,  # type: ignore[attr-defined]
            }
            tally.load = loadavg()  # type: ignore[attr-defined]
            return tally

        for target in targets:
            get_phase(args.http_port, max(levels), args.warmup, target)
        print(f"warm-up done ({args.warmup:.1f} s per target); load average {loadavg()}")

        results: dict[int, list[tuple[str, dict, Tally]]] = {}
        ceiling = targets[0]
        for clients in levels:
            runs = []
            order = [("static (ceiling), before", ceiling), *((t["name"], t) for t in targets[1:]),
                     ("static (ceiling), after", ceiling)]  # fmt: skip
            for label, target in order:
                tally = measured(clients, target)
                n = len(tally.latencies.get("get", []))
                print(
                    f"{clients} clients, {label}: {n / tally.end:,.0f} req/s, p50 {ms(pct(tally.latencies.get('get', []), 50))} "
                    f"ms, p99 {ms(pct(tally.latencies.get('get', []), 99))} ms, {len(tally.errors)} errors; "
                    f"load average {tally.load}"  # type: ignore[attr-defined]
                )
                runs.append((label, target, tally))
            results[clients] = runs
        load_after_http = loadavg()

        # ---------------------------------------------------------------- certification
        certifications = []
        for ctx in rounds:
            result = certify(ctx, committee, args.http_port, args.poll_ms / 1000)
            certifications.append(result)
            print(
                f"certified {result['slug']} ({result['stations']} stations): official over HTTP "
                f"{result['visible_ms']:.0f} ms after the commit ({result['polls']} polls); load average {loadavg()}"
            )
        load_end = loadavg()

        # ---------------------------------------------------------------- report
        lines = [
            "",
            f"Run: {info['date']}; {info['cpu']}, {info['cores']} cores, {info['memory']}; {info['postgres']}; "
            f"Python {info['python']}.",
            f"gunicorn {args.workers} sync workers; {args.seconds:.0f} s per target; round under load: {slug} "
            f"({args.stations} stations, {big['votes']} ballots). Load average: start {load_start}, after the HTTP "
            f"load {load_after_http}, end {load_end}.",
            "",
            "Response sizes (bytes, as served / gzip -6 for scale; nothing here is served compressed to this client): "
            + "; ".join(f"{k} {v[0]:,} / {v[1]:,}" for k, v in sizes.items()),
        ]
        goal_rows = []
        for clients, runs in results.items():
            rates = {label: len(t.latencies.get("get", [])) / t.end for label, _, t in runs}
            ceiling_rate = statistics.mean([rates["static (ceiling), before"], rates["static (ceiling), after"]])
            lines += [
                "",
                f"{clients} client threads:",
                "",
                "| target | requests | req/s | vs static ceiling | p50 (ms) | p99 (ms) | errors | CPU ms/request: "
                "gunicorn, PostgreSQL, client | load avg after |",
                "|---|---:|---:|---:|---:|---:|---:|---|---|",
            ]
            for label, _, t in runs:
                lat = t.latencies.get("get", [])
                cpu = t.cpu  # type: ignore[attr-defined]
                lines.append(
                    f"| {label} | {len(lat):,} | {rates[label]:,.0f} | {rates[label] / ceiling_rate:.0%} | "
                    f"{ms(pct(lat, 50))} | {ms(pct(lat, 99))} | {len(t.errors)} | {cpu['gunicorn'] * 1000:.2f}, "
                    f"{cpu['postgres'] * 1000:.2f}, {cpu['client'] * 1000:.2f} | {t.load} |"  # type: ignore[attr-defined]
                )
            for label, _, t in runs:
                for e in t.errors[:3]:
                    lines.append(f"error ({clients} clients, {label}): {e}")
            for label, _, t in runs:
                if label in ("page", "results.json", "API results", "page 304", "results.json 304", "API results 304"):
                    ratio = rates[label] / ceiling_rate
                    p99 = pct(t.latencies.get("get", []), 99)
                    met = ratio >= 0.5 and p99 < 0.050
                    goal_rows.append(
                        f"| {label}, {clients} clients: ≥ 50% of the static ceiling, p99 < 50 ms | "
                        f"{rates[label]:,.0f} / {ceiling_rate:,.0f} req/s = {ratio:.0%}, p99 {ms(p99)} ms | "
                        f"{'yes' if met else 'no'} |"
                    )
        lines += [
            "",
            "Certification → official results visible over HTTP (results.json polled every "
            f"{args.poll_ms:.0f} ms with the provisional ETag):",
            "",
            "| round | stations | certify_round (2nd approval, to commit) ms | commit → publication written "
            "(its audit entry's time) ms | commit → official over HTTP ms | polls |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for c in certifications:
            lines.append(
                f"| {c['slug']} | {c['stations']:,} | {c['certify_ms']:.0f} | {c['entry_ms']:.0f} | "
                f"{c['visible_ms']:.0f} | {c['polls']} |"
            )
        worst_big = max((c["visible_ms"] for c in certifications if c["stations"] == args.stations), default=0.0)
        worst = max(c["visible_ms"] for c in certifications)
        goal_rows.append(
            f"| official results within 2 s of certification | max {worst:,.0f} ms (max of the "
            f"{args.stations}-station rounds {worst_big:,.0f} ms) | {'yes' if worst <= 2000 else 'no'} |"
        )
        lines += ["", "| Goal | Measured | Met |", "|---|---|---|", *goal_rows]
        print("\n".join(lines))

        if not args.no_profile:
            print("\n## Profile (in-process, after the load)")
            print(profile(paths, args.profile_requests, big))
        print(f"load average at the end: {loadavg()}")
        errors = sum(len(t.errors) for runs in results.values() for _, _, t in runs)
        return 0 if errors == 0 else 1
    finally:
        stop_all(procs, logs, pg, folder, args.keep)


if __name__ == "__main__":
    sys.exit(main())
