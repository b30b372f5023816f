"""The import under a kill and under concurrency: the roster is either as before or wholly imported."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from django.db import IntegrityError, connection, connections, transaction

from members.fake_roster import roster_csv_bytes
from members.models import Member
from members.services import import_roster
from tests.conftest import SMALL_ROSTER, csv_stream, database_url, is_postgres, second_process_env, wait_for

BASE_DIR = Path(__file__).resolve().parents[2]


def snapshot():
    return list(Member.objects.order_by("member_no").values_list("member_no", "first_name", "status", "updated_at"))


@pytest.mark.django_db(transaction=True)
def test_a_killed_import_leaves_the_roster_exactly_as_it_was(tmp_path):
    import_roster(actor="rina", stream=csv_stream(SMALL_ROSTER))
    before = snapshot()
    # The import reads from a pipe that the test holds open, so it is killed mid-stream: 10,000 rows
    # are staged (its first progress line says so) and the end of the file has not come.
    changed = SMALL_ROSTER.replace(",active,", ",lapsed,").encode() + roster_csv_bytes(30_000).split(b"\n", 1)[1]
    fifo = tmp_path / "roster.csv"
    os.mkfifo(fifo)
    release = threading.Event()

    def feed():
        try:
            with open(fifo, "wb") as pipe:
                pipe.write(changed)
                pipe.flush()
                release.wait(60)
        except BrokenPipeError:
            pass

    feeder = threading.Thread(target=feed)
    feeder.start()
    env = second_process_env()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "import_roster", str(fifo)],
        cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        seen = []
        for line in process.stderr:
            seen.append(line)
            if "10000 rows" in line:
                break
        else:
            pytest.fail(f"the import never reported its progress: {''.join(seen)}")
        process.kill()
        process.wait(30)
    finally:
        release.set()
        feeder.join(30)
        if process.poll() is None:
            process.kill()
    assert process.returncode == -9
    assert snapshot() == before
    # Nothing is left locked or half-done: the next import runs and sees the old roster.
    report = import_roster(
        actor="rina", stream=csv_stream(SMALL_ROSTER + "1008,Eitan,Cabel,tel-aviv,2000-01-01,active,,,\n")
    )
    assert (report.created, report.updated, report.unchanged) == (1, 0, 7)


@pytest.mark.django_db(transaction=True)
def test_two_imports_at_once_are_serialised_and_both_land():
    if not is_postgres():
        pytest.skip("SQLite serialises writers by itself; this proves the PostgreSQL lock")
    first = roster_csv_bytes(3000, first_member_no=1)
    second = roster_csv_bytes(3000, first_member_no=1501, seed=7)
    start = threading.Barrier(2)
    reports, failures = {}, []

    def run(name, data):
        try:
            start.wait(10)
            reports[name] = import_roster(actor="rina", stream=csv_stream(data.decode()))
        except Exception as exc:  # collected, so the test says what went wrong
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n, d)) for n, d in (("first", first), ("second", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert failures == []
    assert Member.objects.count() == 4500
    created = reports["first"].created + reports["second"].created
    touched = {name: r.updated + r.unchanged for name, r in reports.items()}
    assert created == 4500
    # Whichever came second found the 1,500 shared members already there.
    assert sorted(touched.values()) == [0, 1500]


def member_keys() -> list[tuple[str, str]]:
    """The members table's indexes and constraints as the catalogue defines them."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index
               WHERE indrelid = 'members_member'::regclass
               UNION ALL
               SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
               WHERE conrelid = 'members_member'::regclass
               ORDER BY 1, 2"""
        )
        return cursor.fetchall()


@pytest.mark.django_db(transaction=True)
def test_a_first_import_builds_the_same_keys_it_set_aside():
    if not is_postgres():
        pytest.skip("the indexes are set aside for a first import on PostgreSQL only")
    before = member_keys()
    assert {name for name, _ in before} >= {"member_no_unique", "members_member_pkey"}
    report = import_roster(actor="rina", stream=csv_stream(roster_csv_bytes(2000).decode()))
    assert report.created == 2000 and member_keys() == before
    with pytest.raises(IntegrityError), transaction.atomic():  # the unique key is back, and enforced
        Member.objects.create(
            member_no="100001", first_name="A", last_name="B", branch_id=Member.objects.first().branch_id,
            joined_on="2001-01-01", status="active",
        )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_a_first_import_killed_before_its_commit_leaves_the_keys_as_they_were(tmp_path):
    """A first import drops the members' indexes and keys, fills the table, builds them again, and is
    killed before it commits: the indexes and keys are those of before, the roster still empty."""
    if not is_postgres():
        pytest.skip("the indexes are set aside for a first import on PostgreSQL only")
    before = member_keys()
    path = tmp_path / "roster.csv"
    path.write_bytes(roster_csv_bytes(20_000))
    env = second_process_env()
    with psycopg.connect(database_url()) as blocker:  # a transaction of its own, open until the kill
        # The import's last write is its audit entry, after the members and their keys: it waits here.
        blocker.execute("LOCK TABLE audit_entry IN SHARE MODE")
        process = subprocess.Popen(
            [sys.executable, "manage.py", "import_roster", str(path)],
            cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_for(_an_import_waits, 60, "the import to wait for its audit entry")
            # It took the first-import path: it holds the members table as only that path does.
            assert blocker.execute(
                """SELECT EXISTS (SELECT 1 FROM pg_locks WHERE relation = 'members_member'::regclass
                   AND mode = 'AccessExclusiveLock' AND granted)"""
            ).fetchone()[0]
            process.kill()
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
        blocker.rollback()
    assert process.returncode == -9
    assert Member.objects.count() == 0 and member_keys() == before
    report = import_roster(actor="rina", stream=csv_stream(roster_csv_bytes(500).decode()))
    assert report.created == 500 and member_keys() == before


def _an_import_waits() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock'
               AND datname = current_database() AND query ILIKE %s)""",
            ["%audit_entry%"],
        )
        return cursor.fetchone()[0]
