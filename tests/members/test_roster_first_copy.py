"""A first import on PostgreSQL COPYs a plain file straight into the empty members table.

The staging path stays the reference: whatever the direct COPY writes, the staging path would have
written the same members and branches; whatever it cannot take, it leaves to the staging path without
a trace (no member, no branch, no key or default changed), and the staging path names the bad rows.
"""

from __future__ import annotations

import io
from contextlib import ExitStack
from unittest.mock import patch

import pytest
from django.db import connection

from audit.models import Action, Entry
from members import roster_copy, services
from members.fake_roster import roster_csv_bytes
from members.models import Branch, Member
from members.services import import_roster
from tests.conftest import is_postgres

pytestmark = pytest.mark.django_db

_FIELDS = ("member_no", "first_name", "last_name", "branch__code", "joined_on", "status", "dues_paid_until",
           "email", "phone")  # fmt: skip


@pytest.fixture(autouse=True)
def _postgres_only():
    if not is_postgres():
        pytest.skip("the direct COPY into members is PostgreSQL's first import")


def _statements(data: bytes, *, chunk: int = roster_copy.CHUNK, direct: bool = True):
    """Import `data` into the empty roster; the report and the SQL statements run through Django."""
    seen: list[str] = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with ExitStack() as stack:
        stack.enter_context(patch.object(roster_copy, "CHUNK", chunk))
        if not direct:
            stack.enter_context(patch.object(services, "_copy_into_empty_roster", return_value=False))
        stack.enter_context(connection.execute_wrapper(wrapper))
        report = import_roster(actor="rina", stream=io.BytesIO(data))
    return report, seen


def _roster() -> tuple[list[tuple], list[str]]:
    members = sorted(Member.objects.values_list(*_FIELDS))
    return members, sorted(Branch.objects.values_list("code", flat=True))


def _staged(text: str) -> bool:
    return "CREATE UNLOGGED TABLE roster_staging" in text


def _reset_roster() -> None:
    Member.objects.all().delete()
    Branch.objects.all().delete()
    with connection.cursor() as cursor:
        # The deletes' deferred foreign-key checks run now: a table with pending checks cannot be
        # altered, and a first import sets its keys aside.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def _reordered(data: bytes, order: list[int]) -> bytes:
    lines = data.decode().splitlines()
    return "".join(",".join(line.split(",")[i] for i in order) + "\n" for line in lines).encode()


@pytest.mark.parametrize(
    "shape",
    ["as exported", "crlf line ends", "branch last", "only the required columns", "no line end at the end"],
)
def test_the_direct_copy_writes_what_the_staging_path_writes(shape):
    # 2 KB chunks: about 20 lines each, so new branches keep appearing in later chunks and each
    # one ends a COPY and starts another.
    data = roster_csv_bytes(600)
    if shape == "crlf line ends":
        data = data.replace(b"\n", b"\r\n")
    elif shape == "branch last":
        data = _reordered(data, [0, 1, 2, 4, 5, 6, 7, 8, 3])
    elif shape == "only the required columns":
        data = _reordered(data, [0, 1, 2, 3, 4, 5])
    elif shape == "no line end at the end":
        data = data.rstrip(b"\n")

    staged, staged_sql = _statements(data, chunk=2048, direct=False)
    expected = _roster()
    _reset_roster()
    direct, direct_sql = _statements(data, chunk=2048)

    assert any(_staged(sql) for sql in staged_sql)
    assert not any(_staged(sql) for sql in direct_sql), "the first import went through staging"
    assert _roster() == expected
    assert len(expected[0]) == 600 and len(expected[1]) > 1
    for report in (staged, direct):
        assert (report.rows, report.created, report.updated, report.unchanged) == (600, 600, 0, 0)
        assert report.branches_created == len(expected[1])
    assert direct.sha256 == staged.sha256
    entry = Entry.objects.filter(action=Action.ROSTER_IMPORTED).latest("id")
    assert entry.payload["created"] == 600 and entry.payload["branches_created"] == len(expected[1])


def test_branches_already_there_are_used_and_only_new_ones_created(db):
    haifa = Branch.objects.create(code="haifa", name="Haifa (the party's name)")
    data = roster_csv_bytes(300)
    report, sql = _statements(data, chunk=1024)
    assert not any(_staged(s) for s in sql)
    codes = set(Member.objects.values_list("branch__code", flat=True))
    assert "haifa" in codes and report.branches_created == len(codes) - 1
    assert Branch.objects.get(code="haifa") == haifa and haifa.members.count() > 0
    assert Branch.objects.get(code="haifa").name == "Haifa (the party's name)"


def _column_defaults() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT column_name, column_default, is_nullable FROM information_schema.columns
               WHERE table_name = 'members_member' ORDER BY column_name"""
        )
        return cursor.fetchall()


@pytest.mark.parametrize("columns", [[0, 1, 2, 3, 4, 5, 6, 7, 8], [0, 1, 2, 3, 4, 5]])
def test_what_the_file_does_not_give_is_filled_and_the_table_keeps_its_defaults(columns):
    before = _column_defaults()
    report, sql = _statements(_reordered(roster_csv_bytes(50), columns))
    assert report.created == 50 and not any(_staged(s) for s in sql)
    assert _column_defaults() == before
    stamps = set(Member.objects.values_list("updated_at", flat=True))
    assert len(stamps) == 1 and None not in stamps
    if len(columns) == 6:  # no email, no phone: the model's empty values, as on the staging path
        assert set(Member.objects.values_list("email", "phone")) == {("", "")}


@pytest.mark.parametrize(
    "fault, error",
    [
        ("a number twice", "member number 100001 is also on line 2"),
        ("an impossible date", "2011-02-30"),
        ("a value to trim", None),
    ],
)
def test_what_the_direct_copy_cannot_take_leaves_no_trace_and_staging_decides(fault, error):
    # The fault is near the end, after several COPYs and the branches they created.
    lines = roster_csv_bytes(400).decode().splitlines(keepends=True)
    if fault == "a number twice":
        lines[-1] = "100001," + lines[-1].split(",", 1)[1]
    elif fault == "an impossible date":
        fields = lines[-1].split(",")
        fields[4] = "2011-02-30"
        lines[-1] = ",".join(fields)
    else:
        lines[-1] = lines[-1].replace(",", ", ", 1)
    data = "".join(lines).encode()

    report, sql = _statements(data, chunk=2048)

    assert any(_staged(s) for s in sql), "the staging path did not decide"
    if error is None:  # the Python reader trims it: the import goes on, through staging
        assert report.ok and report.created == 400
        assert Member.objects.count() == 400
        return
    assert not report.ok and report.created == 0
    assert any(error in str(e) for e in report.errors), report.errors
    assert Member.objects.count() == 0 and Branch.objects.count() == 0


def test_a_roster_with_members_is_not_copied_into(small_roster):
    data = roster_csv_bytes(100)
    report, sql = _statements(data)
    assert any(_staged(s) for s in sql)
    assert report.created == 100 and Member.objects.count() == 107


def test_a_member_added_before_the_lock_sends_the_import_to_staging(db):
    # The first look finds the roster empty; by the time the members table is locked, an official has
    # added a member. The direct COPY must not go on without its keys set aside.
    real = services._has_rows
    looks = iter([False, False, True])  # the direct path's look, the look before the lock, after it

    def has_rows(cursor, table):
        answer = next(looks, None)
        return real(cursor, table) if answer is None else answer

    with patch.object(services, "_has_rows", side_effect=has_rows):
        report, sql = _statements(roster_csv_bytes(100))
    assert any(_staged(s) for s in sql)
    assert not any("ALTER COLUMN updated_at" in s for s in sql), "the direct COPY went on"
    assert report.created == 100 and Member.objects.count() == 100
