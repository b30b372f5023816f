"""Tally benchmark: counting a round of 1,000,000 ballots over 1,000 stations, against raw SQL GROUP BY.

Run from the repository root with the project's virtualenv:

    .venv/bin/python bench/tally.py                          # defaults below, about 10 minutes on 2 cores
    .venv/bin/python bench/tally.py --ballots 50000 --stations 50 --rounds 1 --no-profile   # a quick trial

Kalpi counts a round in two steps, and both are measured:

- close (`ballots.services.setup.close_round`): every open station is closed; an electronic station's
  ballots are read, counted per choice and hashed into a Merkle root (its seal, with audit entries).
- tally (`ballots.services.count.tally_round`): sums the stations' seals into the results document,
  hashes it and stores it (the first call after the close); a second call with nothing new returns
  the stored tally. `build_document` + SHA-256 (the tally's computation without the write) is also
  timed on its own, since it can be repeated.

The reference, in the same run, on the same table and the same round: the raw SQL
`SELECT station_id, choice, count(*) FROM ballots_ballot WHERE round_id = %s GROUP BY station_id, choice`
and the round-level `... GROUP BY choice`, through the same Django connection (psycopg), rows fetched.
Also, for scale, one query fetching every (station_id, id, choice) of the round: what the close reads.

Setup (not timed): a throwaway PostgreSQL cluster (initdb --auth=trust in a temporary folder, 127.0.0.1
only, port 54337, run as `postgres` when started as root; binaries from `pg_config --bindir` or
PG_BIN), `manage.py migrate`, a fresh signing key (`manage.py audit_keygen`), no Celery broker (tasks
run eagerly in this process, so the audit integration and checkpoint the close and the tally ask for
run inside the timed call). In this process (django.setup()): a roster through
members.services.import_roster (members.fake_roster; about 90% of it is eligible), an election with
--stations electronic stations serving every branch and 4 candidates, the electorate frozen through
freeze_electorate. Then for each round: the round opened through open_round, and the FIXTURE BUILT IN
BULK BY SQL, not through Kalpi's code: --ballots check-ins (distinct electors, spread evenly over the
stations) and one ballot per check-in (gen_random_uuid(), a random choice among the 4 candidates,
blank and invalid) with INSERT ... SELECT, each station's StationRound counters set by one UPDATE,
then VACUUM ANALYZE and CHECKPOINT. No audit entries are written for these check-ins and ballots.

A round closes once, so each timed close is a different round of the same election (--rounds); with
--profile, one more round is closed and tallied under cProfile (not timed with the others).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import io
import math
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

# The sibling benchmark's helper (this file runs from bench/, as ingest.py does).
from ingest import signing_key

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CANDIDATES = ["yachimovich", "peretz", "herzog", "mitzna"]
GOAL_SECONDS = 2.0
GOAL_RATIO = 3.0


def sh(*args: str, **kwargs) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs).stdout


def machine() -> dict[str, str]:
    cpu, mem = "unknown", "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
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


def uptime() -> str:
    """The load average part of `uptime` (its clock follows the TZ Django sets, so it is left out)."""
    out = sh("uptime").strip()
    return out[out.index("load average"):] if "load average" in out else out


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
        with (self.data / "postgresql.conf").open("a") as f:
            f.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = '{self.folder}'\n"
                "shared_buffers = 512MB\nmax_wal_size = 4GB\n"
            )
        self.started = True  # from here on, stop() is attempted whatever happens
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "postgres.log"), "-w", "start")

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.started = False

    def version(self) -> str:
        return self._run("postgres", "--version").strip()


# ---------------------------------------------------------------- inside Django


class SqlTimer:
    """Counts and times every statement Django sends (execute_wrapper): the ORM/database side of a call."""

    def __init__(self) -> None:
        self.count, self.seconds = 0, 0.0

    def __call__(self, execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - t
            self.count += 1


def timed(fn, *args, **kwargs):
    from django.db import connection

    sql = SqlTimer()
    with connection.execute_wrapper(sql):
        t = time.perf_counter()
        result = fn(*args, **kwargs)
        wall = time.perf_counter() - t
    return result, wall, sql


def build_election(args) -> tuple:
    from ballots.models import Elector
    from ballots.services import setup
    from members.fake_roster import roster_csv_bytes
    from members.services import import_roster

    t = time.perf_counter()
    report = import_roster(stream=io.BytesIO(roster_csv_bytes(args.roster)), actor="bench")
    assert report.ok, report.summary()
    print(f"  roster import, {args.roster:,} members: {time.perf_counter() - t:.1f} s", flush=True)
    rounds_in_file = args.rounds + (1 if args.profile else 0)
    data = {
        "slug": "tally-bench",
        "name": "Tally benchmark",
        "roster_cutoff": "2011-08-31",
        "require_dues": False,
        "candidates": [{"code": c, "name": c.title()} for c in CANDIDATES],
        "stations": [
            {"code": f"st-{i:04d}", "name": f"Station {i}", "mode": "electronic", "branches": []}
            for i in range(args.stations)
        ],
        "rule": {"method": "two_round", "threshold_percent": "40", "threshold_base": "valid",
                 "quorum_percent": None, "advance": 2, "tie_break": "lot"},
        "rounds": [
            {"number": n, "opens_at": f"2011-09-{10 + n:02d}T07:00:00+03:00",
             "closes_at": f"2011-09-{10 + n:02d}T22:00:00+03:00"}
            for n in range(1, rounds_in_file + 1)
        ],
        "runoff_after_days": 7,
        "certifications_required": 2,
    }  # fmt: skip
    t = time.perf_counter()
    election, _ = setup.load_election(data=data, actor="bench")
    electorate = setup.freeze_electorate(election=election, actor="bench")
    print(f"  election + freeze_electorate ({electorate:,} electors): {time.perf_counter() - t:.1f} s", flush=True)
    if electorate < args.ballots:
        raise SystemExit(f"electorate {electorate:,} < --ballots {args.ballots:,}: raise --roster")
    assert Elector.objects.filter(election=election).count() == electorate
    return election, electorate


def fixture_round(args, election, number: int):
    """Open round `number` through Kalpi, then write its check-ins, ballots and counters in bulk by SQL."""
    from django.db import connection, transaction

    from ballots.models import Round
    from ballots.services import setup

    t = time.perf_counter()
    round_ = setup.open_round(election=election, number=number, actor="bench")
    choice_sql = (
        "CASE WHEN x < 0.34 THEN 'yachimovich' WHEN x < 0.60 THEN 'peretz' WHEN x < 0.80 THEN 'herzog' "
        "WHEN x < 0.95 THEN 'mitzna' WHEN x < 0.98 THEN 'blank' ELSE 'invalid' END"
    )
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            """
            INSERT INTO ballots_checkin (round_id, member_id, station_id, created_at)
            SELECT %s, e.member_id, s.id, now()
            FROM (SELECT member_id, row_number() OVER (ORDER BY member_id) - 1 AS k
                  FROM ballots_elector WHERE election_id = %s AND removed_at IS NULL
                  ORDER BY member_id LIMIT %s) e
            JOIN ballots_station s ON s.election_id = %s AND s.position = e.k %% %s
            """,
            [round_.id, election.id, args.ballots, election.id, args.stations],
        )
        cur.execute(
            f"""
            INSERT INTO ballots_ballot (id, round_id, station_id, choice)
            SELECT gen_random_uuid(), round_id, station_id, {choice_sql}
            FROM (SELECT round_id, station_id, random() AS x FROM ballots_checkin WHERE round_id = %s) c
            """,
            [round_.id],
        )
        cur.execute(
            """
            UPDATE ballots_stationround sr SET checkins = c.n, ballots = c.n
            FROM (SELECT station_id, count(*) AS n FROM ballots_checkin WHERE round_id = %s GROUP BY station_id) c
            WHERE sr.round_id = %s AND sr.station_id = c.station_id
            """,
            [round_.id, round_.id],
        )
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE ballots_ballot")
        cur.execute("VACUUM ANALYZE ballots_checkin")
        cur.execute("VACUUM ANALYZE ballots_stationround")
        cur.execute("CHECKPOINT")
        cur.execute("SELECT count(*) FROM ballots_ballot WHERE round_id = %s", [round_.id])
        assert cur.fetchone()[0] == args.ballots
    print(f"  round {number}: opened, fixture built in bulk: {time.perf_counter() - t:.1f} s", flush=True)
    return Round.objects.get(pk=round_.pk)


def reference(round_id: int, repeat: int) -> dict[str, list[float]]:
    from django.db import connection

    queries = {
        "GROUP BY station_id, choice": (
            "SELECT station_id, choice, count(*) FROM ballots_ballot WHERE round_id = %s GROUP BY station_id, choice"
        ),
        "GROUP BY choice": "SELECT choice, count(*) FROM ballots_ballot WHERE round_id = %s GROUP BY choice",
        "fetch every (station_id, id, choice)": "SELECT station_id, id, choice FROM ballots_ballot WHERE round_id = %s",
    }
    out: dict[str, list[float]] = {}
    with connection.cursor() as cur:
        for name, sql in queries.items():
            runs = []
            for _ in range(repeat if not name.startswith("fetch") else max(1, repeat // 2)):
                t = time.perf_counter()
                cur.execute(sql, [round_id])
                cur.fetchall()
                runs.append(time.perf_counter() - t)
            out[name] = runs
    return out


def raw_choice_counts(round_id: int) -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT choice, count(*) FROM ballots_ballot WHERE round_id = %s GROUP BY choice", [round_id])
        return dict(cur.fetchall())


def measure_round(args, election, round_) -> dict:
    from audit.canonical import canonical_bytes
    from ballots.services import count, setup

    r: dict = {"number": round_.number}
    r["ref_before"] = reference(round_.id, args.repeat)
    _, r["close"], r["close_sql"] = timed(setup.close_round, election=election, number=round_.number, actor="bench")
    tally, r["tally_first"], r["tally_first_sql"] = timed(
        count.tally_round, election=election, number=round_.number, actor="bench"
    )
    r["tally_again"], r["build"] = [], []
    for _ in range(args.repeat):
        again, seconds, _ = timed(count.tally_round, election=election, number=round_.number, actor="bench")
        assert again.pk == tally.pk, "a second tally with nothing new must return the stored one"
        r["tally_again"].append(seconds)
    round_.refresh_from_db()
    for _ in range(args.repeat):
        t = time.perf_counter()
        digest = hashlib.sha256(canonical_bytes(count.build_document(round_))).hexdigest()
        r["build"].append(time.perf_counter() - t)
        assert digest == tally.sha256
    r["ref_after"] = reference(round_.id, args.repeat)
    raw = raw_choice_counts(round_.id)
    doc = tally.document
    got = {c["code"]: c["votes"] for c in doc["candidates"]} | {"blank": doc["blank"], "invalid": doc["invalid"]}
    assert got == raw, f"tally {got} != raw {raw}"
    assert doc["cast"] == args.ballots and doc["stations"] == {"reported": args.stations, "total": args.stations}
    assert tally.complete
    r["decision"] = tally.decision
    return r


def profile_round(args, election, round_) -> str:
    from ballots.services import count, setup

    out = io.StringIO()
    for label, fn, kw in [
        ("close_round", setup.close_round, {}),
        ("tally_round (first)", count.tally_round, {}),
    ]:
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        fn(election=election, number=round_.number, actor="bench", **kw)
        prof.disable()
        wall = time.perf_counter() - t
        stats = pstats.Stats(prof, stream=out)
        out.write(f"\n### cProfile: {label}, round {round_.number}: {wall:.2f} s under the profiler\n")
        stats.sort_stats("cumulative").print_stats(28)
        stats.sort_stats("tottime").print_stats(15)
    text = out.getvalue().replace(str(REPO) + "/", "").replace(str(Path(sys.prefix)) + "/", ".venv/")
    return text.replace(str(Path(sys.base_prefix)) + "/", "")


def med(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:,.1f} ms"


def report(args, info: dict, rounds: list[dict]) -> str:
    ref_sc = [x for r in rounds for x in r["ref_before"]["GROUP BY station_id, choice"] + r["ref_after"]["GROUP BY station_id, choice"]]
    ref_c = [x for r in rounds for x in r["ref_before"]["GROUP BY choice"] + r["ref_after"]["GROUP BY choice"]]
    ref_fetch = [x for r in rounds for x in r["ref_before"]["fetch every (station_id, id, choice)"] + r["ref_after"]["fetch every (station_id, id, choice)"]]
    ref = med(ref_sc)
    close = [r["close"] for r in rounds]
    first = [r["tally_first"] for r in rounds]
    again = [x for r in rounds for x in r["tally_again"]]
    build = [x for r in rounds for x in r["build"]]
    lines = [
        "| operation | runs | median | min | max | ÷ GROUP BY station_id, choice |",
        "|---|---:|---:|---:|---:|---:|",
    ]

    def row(name, values):
        lines.append(
            f"| {name} | {len(values)} | {ms(med(values))} | {ms(min(values))} | {ms(max(values))} | "
            f"{med(values) / ref:.1f}× |"
        )

    row(f"reference: raw `GROUP BY station_id, choice` ({args.stations:,} × 6 rows)", ref_sc)
    row("reference: raw `GROUP BY choice` (6 rows)", ref_c)
    row("for scale: raw fetch of every (station_id, id, choice) of the round", ref_fetch)
    row(f"Kalpi `close_round` (reads and counts the ballots, seals {args.stations:,} stations)", close)
    row("Kalpi `tally_round`, first after the close (sums seals, writes the tally)", first)
    row("Kalpi `build_document` + SHA-256 (the tally's computation, no write)", build)
    row("Kalpi `tally_round` again, nothing new (returns the stored tally)", again)
    lines.append("")
    for r in rounds:
        lines.append(
            f"- Round {r['number']}: close_round {ms(r['close'])}, of which {r['close_sql'].count:,} SQL statements "
            f"took {ms(r['close_sql'].seconds)} (time inside the database driver calls); first tally_round "
            f"{ms(r['tally_first'])} ({r['tally_first_sql'].count} statements, {ms(r['tally_first_sql'].seconds)}); "
            f"decision {r['decision']!r}."
        )
    lines.append("")
    close_m, tally_m = med(close), med(first)
    goals = [
        ("tally_round (first) under 2 s", tally_m < GOAL_SECONDS, ms(tally_m)),
        (f"tally_round (first) within {GOAL_RATIO:.0f}× the raw GROUP BY", tally_m / ref <= GOAL_RATIO, f"{tally_m / ref:.1f}×"),
        ("close_round + tally_round under 2 s", close_m + tally_m < GOAL_SECONDS, ms(close_m + tally_m)),
        (f"close_round + tally_round within {GOAL_RATIO:.0f}× the raw GROUP BY", (close_m + tally_m) / ref <= GOAL_RATIO,
         f"{(close_m + tally_m) / ref:.1f}×"),
    ]  # fmt: skip
    lines += ["| goal | measured | met |", "|---|---:|:---:|"]
    lines += [f"| {name} | {value} | {'yes' if ok else 'no'} |" for name, ok, value in goals]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--ballots", type=int, default=1_000_000)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--roster", type=int, default=0, help="members in the roster (default: ballots / 0.88)")
    parser.add_argument("--rounds", type=int, default=2, help="timed closes, one round each")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each repeatable measurement per round")
    parser.add_argument("--port", type=int, default=54337)
    parser.add_argument("--no-profile", dest="profile", action="store_false")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    args.roster = args.roster or math.ceil(args.ballots / 0.88)

    info = machine()
    info["uptime_start"] = uptime()
    folder = Path(tempfile.mkdtemp(prefix="kalpi-tally-"))
    os.chmod(folder, 0o755)
    pg = Postgres(folder, args.port)
    try:
        pg.start()
        info["postgres"] = pg.version()
        print(f"{info['date']} | {info['cpu']} | {info['cores']} cores | {info['memory']} | Python {info['python']}")
        print(f"{info['postgres']}: throwaway cluster on 127.0.0.1:{args.port}, shared_buffers=512MB")
        print(f"uptime at start: {info['uptime_start']}", flush=True)
        sh(str(pg.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(args.port), "-U", "bench", "kalpi_tally")
        env = {
            "DATABASE_URL": f"postgres://bench@127.0.0.1:{args.port}/kalpi_tally",
            "SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "LOG_LEVEL": "WARNING",
            "MEDIA_ROOT": str(folder / "media"),
        }
        for name in ("CELERY_BROKER_URL", "REDIS_URL"):
            os.environ.pop(name, None)
        env["KALPI_SIGNING_KEY"] = signing_key(env)
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=REPO, env={**os.environ, **env}, check=True)
        os.environ.update(env)
        sys.path.insert(0, str(REPO))
        import django

        django.setup()
        print("setup (not timed):", flush=True)
        election, _ = build_election(args)
        rounds = []
        for number in range(1, args.rounds + 1):
            round_ = fixture_round(args, election, number)
            print(f"  uptime before round {number}: {uptime()}", flush=True)
            r = measure_round(args, election, round_)
            print(
                f"round {number}: close_round {ms(r['close'])}, tally_round {ms(r['tally_first'])}, again "
                f"{ms(med(r['tally_again']))}, build_document {ms(med(r['build']))}, raw GROUP BY station,choice "
                f"{ms(med(r['ref_before']['GROUP BY station_id, choice'] + r['ref_after']['GROUP BY station_id, choice']))}",
                flush=True,
            )
            rounds.append(r)
        info["uptime_end"] = uptime()
        table = report(args, info, rounds)
        print("\n" + table + "\n")
        print(f"uptime at end: {info['uptime_end']}", flush=True)
        if args.profile:
            round_ = fixture_round(args, election, args.rounds + 1)
            print(profile_round(args, election, round_))
    finally:
        pg.stop()
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
