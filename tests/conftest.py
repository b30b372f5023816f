"""The shared cast of the test suite: officials by role, and a small roster to work on."""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection, connections

from audit import keys, note
from audit.immutability import TRIGGER_MARK
from members.services import import_roster

TESTDATA = Path(__file__).resolve().parent.parent.parent / "shared" / "testdata"

ROSTER_HEADER = "member_no,first_name,last_name,branch,joined_on,status,dues_paid_until,email,phone\n"
# A small roster: Tel Aviv and Haifa, members of every status, one who joined after a 2011 cutoff.
SMALL_ROSTER = ROSTER_HEADER + (
    "1001,Shelly,Yachimovich,tel-aviv,1995-03-01,active,2012-01-01,shelly@example.org,\n"
    "1002,Amir,Peretz,sderot,1990-05-10,active,2011-01-01,,050-1234567\n"
    "1003,Isaac,Herzog,tel-aviv,2001-09-01,active,,,\n"
    "1004,Amram,Mitzna,haifa,1999-11-20,suspended,2012-01-01,,\n"
    "1005,Noa,Levi,haifa,2011-07-15,active,2012-01-01,,\n"
    "1006,Dana,Cohen,haifa,2005-02-02,lapsed,2009-01-01,,\n"
    "1007,Yossi,Biton,tel-aviv,2010-12-31,resigned,2012-01-01,,\n"
)


@pytest.fixture(autouse=True)
def _static_files_without_collectstatic(settings):
    # Production serves collected, hashed static files; the tests render pages without collecting.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


GROUP_MIGRATIONS = [
    ("members.migrations.0002_roster_clerk_group", "create_group"),
    ("audit.migrations.0003_auditor_group", "create_group"),
    ("ballots.migrations.0003_official_groups", "create_groups"),
    ("ballots.migrations.0006_publication", "grant_committee"),
]


@pytest.fixture(autouse=True)
def _groups_after_flush(request):
    """Bring back the groups the data migrations create, if an earlier transactional test flushed them.

    A flush empties every table; only permissions and content types come back by themselves. The
    groups are rebuilt by the migrations' own functions, so they hold what a migrated database does.
    """
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in request.fixturenames or (marker and marker.kwargs.get("transaction")):
        request.getfixturevalue("transactional_db")
        from django.contrib.auth.models import Group

        if Group.objects.count() < 4:
            from importlib import import_module

            from django.db.migrations.loader import MigrationLoader

            state_apps = MigrationLoader(connection).project_state().apps
            for module, function in GROUP_MIGRATIONS:
                getattr(import_module(module), function)(state_apps, None)
    yield


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: on Redis it outlives the test's database rows."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def _celery_eager(request):
    """Tasks run in the test's process, so a test sees their effect at once, whatever the broker.

    Tests marked `real_celery` keep the configured broker and start a real worker themselves.
    """
    if request.node.get_closest_marker("real_celery"):
        yield
        return
    from audit.services import reset_integration_window
    from config.celery import app

    reset_integration_window()  # a broker test just before may have left its window open
    saved = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = saved


@pytest.fixture(autouse=True)
def _test_signing_key(settings, tmp_path_factory):
    key_file = tmp_path_factory.getbasetemp() / "kalpi-test-signing-key"
    if not key_file.exists():
        skey, _ = note.generate_key("kalpi.test/audit")
        key_file.write_text(skey + "\n")
    settings.KALPI_SIGNING_KEY = str(key_file)
    settings.KALPI_LOG_ORIGIN = "kalpi.test/audit"
    keys.reset()
    yield
    keys.reset()


BOX_TRIGGER_MARK = "ballot_box"  # the open ballot box's guard (ballots migration 0007)


@pytest.fixture(scope="session", autouse=True)
def _flush_passes_append_only_triggers():
    """Let the test runner empty append-only tables (and the open ballot box) between transactional tests.

    The triggers refuse TRUNCATE and DELETE to the application, as they should; the test runner's flush
    is the one caller that must get past them, as the table owner can. Nothing else is patched.
    """
    operations = type(connection.ops)
    original = operations.sql_flush

    def postgres_flush(self, style, tables, **kwargs):
        statements = original(self, style, tables, **kwargs)
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE t.tgname LIKE %s OR t.tgname LIKE %s",
                [f"%{TRIGGER_MARK}%", f"%{BOX_TRIGGER_MARK}%"],
            )
            triggers = [(table, name) for table, name in cursor.fetchall() if table in tables]
        before = [f'ALTER TABLE "{table}" DISABLE TRIGGER {name}' for table, name in triggers]
        after = [f'ALTER TABLE "{table}" ENABLE ALWAYS TRIGGER {name}' for table, name in triggers]
        return before + statements + after

    def sqlite_flush(self, style, tables, **kwargs):
        statements = original(self, style, tables, **kwargs)
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master"
                " WHERE type = 'trigger' AND (name LIKE %s OR name LIKE %s)",
                [f"%{TRIGGER_MARK}%", f"%{BOX_TRIGGER_MARK}%"],
            )
            triggers = [(name, sql) for name, table, sql in cursor.fetchall() if table in tables]
        before = [f"DROP TRIGGER {name}" for name, _ in triggers]
        return before + statements + [sql for _, sql in triggers]

    operations.sql_flush = postgres_flush if connection.vendor == "postgresql" else sqlite_flush
    yield
    operations.sql_flush = original


def start(target: Callable[[int], None], count: int) -> Callable[[], list[BaseException]]:
    """Start `count` threads running target(k), each closing its connections when done; returns a
    function that waits for them and answers what they raised (a 500 raises in the test client)."""
    failures: list[BaseException] = []

    def wrapped(k: int) -> None:
        try:
            target(k)
        except BaseException as exc:  # collected so the test names it
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrapped, args=(k,), daemon=True) for k in range(count)]
    for thread in threads:
        thread.start()

    def join() -> list[BaseException]:
        for thread in threads:
            thread.join(120)
        assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
        return failures

    return join


def run_threads(target: Callable[[int], None], count: int) -> list[BaseException]:
    return start(target, count)()


def wait_for(condition, seconds: float = 30.0, what: str = "condition"):
    """Poll `condition` until it gives something true, and answer it; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"waited {seconds}s for {what}")


def csv_stream(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode("utf-8"))


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def database_url() -> str:
    """The URL of the test database, for a second process (a command, a worker)."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(s['NAME']).resolve()}"
    return f"postgres://{s['USER']}:{s['PASSWORD']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def second_process_env() -> dict[str, str]:
    """The environment of a second process on the test database (a manage.py command)."""
    return {**os.environ, "DATABASE_URL": database_url(), "SECRET_KEY": "test-only-key-for-a-second-process"}


@pytest.fixture
def small_roster(db):
    report = import_roster(actor="rina", stream=csv_stream(SMALL_ROSTER))
    assert report.ok, report.errors
    return report


def _official(username: str, group: str | None = None, **flags) -> User:
    user = User.objects.create_user(username=username, password="correct horse battery", is_staff=True, **flags)
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def clerk(db) -> User:
    """Rina, a roster clerk."""
    return _official("rina", "roster clerk")


@pytest.fixture
def superuser(db) -> User:
    return _official("root", is_superuser=True)


@pytest.fixture
def manager(db) -> User:
    """Moshe, who runs the stations on the day."""
    return _official("moshe", "station manager")


@pytest.fixture
def committee(db) -> User:
    """Dana, of the election committee."""
    return _official("dana", "election committee")


@pytest.fixture
def auditor(db) -> User:
    """Avi, an observer for a candidate."""
    return _official("avi", "auditor")


@pytest.fixture
def outsider(db) -> User:
    """Staff with no group at all: can log in to the admin and do nothing there."""
    return _official("nobody")


# A small election over SMALL_ROSTER: Tel Aviv votes electronically at tlv-01, Haifa on paper at
# hfa-01, and anyone may vote at the electronic station any-01. Sderot has no station of its own.
ELECTION_FILE = {
    "slug": "labor-2011",
    "name": "Labor Party leadership election 2011",
    "roster_cutoff": "2011-06-30",
    "require_dues": False,
    "candidates": [
        {"code": "yachimovich", "name": "Shelly Yachimovich"},
        {"code": "peretz", "name": "Amir Peretz"},
        {"code": "herzog", "name": "Isaac Herzog"},
    ],
    "stations": [
        {"code": "tlv-01", "name": "Tel Aviv 1", "mode": "electronic", "branches": ["tel-aviv"]},
        {"code": "hfa-01", "name": "Haifa 1", "mode": "paper", "branches": ["haifa"]},
        {"code": "any-01", "name": "Party house", "mode": "electronic", "branches": []},
    ],
    "rule": {"method": "two_round", "threshold_percent": "40", "threshold_base": "valid", "quorum_percent": None,
             "advance": 2, "tie_break": "lot"},
    "rounds": [{"number": 1, "opens_at": "2011-09-12T07:00:00+03:00", "closes_at": "2011-09-12T22:00:00+03:00"}],
    "runoff_after_days": 7,
    "certifications_required": 2,
}  # fmt: skip


class Election:
    """The election of ELECTION_FILE, frozen over SMALL_ROSTER, round 1 open, a device token per station."""

    def __init__(self) -> None:
        from ballots.services import setup

        self.election, _ = setup.load_election(data=ELECTION_FILE, actor="committee")
        setup.freeze_electorate(election=self.election, actor="committee")
        self.round = setup.open_round(election=self.election, number=1, actor="committee")
        self.tokens = {}
        for station in self.election.stations.all():
            _, self.tokens[station.code] = setup.issue_station_token(station=station, actor="manager")

    def station(self, code: str):
        return self.election.stations.get(code=code)

    def client(self, code: str | None):
        from rest_framework.test import APIClient

        client = APIClient()
        if code is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {self.tokens[code]}")
        return client


@pytest.fixture
def election(small_roster) -> Election:
    return Election()
