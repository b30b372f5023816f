"""A ballot id is one ballot: the open box refuses an id the sealed table already holds.

The open box's primary key keeps an id once among open ballots; this trigger keeps an id that a
closed station sealed from entering the open box again, in the same statement as the insert. It
replaces the services' second look at the sealed table after each insert, so that a station's ballot
can be one statement. On PostgreSQL the check runs after the insert, once per statement, and in a
fresh snapshot (a trigger function's query sees what committed since its statement began): a close
that moved the same id out of another station's box while the insert waited for it is seen. Its plan
is kept with the function, so it is forced to look each id up by the sealed table's key whatever the
statistics said when it was first planned (a plan made while the table was empty would scan it).
"""

from django.db import migrations

_PG = [
    """CREATE OR REPLACE FUNCTION kalpi_ballot_in_one_box() RETURNS trigger LANGUAGE plpgsql
    SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off AS $$
    BEGIN
        -- The message names no id: the server logs it, with the time.
        IF EXISTS (SELECT 1 FROM kalpi_new_ballots n JOIN ballots_ballot b ON b.id = n.id) THEN
            RAISE EXCEPTION 'kalpi: a ballot id is one ballot: this one is already sealed'
                USING ERRCODE = 'unique_violation';
        END IF;
        RETURN NULL;
    END
    $$""",
    'CREATE OR REPLACE TRIGGER ballots_openballot_ballot_box_insert AFTER INSERT ON "ballots_openballot" '
    "REFERENCING NEW TABLE AS kalpi_new_ballots FOR EACH STATEMENT EXECUTE FUNCTION kalpi_ballot_in_one_box()",
    'ALTER TABLE "ballots_openballot" ENABLE ALWAYS TRIGGER ballots_openballot_ballot_box_insert',
]
_SQLITE = [
    'CREATE TRIGGER IF NOT EXISTS ballots_openballot_ballot_box_insert BEFORE INSERT ON "ballots_openballot" '
    'WHEN EXISTS (SELECT 1 FROM "ballots_ballot" WHERE "id" = NEW."id") '
    "BEGIN SELECT RAISE(ABORT, 'kalpi: the ballot is already sealed: a ballot id is one ballot'); END",
]
_PG_REVERSE = [
    'DROP TRIGGER IF EXISTS ballots_openballot_ballot_box_insert ON "ballots_openballot"',
    "DROP FUNCTION IF EXISTS kalpi_ballot_in_one_box()",
]
_SQLITE_REVERSE = ["DROP TRIGGER IF EXISTS ballots_openballot_ballot_box_insert"]


def _run(statements):
    def run(apps, schema_editor):
        for sql in statements[schema_editor.connection.vendor]:
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("ballots", "0007_open_ballot_box")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": _PG, "sqlite": _SQLITE}), _run({"postgresql": _PG_REVERSE, "sqlite": _SQLITE_REVERSE})
        ),
    ]
