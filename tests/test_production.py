"""Production mode end to end: real gunicorn, Celery workers and beat, Redis and PostgreSQL.

A small election runs through the station API over HTTP; the committee certifies it; the official
result appears on the public page and in the JSON, published by the worker (this process runs no
task: nothing here is eager); `verify_audit` passes. A worker process killed in the middle of the
official publication leaves no version, and the retry publishes exactly one.

Runs in the CI's PostgreSQL + Redis run; skipped on the embedded default.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from audit.models import Action, Entry
from ballots.models import Publication
from ballots.services import setup
from ballots.services.count import certify_round, tally_round
from tests.ballots.conftest import HAIFA_MEMBERS
from tests.ballots.test_tally import SLUG, TLV_MEMBERS, committee_member, town_election
from tests.conftest import database_url, is_postgres, wait_for

MAIN = Path(__file__).resolve().parents[1]
JSON = f"/results/{SLUG}/rounds/1/results.json"
PAGE = f"/results/{SLUG}/rounds/1/"

pytestmark = [pytest.mark.real_celery, pytest.mark.django_db(transaction=True)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """The production processes, each logging to a file; stopped whatever happens."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.running: dict[str, subprocess.Popen] = {}
        self.port = free_port()
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "REDIS_URL": settings.REDIS_URL or settings.CELERY_BROKER_URL,
            "SECRET_KEY": settings.SECRET_KEY,
            "DEBUG": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            "KALPI_SIGNING_KEY": settings.KALPI_SIGNING_KEY,
            "KALPI_LOG_ORIGIN": settings.KALPI_LOG_ORIGIN,
            "KALPI_PSEUDONYM_KEY": settings.KALPI_PSEUDONYM_KEY or "",
            "KALPI_CHECKPOINT_INTERVAL": "5",
            "PYTHONUNBUFFERED": "1",  # the logs are read while the processes run
            "CELERY_LOG_LEVEL": "INFO",  # "ready", and beat's "Sending due task"
        }

    def start(self, name: str, *args: str) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=MAIN, env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        self.running[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def stop(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                process.terminate()
        for process in self.running.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()

    def http(self, method: str, path: str, body: dict | None = None, token: str | None = None, headers=None):
        """(status, headers, body bytes) of one request to gunicorn."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                **({"Content-Type": "application/json"} if body is not None else {}),
                **({"Authorization": f"Token {token}"} if token else {}),
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()


@pytest.fixture
def production(tmp_path):
    if not (settings.CELERY_BROKER_URL and is_postgres()):
        pytest.skip("needs PostgreSQL and a Redis broker (the CI's production run)")
    processes = Processes(tmp_path)
    worker_flags = ["--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
    try:
        processes.start(
            "gunicorn", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{processes.port}", "--workers", "2"
        )
        processes.start("audit-worker", "celery", "-A", "config", "worker", "-Q", "audit", "-c", "1", "-n",
                        "audit@%h", *worker_flags)  # fmt: skip
        processes.start("worker", "celery", "-A", "config", "worker", "-Q", "celery", "-c", "1", "-n",
                        "publish@%h", *worker_flags)  # fmt: skip
        processes.start("beat", "celery", "-A", "config", "beat", "-s", str(tmp_path / "beat-schedule"),
                        "--loglevel", "INFO")  # fmt: skip
        wait_for(lambda: _answers(processes), 30, "gunicorn to answer /healthz")
        wait_for(lambda: "ready" in processes.log("worker"), 30, "the publishing worker")
        wait_for(lambda: "ready" in processes.log("audit-worker"), 30, "the audit worker")
        yield processes
    finally:
        processes.stop()


def _answers(processes: Processes) -> bool:
    try:
        return processes.http("GET", "/healthz")[0] == 200
    except OSError:
        return False


def published(processes: Processes) -> dict | None:
    status, _, body = processes.http("GET", JSON)
    return json.loads(body) if status == 200 else None


def election_day(processes: Processes) -> None:
    """The town election over HTTP: Herzog wins round one outright (11 of 17 valid votes)."""
    election = town_election()
    tokens = {s.code: setup.issue_station_token(station=s, actor="moshe")[1] for s in election.election.stations.all()}
    tel_aviv = ["herzog"] * 8 + ["peretz"] * 2 + ["yachimovich"] * 2
    plan = {
        "tlv-01": list(zip(["1001", "1003", *TLV_MEMBERS[:10]], tel_aviv, strict=True)),
        "any-01": [("1002", "herzog")],
    }
    for code, votes in plan.items():
        for member_no, choice in votes:
            status, _, body = processes.http(
                "POST", "/api/v1/station/checkins/", {"member_no": member_no}, tokens[code]
            )
            assert status == 201, body
            ballot = {"id": str(uuid.uuid4()), "choice": choice}
            status, _, body = processes.http("POST", "/api/v1/station/ballots/", ballot, tokens[code])
            assert status == 201, body
        assert processes.http("POST", "/api/v1/station/close/", None, tokens[code])[0] == 200
    for member_no in HAIFA_MEMBERS[:4]:
        assert processes.http("POST", "/api/v1/station/checkins/", {"member_no": member_no}, tokens["hfa-01"])[0] == 201
    assert processes.http("POST", "/api/v1/station/close/", None, tokens["hfa-01"])[0] == 200
    count = {"entry": 1, "counts": {"herzog": 2, "peretz": 1, "yachimovich": 1}, "blank": 0, "invalid": 0, "total": 4}
    for entry in (1, 2):
        status, _, body = processes.http(
            "POST", "/api/v1/station/returns/", {**count, "entry": entry}, tokens["hfa-01"]
        )
        assert status == 201, body
    setup.close_round(election=election.election, number=1, actor="dana")
    return election


def test_an_election_runs_over_http_and_the_worker_publishes_the_official_result(production, small_roster):
    election = election_day(production)
    # Provisional results, published by the worker as the stations reported and the round closed.
    provisional = wait_for(
        lambda: (doc := published(production)) and doc["stations"]["reported"] == 3 and doc, 30, "provisional results"
    )
    assert provisional["status"] == "provisional" and provisional["outcome"]["decision"] == "winner"
    for username in ("dana", "eli"):
        committee_member(username)
        certify_round(election=election.election, number=1, username=username)
    official = wait_for(lambda: (doc := published(production)) and doc["status"] == "official" and doc, 30, "official")
    assert official["outcome"]["winner"] == "herzog"
    assert {c["code"]: (c["votes"], c["percent"]) for c in official["candidates"]} == {
        "herzog": (11, "64.71"), "peretz": (3, "17.65"), "yachimovich": (3, "17.65"),
    }  # fmt: skip
    publication = Publication.objects.get(status="official")
    assert publication.published_by == "kalpi"  # the task's actor: the worker published it, not this process
    status, headers, page = production.http("GET", PAGE)
    assert status == 200 and "Isaac Herzog is elected." in page.decode() and "Official result" in page.decode()
    assert production.http("GET", PAGE, headers={"If-None-Match": headers["ETag"]})[0] == 304
    status, _, api = production.http("GET", f"/api/v1/elections/{SLUG}/rounds/1/results/")
    assert status == 200 and json.loads(api) == official
    # Beat is running: its periodic tasks went out.
    wait_for(lambda: "audit.tasks.integrate_entries" in production.log("beat"), 20, "beat to send a task")
    # Every entry integrated, then the whole log verifies from another process.
    wait_for(lambda: not Entry.objects.filter(leaf__isnull=True).exists(), 30, "integration")
    verify = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"], cwd=MAIN, env=production.env, capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_worker_killed_in_the_middle_of_the_official_publication_leaves_nothing_and_the_retry_publishes_once(
    production, small_roster
):
    election = election_day(production)
    wait_for(lambda: (doc := published(production)) and doc["stations"]["reported"] == 3, 30, "provisional results")
    tally_round(election=election.election, number=1, actor="dana")
    versions_before = Publication.objects.count()
    # Hold the publications table: the worker gets as far as writing the audit entry, then waits on
    # its INSERT of the version — the middle of the publication.
    with psycopg.connect(database_url(), autocommit=False) as blocker:
        blocker.execute("LOCK TABLE ballots_publication IN EXCLUSIVE MODE")
        for username in ("dana", "eli"):
            committee_member(username)
            certify_round(election=election.election, number=1, username=username)
        wait_for(lambda: _inserting_publication(), 30, "the worker to reach the INSERT of the version")
        worker = production.running["worker"]
        children = children_of(worker.pid)
        assert len(children) == 1, children  # the prefork pool's one process, running the task
        os.kill(children[0], signal.SIGKILL)
        wait_for(lambda: "WorkerLostError" in production.log("worker") or "SIGKILL" in production.log("worker"), 20,
                 "the worker to notice")  # fmt: skip
        blocker.rollback()  # the killed transaction is rolled back; the requeued task runs again
    official = wait_for(lambda: (doc := published(production)) and doc["status"] == "official" and doc, 60, "retry")
    assert Publication.objects.filter(status="official").count() == 1
    assert Publication.objects.count() == versions_before + 1
    assert sorted(Publication.objects.values_list("version", flat=True)) == list(range(1, versions_before + 2))
    entries = Entry.objects.filter(action=Action.RESULTS_PUBLISHED, payload__status="official")
    assert [e.payload["sha256"] for e in entries] == [official["sha256"]]


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid`, read from /proc (no procps needed)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _inserting_publication() -> bool:
    with psycopg.connect(database_url(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE '%%INSERT INTO ballots_publication%%'"
        ).fetchone()
    return row[0] > 0
