"""Append-only tables: a migration operation that installs triggers refusing UPDATE, DELETE, TRUNCATE.

PostgreSQL gets a row trigger (UPDATE, DELETE) and a statement trigger (TRUNCATE), both `ENABLE
ALWAYS` so that `session_replication_role = replica` does not switch them off. SQLite gets BEFORE
UPDATE and BEFORE DELETE triggers plus a BEFORE INSERT guard against `INSERT OR REPLACE`, which
deletes the old row without firing delete triggers (unless recursive triggers are on). Triggers stop
the application and mistakes; the table's owner or a superuser can still remove them, which is what
the signed checkpoints kept outside the database are for.

Any app's migration can use it: `AppendOnly("ballot")`. It is idempotent, and must be applied
again after any migration that alters an append-only model: on SQLite, Django alters a table by
rebuilding it, which drops its triggers (tests/audit/test_immutability.py checks every table).
"""

from __future__ import annotations

from django.db import migrations

TRIGGER_MARK = "append_only"
_PG_FUNCTION = "kalpi_refuse_change"


def _pg_function_sql() -> str:
    # restrict_violation (23001) reaches Django as an IntegrityError, like any other broken rule.
    return f"""
        CREATE OR REPLACE FUNCTION {_PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'kalpi: % on % refused: the table is append-only', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'restrict_violation';
        END
        $$"""


def forward_sql(vendor: str, table: str, unique_columns: list[list[str]]) -> list[str]:
    """Statements that make `table` append-only on this database."""
    if vendor == "postgresql":
        row, statement = f"{table}_{TRIGGER_MARK}_row", f"{table}_{TRIGGER_MARK}_stmt"
        return [
            _pg_function_sql(),
            f'CREATE OR REPLACE TRIGGER {row} BEFORE UPDATE OR DELETE ON "{table}" '
            f"FOR EACH ROW EXECUTE FUNCTION {_PG_FUNCTION}()",
            f'CREATE OR REPLACE TRIGGER {statement} BEFORE TRUNCATE ON "{table}" '
            f"FOR EACH STATEMENT EXECUTE FUNCTION {_PG_FUNCTION}()",
            f'ALTER TABLE "{table}" ENABLE ALWAYS TRIGGER {row}',
            f'ALTER TABLE "{table}" ENABLE ALWAYS TRIGGER {statement}',
        ]
    if vendor == "sqlite":
        message = f"kalpi: the table {table} is append-only"
        exists = " OR ".join(
            f'EXISTS (SELECT 1 FROM "{table}" WHERE ' + " AND ".join(f'"{c}" = NEW."{c}"' for c in columns) + ")"
            for columns in unique_columns
        )
        statements = [
            f'CREATE TRIGGER IF NOT EXISTS {table}_{TRIGGER_MARK}_update BEFORE UPDATE ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, '{message}: UPDATE refused'); END",
            f'CREATE TRIGGER IF NOT EXISTS {table}_{TRIGGER_MARK}_delete BEFORE DELETE ON "{table}" '
            f"BEGIN SELECT RAISE(ABORT, '{message}: DELETE refused'); END",
        ]
        if exists:
            statements.append(
                f'CREATE TRIGGER IF NOT EXISTS {table}_{TRIGGER_MARK}_replace BEFORE INSERT ON "{table}" WHEN {exists} '
                f"BEGIN SELECT RAISE(ABORT, '{message}: INSERT OR REPLACE refused'); END"
            )
        return statements
    raise NotImplementedError(f"append-only tables are not implemented for {vendor}")


def backward_sql(vendor: str, table: str) -> list[str]:
    if vendor == "postgresql":
        return [
            f'DROP TRIGGER IF EXISTS {table}_{TRIGGER_MARK}_row ON "{table}"',
            f'DROP TRIGGER IF EXISTS {table}_{TRIGGER_MARK}_stmt ON "{table}"',
        ]
    return [f"DROP TRIGGER IF EXISTS {table}_{TRIGGER_MARK}_{kind}" for kind in ("update", "delete", "replace")]


def unique_column_sets(model) -> list[list[str]]:
    """The primary key and every unconditional unique field or constraint, as column lists."""
    meta = model._meta
    sets = [[meta.pk.column]]
    sets += [[f.column] for f in meta.local_fields if f.unique and not f.primary_key]
    for constraint in meta.constraints:
        fields = getattr(constraint, "fields", None)
        if (
            fields
            and getattr(constraint, "condition", None) is None
            and type(constraint).__name__ == "UniqueConstraint"
        ):
            sets.append([meta.get_field(name).column for name in fields])
    return sets


class AppendOnly(migrations.operations.base.Operation):
    """Make a model's table append-only (see the module docstring). Reversible."""

    reduces_to_sql = True
    reversible = True

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name

    def state_forwards(self, app_label, state):
        pass  # triggers are not part of Django's model state

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)
        vendor = schema_editor.connection.vendor
        for sql in forward_sql(vendor, model._meta.db_table, unique_column_sets(model)):
            schema_editor.execute(sql, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        for sql in backward_sql(schema_editor.connection.vendor, model._meta.db_table):
            schema_editor.execute(sql, params=None)

    def describe(self) -> str:
        return f"Make {self.model_name} append-only"

    def deconstruct(self):
        return self.__class__.__name__, [self.model_name], {}

    @property
    def migration_name_fragment(self) -> str:
        return f"{self.model_name.lower()}_append_only"
