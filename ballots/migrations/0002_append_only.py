"""Check-ins, ballots, returns, resolutions and seals can only be added to, never changed or removed.

On SQLite the ballots table is first rebuilt WITHOUT ROWID: rows are then kept in the order of their
random ids, not in the order they arrived, which would link each ballot to the check-in before it.
"""

from django.db import migrations

from audit.immutability import AppendOnly


def ballots_without_rowid(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ballots_ballot'")
        (create,) = cursor.fetchone()
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ballots_ballot' AND sql IS NOT NULL"
        )
        indexes = [row[0] for row in cursor.fetchall()]
        cursor.execute(create.replace('"ballots_ballot"', '"ballots_ballot_new"', 1) + " WITHOUT ROWID")
        cursor.execute('INSERT INTO "ballots_ballot_new" SELECT * FROM "ballots_ballot"')
        cursor.execute('DROP TABLE "ballots_ballot"')
        cursor.execute('ALTER TABLE "ballots_ballot_new" RENAME TO "ballots_ballot"')
        for index in indexes:
            cursor.execute(index)


class Migration(migrations.Migration):
    dependencies = [("ballots", "0001_election_day"), ("audit", "0002_append_only")]

    operations = [
        migrations.RunPython(ballots_without_rowid, migrations.RunPython.noop),
        AppendOnly("checkin"),
        AppendOnly("ballot"),
        AppendOnly("stationreturn"),
        AppendOnly("returnresolution"),
        AppendOnly("seal"),
    ]
