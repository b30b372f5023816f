"""verify_database on PostgreSQL reads the entries with COPY, hashes them from text columns and splits the
leaves between processes: it must say exactly what the entry-by-entry verifier (verify_log over the
ORM's rows) says, for an honest log and for every kind of tampering."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection, transaction

from audit import keys, merkle, services, verification
from audit.canonical import canonical_bytes
from audit.models import Action, Entry, PendingEntry, entry_document
from audit.verification import verify_database
from audit.verify import LeafBatch, verify_leaves, verify_log
from tests.audit.test_tamper import as_superuser, entry_id_at
from tests.conftest import is_postgres

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the workers read on their own connections
    pytest.mark.skipif(not is_postgres(), reason="the COPY path is PostgreSQL's; SQLite reads through the ORM"),
]

# Payloads and actors that exercise JSON escapes, COPY escapes (tab, newline, backslash) and UTF-8.
TRICKY = [
    {"text": 'quote " backslash \\ tab \t newline \n return \r'},
    {"control": "\x01\x02\x1f\x7f", "separators": "\u2028\u2029", "nul-ish": "\\N", "octal": "\\101"},
    {"hebrew": "קלפי", "emoji": "🗳️", "nested": {"b": [1, -2, True, False, None, [], {}], "a": ""}},
    {"big": 10**30, "negative": -(10**20), "zero": 0, "keys": {"Z": 1, "a": 2, "é": 3, "10": 4, "9": 5}},
    {"list": [[[["deep"]]]], "empty": {}},
]
ACTORS = ["rina", "S001", "tab\there", "back\\slash", 'quo"te', "קלפי", "new\nline"]
ZONES = [UTC, ZoneInfo("Asia/Jerusalem"), ZoneInfo("America/St_Johns"), timezone(timedelta(hours=-11, minutes=-30))]


def random_moment(rng: random.Random) -> datetime:
    year = rng.choice([1, 2, 99, 999, 1000, 1969, 1970, 2011, 2026, 9999, rng.randint(2, 9998)])
    microsecond = rng.choice([0, 0, 1, 999999, rng.randint(0, 999999)])
    clock = (rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59), microsecond)
    moment = datetime(year, rng.randint(1, 12), rng.randint(1, 28), *clock, tzinfo=UTC)
    # Stay inside the years 1..9999 in every zone.
    moment = min(max(moment, datetime(1, 1, 2, tzinfo=UTC)), datetime(9999, 12, 30, tzinfo=UTC))
    return moment.astimezone(rng.choice(ZONES))


def append(entries: list[tuple[str, str, object, datetime]]) -> None:
    """Entries with the given columns (created_at included), integrated, then a checkpoint."""
    with transaction.atomic():
        created = Entry.objects.bulk_create(
            Entry(action=action, actor=actor, payload=payload, created_at=at) for action, actor, payload, at in entries
        )
        PendingEntry.objects.bulk_create(PendingEntry(entry_id=e.id) for e in created)
    services.integrate_pending()
    services.sign_checkpoint(force=True)


def entry_by_entry():
    """What verify_database said before the COPY path: verify_log over the ORM's rows, entry by entry."""
    recount = verification.Recount(
        verification._published_documents(), keys.verifier(), verification._checkpoint_roots()
    )
    report = verify_log(
        verification._entries(None), verification._checkpoints(), keys.verifier(), settings.KALPI_LOG_ORIGIN,
        checks=[recount],
    )  # fmt: skip
    if report.ok and recount.summary():
        report.notes.append(recount.summary())
    return report


MODES = {
    "one process": dict(workers=0, share=1.0, batch=5000),
    "one process, batches of 3": dict(workers=0, share=1.0, batch=3),
    "a worker from leaf 5, batches of 4": dict(workers=1, share=0.25, batch=4),
    "a worker from leaf 11": dict(workers=1, share=0.55, batch=5000),
    "two workers, batches of 2": dict(workers=2, share=0.3, batch=2),
    "a worker for everything": dict(workers=1, share=0.0, batch=5000),
}


def fast(monkeypatch, mode: dict):
    monkeypatch.setattr(verification, "PARENT_SHARE", mode["share"])
    monkeypatch.setattr(verification, "_BATCH", mode["batch"])
    return verify_database(workers=mode["workers"])


def same_report(monkeypatch) -> None:
    expected = entry_by_entry()
    for name, mode in MODES.items():
        report = fast(monkeypatch, mode)
        assert (report.ok, report.problem, report.first_bad_index, report.failed_checkpoint) == (
            expected.ok, expected.problem, expected.first_bad_index, expected.failed_checkpoint,
        ), name  # fmt: skip
        assert report.summary() == expected.summary(), name
        assert report.entries == expected.entries, name


@pytest.fixture
def log():
    """Twenty entries of every sort, checkpoints at 8, 15 and 20."""
    rng = random.Random(20111)
    rows = [
        (rng.choice([Action.ROSTER_IMPORTED, Action.VOTER_CHECKED_IN, "unknown.action"]), rng.choice(ACTORS),
         rng.choice([*TRICKY, {"n": i}]), random_moment(rng))
        for i in range(20)
    ]  # fmt: skip
    for start, end in ((0, 8), (8, 15), (15, 20)):
        append(rows[start:end])


def test_an_honest_log_verifies_the_same_in_every_mode(log, monkeypatch):
    assert entry_by_entry().ok
    same_report(monkeypatch)


def test_the_leaves_are_those_of_entry_document_byte_for_byte():
    """The server's timestamp and the payload's JSON text give exactly entry_document's canonical bytes."""
    rng = random.Random(9162)
    for _ in range(4):
        append(
            [(Action.ROSTER_IMPORTED, rng.choice(ACTORS), rng.choice(TRICKY), random_moment(rng)) for _ in range(250)]
        )
    rows = Entry.objects.order_by("leaf__index").values_list(
        "leaf__index", "id", "action", "actor", "payload", "created_at"
    )
    expected = {
        index: entry_document(id_, action, actor, payload, at) for index, id_, action, actor, payload, at in rows
    }
    assert len(expected) == 1000
    assert any(d["created_at"].endswith(".000000Z") for d in expected.values())
    assert any(len(d["created_at"]) < 27 or d["created_at"].startswith("0") for d in expected.values())  # year < 1000
    batches = list(
        verification._leaf_batches(
            verification._copy_out(connection.connection.pgconn, verification.leaves_sql()), 0, lambda action: True
        )
    )
    documents = {index: document for batch in batches for index, document in batch.entries}
    hashes = b"".join(batch.hashes for batch in batches)
    assert documents == expected
    for index, document in expected.items():
        assert canonical_bytes(documents[index]) == canonical_bytes(document)
        assert hashes[32 * index : 32 * index + 32] == merkle.leaf_hash(canonical_bytes(document))
    assert all(batch.stored_mismatch is None for batch in batches)


def test_the_timestamp_is_formatted_as_entry_document_does():
    rng = random.Random(1)
    moments = [random_moment(rng) for _ in range(3000)]
    moments += [
        datetime(1, 1, 2, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),
    ]
    sql = verification.leaves_sql()
    expression = sql[sql.index("CASE") : sql.index(" END ") + 4].replace("e.", "")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {expression} FROM unnest(%s::timestamptz[]) AS t(created_at)", [moments])
        texts = [row[0] for row in cursor.fetchall()]
    for moment, text in zip(moments, texts, strict=True):
        if text[0] == "0" and not verification._YEAR_PADDED:
            text = text[:4].lstrip("0") + text[4:]
        assert text == entry_document(1, "a", "b", {}, moment)["created_at"], moment


ESCAPED = json.dumps({"t": 'a\tb \\ "q"'})
TAMPERING = {
    "an edited payload": lambda: [
        f"UPDATE audit_entry SET payload = '{json.dumps({'n': 666})}' WHERE id = {entry_id_at(11)}"
    ],
    "an edited actor": lambda: [f"UPDATE audit_entry SET actor = 'mallory' WHERE id = {entry_id_at(4)}"],
    "a timestamp moved by a microsecond": lambda: [
        f"UPDATE audit_entry SET created_at = created_at + interval '1 microsecond' WHERE id = {entry_id_at(17)}"
    ],
    "a float in a payload": lambda: [
        f"UPDATE audit_entry SET payload = '{{\"share\": 0.5}}' WHERE id = {entry_id_at(9)}"
    ],
    "a float in the first entry": lambda: [f"UPDATE audit_entry SET payload = '[1, 2.0]' WHERE id = {entry_id_at(0)}"],
    "an escaped payload edited": lambda: [f"UPDATE audit_entry SET payload = '{ESCAPED}' WHERE id = {entry_id_at(13)}"],
    "a deleted entry": lambda: [
        'DELETE FROM audit_leaf WHERE "index" = 5',
        f"DELETE FROM audit_entry WHERE id = {entry_id_at(5)}",
    ],
    "a deleted entry at a worker's start": lambda: [
        'DELETE FROM audit_leaf WHERE "index" = 11',
        f"DELETE FROM audit_entry WHERE id = {entry_id_at(11)}",
    ],
    "the last entries deleted": lambda: ['DELETE FROM audit_leaf WHERE "index" >= 18'],
    "a stored leaf hash altered": lambda: ["UPDATE audit_leaf SET hash = sha256('x') WHERE \"index\" = 6"],
    "an entry and its leaf hash rewritten": lambda: [
        f"UPDATE audit_entry SET actor = 'mallory' WHERE id = {entry_id_at(2)}",
        "UPDATE audit_leaf SET hash = sha256('x') WHERE \"index\" = 2",
    ],
    "a year out of range": lambda: [
        f"UPDATE audit_entry SET created_at = '10000-01-01 00:00:00+00' WHERE id = {entry_id_at(19)}"
    ],
}


@pytest.mark.parametrize("tampering", [k for k in TAMPERING if k != "a year out of range"])
def test_tampering_is_named_as_entry_by_entry(log, monkeypatch, tampering):
    as_superuser(*TAMPERING[tampering]())
    expected = entry_by_entry()
    assert not expected.ok
    same_report(monkeypatch)


def test_a_timestamp_python_cannot_hold_is_a_problem_not_a_crash(log, monkeypatch):
    as_superuser(*TAMPERING["a year out of range"]())
    for name, mode in MODES.items():
        report = fast(monkeypatch, mode)
        assert not report.ok and report.first_bad_index == 19, name
        assert "entry 19: created_at is outside the years 1 to 9999" in report.problem, name


def test_a_check_without_wants_is_fed_every_entry_and_one_with_wants_only_those_it_wants(log):
    class Every:
        def __init__(self):
            self.seen = []

        def entry(self, index, entry):
            self.seen.append((index, entry["action"]))

        def finish(self):
            pass

    class Some(Every):
        def wants(self, action):
            return action == "unknown.action"

    every, some = Every(), Some()
    checks = [every, some]
    checkpoints = list(verification._checkpoints())
    batches = verification._database_leaves(checks, None, 0)
    report = verify_leaves(batches, checkpoints, keys.verifier(), settings.KALPI_LOG_ORIGIN, checks=checks)
    assert report.ok, report.problem
    actions = list(Entry.objects.order_by("leaf__index").values_list("leaf__index", "action"))
    assert every.seen == actions
    assert some.seen == [(i, a) for i, a in actions if a == "unknown.action"] and some.seen


def test_recount_wants_exactly_the_actions_it_handles():
    recount = verification._Recount([], keys.verifier(), {})
    handled = {a for a in Action.values if callable(getattr(recount, "_" + a.replace(".", "_"), None))}
    assert {a for a in Action.values if recount.wants(a)} == handled
    assert Action.VOTER_CHECKED_IN not in handled and Action.STATION_SEALED in handled
    assert not recount.wants("no.such_action")


def test_a_batch_that_does_not_start_where_the_tree_ends_is_named(log):
    checkpoints = list(verification._checkpoints())
    batch = LeafBatch(1, merkle.leaf_hash(b"x"))
    report = verify_leaves([batch], checkpoints, keys.verifier(), settings.KALPI_LOG_ORIGIN)
    assert not report.ok and report.first_bad_index == 0
    assert "entry 1 where entry 0 was expected" in report.problem


def test_copy_escapes_are_undone():
    unescape = verification._copy_unescape
    assert unescape("\\N") is None
    assert unescape("a\\tb\\nc\\\\d\\re") == "a\tb\nc\\d\re"
    assert unescape("\\b\\f\\v\\101\\x41\\q") == "\b\f\vAAq"


def test_the_session_settings_are_restored_on_this_connection(log):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit'), current_setting('max_parallel_workers_per_gather')")
        before = cursor.fetchone()
        assert verify_database(workers=1).ok and verify_database(workers=0).ok
        cursor.execute("SELECT current_setting('jit'), current_setting('max_parallel_workers_per_gather')")
        assert cursor.fetchone() == before
