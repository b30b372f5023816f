"""Append-only in the database: UPDATE, DELETE, TRUNCATE and INSERT OR REPLACE are refused, ORM or raw SQL."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from audit import services
from audit.models import Action, Checkpoint, Entry, Leaf, Node
from tests.conftest import is_postgres


@pytest.fixture
def log(db):
    with transaction.atomic():
        for i in range(4):
            services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={"n": i})
    services.integrate_pending()
    services.sign_checkpoint(force=True)
    assert Node.objects.exists() and Checkpoint.objects.exists()


def refused(statement, *params):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, params)


MODELS = [Entry, Leaf, Node, Checkpoint]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_the_orm_cannot_change_or_delete_a_row(log, model):
    row = model.objects.first()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        row.save()  # an UPDATE of an existing row
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        model.objects.all().update(**{_some_field(model): _some_value(model)})
    # Deleting an entry is refused by its leaf's protected key before the trigger is reached.
    with pytest.raises(IntegrityError, match=r"append-only|protected foreign keys"), transaction.atomic():
        row.delete()
    with pytest.raises(IntegrityError, match=r"append-only|protected foreign keys"), transaction.atomic():
        model.objects.all().delete()
    assert model.objects.count() > 0


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_raw_sql_cannot_update_delete_or_truncate(log, model):
    table = model._meta.db_table
    refused(f'UPDATE "{table}" SET "{_some_column(model)}" = "{_some_column(model)}"')
    refused(f'DELETE FROM "{table}"')
    if is_postgres():
        # The rows were written in this test's transaction; let their deferred key checks run first,
        # or PostgreSQL refuses TRUNCATE for that reason before the trigger is reached.
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        refused(f'TRUNCATE "{table}" CASCADE')
        # Replication mode switches ordinary triggers off, not these (ENABLE ALWAYS).
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(f'DELETE FROM "{table}"')


def test_sqlite_refuses_insert_or_replace(log):
    if is_postgres():
        pytest.skip("INSERT OR REPLACE is SQLite's")
    entry = Entry.objects.first()
    refused(
        'INSERT OR REPLACE INTO "audit_entry" (id, action, actor, payload, created_at) VALUES (%s, %s, %s, %s, %s)',
        entry.id, "roster.imported", "mallory", "{}", "2011-09-12 07:00:00",
    )  # fmt: skip
    refused('REPLACE INTO "audit_leaf" ("index", entry_id, hash) SELECT "index", entry_id, hash FROM "audit_leaf"')
    assert Entry.objects.get(id=entry.id).actor == "rina"


def test_new_rows_can_still_be_added(log):
    with transaction.atomic():
        services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={"n": 99})
    assert services.integrate_pending() == 1


def _some_field(model) -> str:
    return {Entry: "actor", Leaf: "hash", Node: "hash", Checkpoint: "note"}[model]


def _some_value(model):
    return {Entry: "mallory", Leaf: b"x" * 32, Node: b"x" * 32, Checkpoint: "forged"}[model]


def _some_column(model) -> str:
    return model._meta.get_field(_some_field(model)).column


APPEND_ONLY_TABLES = [
    "audit_entry", "audit_leaf", "audit_node", "audit_checkpoint", "ballots_checkin", "ballots_ballot",
    "ballots_stationreturn", "ballots_returnresolution", "ballots_seal", "ballots_tally", "ballots_certification",
]  # fmt: skip


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_every_append_only_table_has_its_triggers_after_all_migrations(db, table):
    # A migration altering an append-only model rebuilds the table on SQLite and drops its triggers;
    # this catches one that forgot to apply AppendOnly again.
    with connection.cursor() as cursor:
        if is_postgres():
            cursor.execute(
                "SELECT t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "WHERE c.relname = %s AND t.tgname LIKE %s",
                [table, "%append_only%"],
            )
            found = {name: enabled for name, enabled in cursor.fetchall()}
            assert found == {f"{table}_append_only_row": "A", f"{table}_append_only_stmt": "A"}
        else:
            cursor.execute(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s AND name LIKE %s",
                [table, "%append_only%"],
            )
            found = {row[0] for row in cursor.fetchall()}
            assert {f"{table}_append_only_update", f"{table}_append_only_delete"} <= found
