"""Reading the party's roster CSV export: streaming, strict, every bad row named with its line.

Pure logic with no ORM import, so it can be tested on plain bytes. Duplicate member numbers span the
whole file and are found by the import in the database, where memory stays flat.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO

REQUIRED_COLUMNS = ("member_no", "first_name", "last_name", "branch", "joined_on", "status")
OPTIONAL_COLUMNS = ("dues_paid_until", "email", "phone")
STATUSES = ("active", "suspended", "lapsed", "resigned")

_MEMBER_NO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PHONE = re.compile(r"[0-9+()\- ]{3,32}")
# Deliberately plain: one @, no spaces, a dot in the domain. Mail is not how members vote.
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_NAME_MAX = 100
_BRANCH_MAX = 64


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class RosterRow:
    line: int
    member_no: str
    first_name: str
    last_name: str
    branch: str
    joined_on: date
    status: str
    dues_paid_until: date | None
    email: str
    phone: str


class HeaderError(ValueError):
    """The file cannot be read as a roster at all (line 1 is wrong, or the file is empty)."""


def _parse_date(value: str, column: str, line: int, errors: list[RowError]) -> date | None:
    # fromisoformat alone would also take 20110630 and week dates; the export uses YYYY-MM-DD.
    if len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    errors.append(RowError(line, column, f"bad date {value!r}: expected YYYY-MM-DD"))
    return None


def parse_row(line: int, values: dict[str, str]) -> tuple[RosterRow | None, list[RowError]]:
    """Validate one record (column name -> raw text). Returns the row, or None and its errors."""
    errors: list[RowError] = []

    def get(column: str) -> str:
        return values.get(column, "").strip()

    member_no = get("member_no")
    if not member_no:
        errors.append(RowError(line, "member_no", "empty member number"))
    elif not _MEMBER_NO.fullmatch(member_no):
        errors.append(
            RowError(line, "member_no", f"bad member number {member_no!r}: letters, digits and hyphens, at most 32")
        )
    first_name, last_name = get("first_name"), get("last_name")
    for column, name in (("first_name", first_name), ("last_name", last_name)):
        if not name:
            errors.append(RowError(line, column, "empty name"))
        elif len(name) > _NAME_MAX:
            errors.append(RowError(line, column, f"name longer than {_NAME_MAX} characters"))
    branch = get("branch")
    if not branch:
        errors.append(RowError(line, "branch", "empty branch"))
    elif len(branch) > _BRANCH_MAX:
        errors.append(RowError(line, "branch", f"branch longer than {_BRANCH_MAX} characters"))
    joined_on = _parse_date(get("joined_on"), "joined_on", line, errors)
    raw_status = get("status")
    status = raw_status.lower()
    if status not in STATUSES:
        expected = ", ".join(STATUSES)
        errors.append(RowError(line, "status", f"unknown status {raw_status!r}: expected one of {expected}"))
    dues_raw = get("dues_paid_until")
    dues = _parse_date(dues_raw, "dues_paid_until", line, errors) if dues_raw else None
    email = get("email")
    if email and not _EMAIL.fullmatch(email):
        errors.append(RowError(line, "email", f"bad email address {email!r}"))
    phone = get("phone")
    if phone and not _PHONE.fullmatch(phone):
        errors.append(RowError(line, "phone", f"bad phone number {phone!r}: digits, spaces, + - ( ), at most 32"))

    if errors:
        return None, errors
    return RosterRow(line, member_no, first_name, last_name, branch, joined_on, status, dues, email, phone), []


class RosterReader:
    """Iterates over a roster CSV given as a binary stream, one record at a time.

    Yields `(row, errors)` pairs: a valid `RosterRow` with no errors, or None with the row's errors.
    `bytes_read` and `rows_read` tell how far it has come, for a progress bar. Raises `HeaderError`
    at construction when the header is unusable.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self.bytes_read = 0
        self.rows_read = 0
        self._stream = stream
        self._undecodable: set[int] = set()
        self._reader = csv.reader(self._decoded_lines(), strict=True)
        self.columns = self._read_header()

    def _decoded_lines(self) -> Iterator[str]:
        # Decode line by line so that a byte that is not UTF-8 is reported on its own line, and the
        # rest of the file is still checked.
        for number, raw in enumerate(self._stream, start=1):
            self.bytes_read += len(raw)
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                self._undecodable.add(number)
                yield raw.decode("utf-8", "replace")

    def _read_header(self) -> list[str]:
        try:
            header = next(self._reader)
        except StopIteration:
            raise HeaderError("line 1: the file is empty; expected a header line") from None
        except csv.Error as exc:
            raise HeaderError(f"line 1: the header cannot be read: {exc}") from None
        if 1 in self._undecodable:
            raise HeaderError("line 1: the header is not UTF-8 text")
        columns = [name.strip().lower() for name in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        problems = []
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        if repeated:
            problems.append(f"repeated column(s) {', '.join(repeated)}")
        if problems:
            expected = ",".join(REQUIRED_COLUMNS) + " and optionally " + ",".join(OPTIONAL_COLUMNS)
            raise HeaderError(f"line 1: {'; '.join(problems)} (expected {expected})")
        return columns

    def __iter__(self) -> Iterator[tuple[RosterRow | None, list[RowError]]]:
        width = len(self.columns)
        last_line = self._reader.line_num
        while True:
            first_line = last_line + 1
            try:
                record = next(self._reader)
            except StopIteration:
                return
            except csv.Error as exc:
                last_line = self._reader.line_num
                self.rows_read += 1
                yield None, [RowError(first_line, "", f"malformed CSV: {exc}")]
                continue
            last_line = self._reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            self.rows_read += 1
            if self._undecodable and any(n in self._undecodable for n in range(first_line, last_line + 1)):
                yield None, [RowError(first_line, "", "not UTF-8 text")]
                continue
            if len(record) != width:
                yield None, [RowError(first_line, "", f"wrong column count: {len(record)} values, expected {width}")]
                continue
            yield parse_row(first_line, dict(zip(self.columns, record, strict=True)))
