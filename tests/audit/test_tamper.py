"""Someone with database rights who gets past the triggers is caught by verify_audit and by the
standalone verifier on an export, which name the first bad index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from audit import services
from audit.models import Action
from audit.verification import verify_database
from tests.conftest import is_postgres

MAIN = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def log():
    """Twenty entries; checkpoints at 8, 15 and 20."""
    for batch in (8, 7, 5):
        with transaction.atomic():
            for i in range(batch):
                services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={"n": i})
        services.integrate_pending()
        services.sign_checkpoint()
    assert verify_database().ok


def as_superuser(*statements: str) -> None:
    """What an intruder with the owner's or a superuser's rights can do: switch the triggers off."""
    with transaction.atomic(), connection.cursor() as cursor:
        if is_postgres():
            tables = ("audit_entry", "audit_leaf")
            # Key checks run per statement, so no deferred trigger event blocks ALTER TABLE.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for table in tables:
                cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for statement in statements:
                cursor.execute(statement)
            for table in tables:
                for kind in ("row", "stmt"):
                    cursor.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {table}_append_only_{kind}")
        else:
            cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%append_only%'")
            triggers = cursor.fetchall()
            for name, _ in triggers:
                cursor.execute(f"DROP TRIGGER {name}")
            for statement in statements:
                cursor.execute(statement)
            for _, sql in triggers:
                cursor.execute(sql)


def entry_id_at(index: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute('SELECT entry_id FROM audit_leaf WHERE "index" = %s', [index])
        return cursor.fetchone()[0]


def verify_export(tmp_path: Path) -> subprocess.CompletedProcess:
    bundle = tmp_path / "bundle"
    call_command("export_audit", str(bundle))
    return subprocess.run(
        [sys.executable, "-m", "audit.verify", str(bundle)], cwd=MAIN, capture_output=True, text=True, timeout=60
    )


def test_an_untouched_log_verifies_in_the_database_and_in_an_export(log, tmp_path, capsys):
    call_command("verify_audit")
    assert capsys.readouterr().out.startswith("OK: 20 entries, 3 checkpoints, latest size 20")
    result = verify_export(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 20 entries")


def test_an_edited_entry_is_named(log, tmp_path):
    payload = json.dumps({"n": 666})
    as_superuser(f"UPDATE audit_entry SET payload = '{payload}' WHERE id = {entry_id_at(11)}")
    report = verify_database()
    assert not report.ok and report.first_bad_index == 11
    with pytest.raises(CommandError, match="entry 11"):
        call_command("verify_audit")
    result = verify_export(tmp_path)
    assert result.returncode == 1 and "entry 11" in result.stderr


def test_a_deleted_entry_is_named(log, tmp_path):
    victim = entry_id_at(5)
    as_superuser(f'DELETE FROM audit_leaf WHERE "index" = 5', f"DELETE FROM audit_entry WHERE id = {victim}")  # noqa: F541
    report = verify_database()
    assert not report.ok and report.first_bad_index == 5
    result = verify_export(tmp_path)
    assert result.returncode == 1
    assert "index 6 where 5 was expected: entries are missing" in result.stderr


def test_two_reordered_entries_are_named(log, tmp_path):
    first, second = entry_id_at(3), entry_id_at(4)
    # Swap what the two entries say: the log now tells events 3 and 4 in the other order.
    as_superuser(
        f"UPDATE audit_entry SET payload = (SELECT payload FROM audit_entry WHERE id = {second}) WHERE id = {first}",
        f"UPDATE audit_entry SET payload = '{json.dumps({'n': 3})}' WHERE id = {second}",
    )
    report = verify_database()
    assert not report.ok and report.first_bad_index == 3
    result = verify_export(tmp_path)
    assert result.returncode == 1 and "entry 3" in result.stderr


def test_a_rewritten_leaf_hash_with_its_entry_is_still_caught_by_the_signed_root(log):
    # The intruder edits an entry and recomputes its stored leaf hash: only the checkpoints stand.
    from audit import merkle
    from audit.canonical import canonical_bytes
    from audit.models import Entry

    victim = Entry.objects.get(id=entry_id_at(2))
    victim.payload = {"n": 999}
    forged = merkle.leaf_hash(canonical_bytes(victim.document())).hex()
    literal = f"'\\x{forged}'::bytea" if is_postgres() else f"X'{forged}'"
    as_superuser(
        f"UPDATE audit_entry SET payload = '{json.dumps(victim.payload)}' WHERE id = {victim.id}",
        f'UPDATE audit_leaf SET hash = {literal} WHERE "index" = 2',
    )
    report = verify_database()
    assert not report.ok and report.failed_checkpoint is not None
    assert "size 8" in report.problem
