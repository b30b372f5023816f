"""The open ballot box: ballots wait in `OpenBallot` while their station is open.

A table keeps rows in the order they arrive, and that order would link each ballot to the check-in
before it; a station's close moves its ballots to `Ballot` in id order. On SQLite the new table is
rebuilt WITHOUT ROWID, as the ballots table was (0002), so it is kept in id order from the start.
"""

import django.db.models.deletion
from django.db import migrations, models


def open_ballots_without_rowid(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    table = "ballots_openballot"
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
        (create,) = cursor.fetchone()
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s AND sql IS NOT NULL", [table]
        )
        indexes = [row[0] for row in cursor.fetchall()]
        cursor.execute(create.replace(f'"{table}"', f'"{table}_new"', 1) + " WITHOUT ROWID")
        cursor.execute(f'INSERT INTO "{table}_new" SELECT * FROM "{table}"')
        cursor.execute(f'DROP TABLE "{table}"')
        cursor.execute(f'ALTER TABLE "{table}_new" RENAME TO "{table}"')
        for index in indexes:
            cursor.execute(index)


class Migration(migrations.Migration):
    dependencies = [("ballots", "0006_publication")]

    operations = [
        migrations.CreateModel(
            name="OpenBallot",
            fields=[
                ("id", models.UUIDField(primary_key=True, serialize=False)),
                ("choice", models.CharField(max_length=64)),
                (
                    "round",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="ballots.round"
                    ),
                ),
                (
                    "station",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="ballots.station"
                    ),
                ),
            ],
        ),
        migrations.RunPython(open_ballots_without_rowid, migrations.RunPython.noop),
    ]
