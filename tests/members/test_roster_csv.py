"""The roster reader on plain bytes: every kind of bad row named with its line and column."""

from __future__ import annotations

import io
from datetime import date

import pytest

from members.roster_csv import HeaderError, RosterReader

HEADER = b"member_no,first_name,last_name,branch,joined_on,status,dues_paid_until,email,phone\n"


def read(data: bytes):
    return list(RosterReader(io.BytesIO(data)))


def errors_of(data: bytes):
    return [(e.line, e.column, e.reason) for _, errors in read(data) for e in errors]


def test_it_reads_a_good_row():
    [(row, errors)] = read(
        HEADER + b"42,Shelly,Yachimovich,tel-aviv,1995-03-01,active,2012-01-01,s@example.org,03-1234567\n"
    )
    assert errors == []
    assert (row.line, row.member_no, row.branch, row.joined_on, row.dues_paid_until) == (
        2, "42", "tel-aviv", date(1995, 3, 1), date(2012, 1, 1)
    )  # fmt: skip


def test_it_accepts_the_required_columns_alone_in_any_order_with_a_bom():
    data = "\ufeffstatus,branch,last_name,first_name,member_no,joined_on\nACTIVE,haifa,Mitzna,Amram,7,1999-11-20\n"
    [(row, errors)] = read(data.encode())
    assert errors == [] and row.status == "active" and row.dues_paid_until is None and row.email == ""


def test_it_accepts_hebrew_names():
    [(row, errors)] = read(HEADER + "8,שלי,יחימוביץ',תל-אביב,1995-03-01,active,,,\n".encode())
    assert errors == [] and row.first_name == "שלי"


@pytest.mark.parametrize(
    ("line", "column", "reason"),
    [
        ("1,A,B,tlv,2011-02-30,active,,,", "joined_on", "bad date '2011-02-30': expected YYYY-MM-DD"),
        ("1,A,B,tlv,30/06/2011,active,,,", "joined_on", "bad date '30/06/2011': expected YYYY-MM-DD"),
        ("1,A,B,tlv,20110630,active,,,", "joined_on", "bad date '20110630': expected YYYY-MM-DD"),
        ("1,A,B,tlv,2011-01-01,active,next year,,", "dues_paid_until", "bad date 'next year': expected YYYY-MM-DD"),
        (
            "1,A,B,tlv,2011-01-01,member,,,",
            "status",
            "unknown status 'member': expected one of active, suspended, lapsed, resigned",
        ),
        ("1, ,B,tlv,2011-01-01,active,,,", "first_name", "empty name"),
        ("1,A,,tlv,2011-01-01,active,,,", "last_name", "empty name"),
        (",A,B,tlv,2011-01-01,active,,,", "member_no", "empty member number"),
        (
            "1/2,A,B,tlv,2011-01-01,active,,,",
            "member_no",
            "bad member number '1/2': letters, digits and hyphens, at most 32",
        ),
        ("1,A,B,,2011-01-01,active,,,", "branch", "empty branch"),
        ("1,A,B,tlv,2011-01-01,active,,not-an-email,", "email", "bad email address 'not-an-email'"),
        (
            "1,A,B,tlv,2011-01-01,active,,,call me",
            "phone",
            "bad phone number 'call me': digits, spaces, + - ( ), at most 32",
        ),
        ("1,A,B,tlv,2011-01-01,active,,", "", "wrong column count: 8 values, expected 9"),
        ("1,A,B,tlv,2011-01-01,active,,,,extra", "", "wrong column count: 10 values, expected 9"),
    ],
)
def test_it_names_each_kind_of_bad_row(line, column, reason):
    assert errors_of(HEADER + b"9,Good,Row,tlv,2011-01-01,active,,,\n" + line.encode() + b"\n") == [(3, column, reason)]


def test_it_reports_every_problem_of_a_row():
    found = errors_of(HEADER + b"1,,,tlv,yesterday,gone,,,\n")
    assert [(line, column) for line, column, _ in found] == [
        (2, "first_name"), (2, "last_name"), (2, "joined_on"), (2, "status")
    ]  # fmt: skip


def test_it_names_a_line_that_is_not_utf8_and_reads_on():
    data = (
        HEADER
        + b"1,Ana,B,tlv,2011-01-01,active,,,\n"
        + b"2,Jos\xe9,B,tlv,2011-01-01,active,,,\n"
        + b"3,,B,tlv,2011-01-01,active,,,\n"
    )
    assert errors_of(data) == [(3, "", "not UTF-8 text"), (4, "first_name", "empty name")]


def test_it_counts_lines_across_quoted_newlines():
    data = HEADER + b'1,"Ana\nMaria",B,tlv,2011-01-01,active,,,\n2,X,Y,tlv,bad,active,,,\n'
    assert errors_of(data) == [(4, "joined_on", "bad date 'bad': expected YYYY-MM-DD")]


def test_it_skips_blank_lines():
    rows = read(HEADER + b"1,A,B,tlv,2011-01-01,active,,,\n\n\n2,C,D,tlv,2011-01-01,active,,,\n")
    assert [row.line for row, _ in rows] == [2, 5]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "line 1: the file is empty"),
        (b"member_no,first_name,last_name,branch,status\n", "missing column(s) joined_on"),
        (b"member_no,first_name,last_name,branch,joined_on,status,shoe_size\n", "unknown column(s) shoe_size"),
        (b"member_no,first_name,last_name,branch,joined_on,status,status\n", "repeated column(s) status"),
        (b"member_no,first_name,last_name,br\xe4nch,joined_on,status\n", "the header is not UTF-8"),
    ],
)
def test_it_refuses_a_bad_header(data, message):
    with pytest.raises(HeaderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        RosterReader(io.BytesIO(data))
