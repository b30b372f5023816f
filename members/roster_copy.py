"""The fast path of the roster import: plain rows go to PostgreSQL's COPY as the file's own bytes.

`RosterReader` parses and checks every row in Python objects, which is most of an import's time
(9 s of a 1,000,000-row file). Most exports are plain: no quoting, no stray whitespace, lower-case
statuses. For those, one regular expression per chunk of the file (built from the header's columns)
proves that every line is a row `roster_csv.parse_row` accepts unchanged, and the bytes go to the
server as they are, into typed staging columns. The first chunk that is not plainly good stops the
fast path, and the import reads the whole file again with `RosterReader`, which names every bad row:
every error message still comes from one place, and the fast path only decides "plainly good".

What the expression accepts, column by column, is a subset of what `parse_row` accepts and leaves
unchanged (no quotes, commas or line breaks inside a value, so both CSV readers split it alike):
- member number `[A-Za-z0-9][A-Za-z0-9-]{0,31}`, as in `parse_row`;
- names 1 to 100 characters, branch 1 to 64, with no whitespace at either end (what `str.strip()`
  removes is exactly what `\\s` matches);
- dates `YYYY-MM-DD` in ASCII digits; an impossible date (30 February, year 0) is refused by the
  server's date input as by `date.fromisoformat`, and that refusal stops the fast path too;
- status in lower case; email in visible ASCII of the form `parse_row` checks; phone as `parse_row`
  checks it, with no space at either end.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import BinaryIO

CHUNK = 1 << 20
DATE_COLUMNS = ("joined_on", "dues_paid_until")

_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"


def _text(longest: int) -> str:
    # No quote, comma or line break anywhere; no whitespace (and no NUL) at either end.
    return rf'[^\s,"\x00](?:[^,"\r\n\x00]{{0,{longest - 2}}}[^\s,"\x00])?'


# Visible ASCII but for the quote, the comma and @: a subset of [^@\s] that needs no CSV quoting.
_EMAIL_CHAR = r"[!#-+\--?A-~]"
FIELDS = {
    "member_no": r"[A-Za-z0-9][A-Za-z0-9-]{0,31}",
    "first_name": _text(100),
    "last_name": _text(100),
    "branch": _text(64),
    "joined_on": _DATE,
    "status": "(?:active|suspended|lapsed|resigned)",
    "dues_paid_until": f"(?:{_DATE})?",
    "email": rf"(?:{_EMAIL_CHAR}{{1,64}}@{_EMAIL_CHAR}+\.{_EMAIL_CHAR}+)?",
    "phone": r"(?:[0-9+()-][0-9+() -]{1,30}[0-9+()-])?",
}


class NotPlain(Exception):
    """The file has something the fast path does not pass through unchanged."""


def plain_rows(columns: list[str]) -> re.Pattern[str]:
    """Matches a run of whole plain lines of a file with these columns (in the header's order)."""
    row = ",".join(FIELDS[c] for c in columns) + r"\r?\n"
    return re.compile(f"(?:{row})*")


def plain_chunks(stream: BinaryIO, columns: list[str], *, on_chunk: Callable[[bytes], None]) -> Iterator[bytes]:
    """The file after its header, in chunks that end at a line end, each proven plain.

    Raises NotPlain at the first chunk that is not (a quoted value, a value to trim, bytes that are not
    UTF-8, a blank line, a wrong column count, anything else `plain_rows` does not match).
    """
    pattern = plain_rows(columns)
    while chunk := stream.read(CHUNK):
        if not chunk.endswith(b"\n"):
            chunk += stream.readline()
        on_chunk(chunk)
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise NotPlain("not UTF-8") from None
        if not text.endswith("\n"):
            if text.endswith("\r"):
                raise NotPlain("a line that ends in a carriage return alone")
            text += "\n"  # the last line of a file may lack its line end
        if pattern.fullmatch(text) is None:
            raise NotPlain("a line that is not plainly good")
        yield chunk
