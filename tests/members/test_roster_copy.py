"""The server-side fast path accepts only what the Python reader accepts, with the same values.

When the fast path gives up, the import reads the file again in Python, so the only thing that can go
wrong is the fast path taking a row the Python reader would refuse or read differently. Hypothesis
writes files full of the cases where the two could part: whitespace Python strips and PostgreSQL's
plain trim would not, non-ASCII digits and letters, quoting the two CSV parsers read differently,
impossible dates, odd emails. Each file goes through both readers; whenever the fast path takes it,
every row must match what `RosterReader` gives.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date
from unittest.mock import patch

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from members import roster_copy, services
from members.fake_roster import roster_csv_bytes
from members.models import Member
from members.roster_csv import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, STATUSES, RosterReader
from members.services import ImportReport, import_roster
from tests.conftest import csv_stream, is_postgres

pytestmark = pytest.mark.django_db

COLUMNS = list(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
_ODD = ["\t", "\n", "\x0b", "\x0c", "\x1c", "\x1f", " ", "\x85", "\u00a0", "\u2003", "\u3000"]
_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


def _mostly(good: st.SearchStrategy[str], odd: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Good values, now and then padded with whitespace Python strips, and one time in 80 an odd one,
    so that whole files often pass and both the taking and the refusing are exercised."""
    pad = st.text(st.sampled_from([" "] * len(_ODD) + _ODD), min_size=1, max_size=2)
    padded = st.tuples(pad | st.just(""), good, pad | st.just("")).map("".join)
    return st.integers(0, 79).flatmap(lambda i: odd if i == 0 else padded if i < 4 else good)


_NAME_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters='\x00\r\n,"')
_DATES = _mostly(
    st.dates().map(str) | st.sampled_from(["2012-02-29", "0001-01-01", "9999-12-31"]),
    st.sampled_from(
        ["2011-02-29", "2011-02-30", "0000-01-01", "2011-6-30", "20110630", "2011/06/30", "June 30 2011",
         "\uff12\uff10\uff11\uff11-06-30", "2011-06-3\u0660", ""]
    ) | _TEXT,
)  # fmt: skip
_STATUS = _mostly(
    st.sampled_from(STATUSES),
    st.sampled_from(["ACTIVE", "Lapsed", "act\u0130ve", "act\u0131ve", "dormant", "", "active!", "\u212aapsed"])
    | _TEXT,
)
_EMAIL = _mostly(
    st.sampled_from(["", "a@b.c", "dana@example.org", "a.b@c.d.e", "x" * 64 + "@b.c", "a@b..c", "a+b@c-d.e"]),
    st.sampled_from(
        ["a@b", "a@.b", "a@b.", "@b.c", "a@@b.c", "a b@c.d", "\u05d3@example.org", "a@b\u00a0c.d",
         "x" * 65 + "@b.c", "a\x1c@b.c", "a\x01@b.c"]
    ) | _TEXT,
)  # fmt: skip
_PHONE = _mostly(
    st.sampled_from(["", "052-1234567", "+972 (3) 555", "123", "1" * 32]),
    st.sampled_from(["12", "1" * 33, "05\u0662-1234", "abc"]) | _TEXT,
)
_MEMBER_NO = _mostly(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}", fullmatch=True),
    st.sampled_from(["", "-12", "12 34", "\u0661\u0662", "\u00df1", "1\u00a02", "x" * 33]) | _TEXT,
)
_NAME = _mostly(
    st.text(_NAME_CHARS, min_size=1, max_size=100).filter(lambda n: n.strip() == n)
    | st.sampled_from(["Cohen", "Ben-David", "O'Neil", "x" * 100, "\u05e9\u05dc\u05d5\u05dd"]),
    st.sampled_from(["x" * 101, "", " ", 'Da"na', "Levi, Jr.", "a\nb", "a\r\nb"]) | _TEXT,
)
_BRANCH = _mostly(st.sampled_from(["haifa", "tel-aviv", "x" * 64, "\u05d9\u05e8"]), st.sampled_from(["x" * 65, ""]))
_DUES = st.just("") | _DATES
_ROW = st.tuples(_MEMBER_NO, _NAME, _NAME, _BRANCH, _DATES, _STATUS, _DUES, _EMAIL, _PHONE)


def _write(rows, quoting: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=quoting)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _fast(data: bytes, chunk: int = roster_copy.CHUNK) -> list[tuple] | None:
    """The rows the import's fast path stages (reading `chunk` bytes at a time), or None if it gives up."""
    report = ImportReport()
    with transaction.atomic(), connection.cursor() as cursor:
        try:
            with patch.object(roster_copy, "CHUNK", chunk):
                if not services._stage_in_server(cursor, io.BytesIO(data), report, None):
                    return None
            cursor.execute(
                "SELECT member_no, first_name, last_name, branch, joined_on, status, dues_paid_until, email, phone"
                " FROM roster_staging"
            )
            rows = sorted(cursor.fetchall())
            assert report.rows == len(rows)
            return rows
        finally:
            transaction.set_rollback(True)


def _python(data: bytes) -> list[tuple] | None:
    rows = []
    for row, errors in RosterReader(io.BytesIO(data)):
        if errors:
            return None
        rows.append(
            (row.member_no, row.first_name, row.last_name, row.branch, row.joined_on, row.status,
             row.dues_paid_until, row.email, row.phone)
        )  # fmt: skip
    numbers = [r[0] for r in rows]
    if len(set(numbers)) != len(numbers):
        return None
    return sorted(rows)


@pytest.fixture(autouse=True)
def _postgres_only():
    if not is_postgres():
        pytest.skip("the fast path is PostgreSQL's COPY")


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(_ROW, max_size=6, unique_by=lambda row: row[0].strip()),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL] * 5 + [csv.QUOTE_ALL]),
    chunk=st.sampled_from([1, 16, 100, roster_copy.CHUNK]),
)
@example(
    rows=[("1", " Dana\u00a0", "Levi", "haifa", "2011-06-30", "active", "", "", "")],
    quoting=csv.QUOTE_MINIMAL,
    chunk=100,
)
@example(
    rows=[("1", "Dana", "Levi", "haifa", "2011-06-30", "active", "", "", " 052-1234567")],
    quoting=csv.QUOTE_MINIMAL,
    chunk=100,
)
@example(
    rows=[("1", "Dana", "Levi", "haifa", "2011-06-30", "active", "", "a@b.c ", "")],
    quoting=csv.QUOTE_MINIMAL,
    chunk=100,
)
@example(
    rows=[(" 1", "Dana", "Levi", "haifa", "2011-06-30", "active", "", "", "")], quoting=csv.QUOTE_MINIMAL, chunk=100
)
@example(
    rows=[("1", "Dana", "Levi", "haifa ", "2011-06-30", "active", "", "", "")], quoting=csv.QUOTE_MINIMAL, chunk=100
)
@example(
    rows=[("1", "Dana", "Levi", "haifa", " 2011-06-30", "active ", "2012-01-01\t", "", "")],
    quoting=csv.QUOTE_MINIMAL,
    chunk=100,
)
@example(
    rows=[("1", "Dana", "Levi", "haifa", "2011-06-30", "Active", "", "", "")], quoting=csv.QUOTE_MINIMAL, chunk=100
)
def test_whatever_the_fast_path_takes_the_python_reader_takes_alike(rows, quoting, chunk):
    data = _write(rows, quoting)
    fast = _fast(data, chunk)
    event("fast path took it" if fast is not None else "fast path gave up")
    if fast is not None:
        assert fast == _python(data)


@pytest.mark.parametrize(
    "body",
    [
        '1,Da"na,Levi,haifa,2011-06-30,active,,,\n',  # a quote inside an unquoted field
        '1,"Da"na,Levi,haifa,2011-06-30,active,,,\n',  # text after a closing quote
        '1,"Levi, Jr.",Levi,haifa,2011-06-30,active,,,\n',  # well-formed quoting: the csv module reads it
        "1,Dana,Levi,haifa,2011-06-30,active,,,\n\\.\n2,Noa,Levi,haifa,2011-06-30,active,,,\n",  # COPY's end mark
        "1, Dana,Levi,haifa,2011-06-30,active,,,\n",  # a value to trim
        "1,Dana,Levi,haifa,2011-06-30,Active,,,\n",  # a status to lower-case
        "1,Dana,Levi,haifa,2011-02-30,active,,,\n",  # the server refuses the date
        "1,Dana,Levi,haifa,2011-06-30,active,,,\n1,Noa,Levi,haifa,2011-06-30,active,,,\n",  # a number twice
        "1,Dana,Levi,haifa,2011-06-30,active,,,\r\n2,Noa,Levi,haifa,2011-06-30,active,,,\n",  # mixed line ends
        "1,Dana,Levi,haifa,2011-06-30,active,,\n",  # a column short
        "1,Dana,Levi,haifa,2011-06-30,active,,,\n\n",  # a blank line
    ],
)
def test_what_is_not_plainly_good_is_left_to_python(body):
    header = ",".join(COLUMNS) + "\n"
    assert _fast((header + body).encode()) is None


def test_a_plain_export_takes_the_fast_path():
    data = roster_csv_bytes(2000)
    assert _fast(data) == _python(data) is not None
    crlf = data.replace(b"\n", b"\r\n")
    assert _fast(crlf) == _python(crlf) is not None
    short = b"member_no,last_name,first_name,status,joined_on,branch\n7,Levi,Dana,active,2011-06-30,haifa"
    assert _fast(short) == _python(short) == [("7", "Dana", "Levi", "haifa", date(2011, 6, 30), "active", None, "", "")]


def test_python_strips_exactly_what_the_expression_calls_whitespace():
    assert all(bool(re.fullmatch(r"\s", c)) == (not c.strip()) for c in map(chr, range(0x110000)))


class _Unseekable(io.BytesIO):
    def seekable(self) -> bool:
        return False


def test_the_import_reports_the_same_whichever_path_read_the_file():
    """A bad row makes the fast path give up: the Python path names it, exactly as it always did."""
    good = roster_csv_bytes(300).decode()
    fast = import_roster(actor="rina", stream=csv_stream(good))
    assert (fast.rows, fast.created) == (300, 300)
    bad = good.replace(",active,", ",dormant,", 1)
    report = import_roster(actor="rina", stream=csv_stream(bad))
    assert not report.ok and report.rejected == 1 and "unknown status 'dormant'" in str(report.errors[0])
    assert Member.objects.count() == 300
    # The same file read only by Python (as on SQLite, or from a stream that cannot seek) counts alike.
    changed = roster_csv_bytes(300, changed_every=10)
    slow = import_roster(actor="rina", stream=_Unseekable(changed), dry_run=True)
    quick = import_roster(actor="rina", stream=io.BytesIO(changed), dry_run=True)
    assert (slow.rows, slow.updated, slow.unchanged, slow.sha256) == (quick.rows, quick.updated, quick.unchanged,
                                                                       quick.sha256)  # fmt: skip
    assert quick.updated == 30
