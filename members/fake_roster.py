"""A made-up but realistic party roster, for the demo and the benchmarks. Deterministic by seed."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import TextIO

HEADER = ["member_no", "first_name", "last_name", "branch", "joined_on", "status", "dues_paid_until", "email", "phone"]

BRANCHES = [
    "tel-aviv", "jerusalem", "haifa", "beer-sheva", "rishon-lezion", "petah-tikva", "ashdod", "netanya",
    "holon", "bnei-brak", "bat-yam", "ramat-gan", "ashkelon", "rehovot", "herzliya", "kfar-saba",
    "hadera", "modiin", "nazareth", "lod", "ramla", "raanana", "nahariya", "tiberias", "eilat",
    "kibbutz-movement", "moshav-movement", "druze-sector",
]  # fmt: skip
# Bigger cities have bigger branches: weights roughly follow population.
_WEIGHTS = [40, 38, 28, 20, 18, 17, 16, 15, 14, 6, 10, 12, 10, 10, 8, 8, 7, 7, 6, 6, 5, 6, 5, 4, 3, 12, 10, 6]

FIRST_NAMES = [
    "Avi", "Yossi", "Moshe", "David", "Daniel", "Yael", "Noa", "Michal", "Tamar", "Shira", "Ronit", "Orna",
    "Eitan", "Omer", "Itai", "Amir", "Gil", "Dana", "Maya", "Lior", "Adi", "Ruth", "Sarah", "Rachel",
    "Yitzhak", "Shimon", "Ehud", "Amram", "Amnon", "Haim", "Nurit", "Zehava", "Merav", "Einat", "Hila",
    "Yusuf", "Ahmad", "Salim", "Rana", "Samira", "Nadia", "Dmitri", "Olga", "Svetlana", "Igor",
]  # fmt: skip
LAST_NAMES = [
    "Cohen", "Levi", "Mizrahi", "Peretz", "Biton", "Dahan", "Avraham", "Friedman", "Malka", "Azulay",
    "Katz", "Yosef", "David", "Amar", "Ohayon", "Hadad", "Gabay", "Ben-David", "Shapira", "Ben-Haim",
    "Herzog", "Mitzna", "Yachimovich", "Barak", "Rabin", "Shalom", "Golan", "Segal", "Weiss", "Klein",
    "Halabi", "Khoury", "Nasser", "Abu-Ras", "Ivanov", "Kogan", "Rosenberg", "Goldstein", "Alon", "Tal",
]  # fmt: skip
_STATUS = ["active"] * 90 + ["suspended"] * 2 + ["lapsed"] * 6 + ["resigned"] * 2
_EPOCH = date(1990, 1, 1)
_JOIN_SPAN = (date(2011, 8, 31) - _EPOCH).days


def roster_rows(
    count: int, *, seed: int = 2011, first_member_no: int = 100001, changed_every: int = 0
) -> Iterator[list[str]]:
    """Rows of a roster export. With `changed_every=k`, every k-th member differs (a corrected export)."""
    rng = random.Random(seed)
    for i in range(count):
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        branch = rng.choices(BRANCHES, _WEIGHTS)[0]
        joined = _EPOCH + timedelta(days=rng.randrange(_JOIN_SPAN))
        status = rng.choice(_STATUS)
        dues = joined + timedelta(days=365 * rng.randint(1, 25)) if rng.random() < 0.95 else None
        member_no = str(first_member_no + i)
        email = f"{first}.{last}.{member_no}@example.org".lower() if rng.random() < 0.6 else ""
        phone = f"05{rng.randint(0, 9)}-{rng.randint(1000000, 9999999)}" if rng.random() < 0.8 else ""
        if changed_every and i % changed_every == 0:
            # What a corrected export changes: contact details, a status, dues paid.
            phone = f"05{(i // changed_every) % 10}-{1000000 + i % 9000000}"
            status = "lapsed" if status == "active" else "active"
            dues = (dues or joined) + timedelta(days=365)
        yield [
            member_no,
            first,
            last,
            branch,
            joined.isoformat(),
            status,
            dues.isoformat() if dues else "",
            email,
            phone,
        ]


def write_roster_csv(out: TextIO, count: int, **kwargs) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(roster_rows(count, **kwargs))


def roster_csv_bytes(count: int, **kwargs) -> bytes:
    buffer = io.StringIO()
    write_roster_csv(buffer, count, **kwargs)
    return buffer.getvalue().encode("utf-8")
