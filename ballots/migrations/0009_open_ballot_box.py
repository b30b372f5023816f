"""One index entry fewer per check-in and per ballot, and one index for the box a station's close empties.

- Check-ins: the index on round alone repeated the first column of the unique (round, member).
- Open ballots: the close reads and deletes the box of one station in one round; one (round, station)
  index serves it, where a ballot wrote an entry in an index on each column.

Only the indexes change, by name, on both databases. Django's own AlterField would rebuild both
tables on SQLite, which drops their append-only triggers and the open box's WITHOUT ROWID layout,
and would drop and re-check the foreign keys on PostgreSQL.
"""

import django.db.models.deletion
from django.db import migrations, models

_OLD = {
    "ballots_checkin_round_id_4af682d4": ("ballots_checkin", "round_id"),
    "ballots_openballot_round_id_964bc350": ("ballots_openballot", "round_id"),
    "ballots_openballot_station_id_4e52b418": ("ballots_openballot", "station_id"),
}
_NEW = 'CREATE INDEX "open_ballot_box" ON "ballots_openballot" ("round_id", "station_id")'

FORWARD = [f'DROP INDEX IF EXISTS "{name}"' for name in _OLD] + [_NEW]
BACKWARD = ['DROP INDEX IF EXISTS "open_ballot_box"'] + [
    f'CREATE INDEX "{name}" ON "{table}" ("{column}")' for name, (table, column) in _OLD.items()
]


def _fk(to: str, related_name: str) -> models.ForeignKey:
    return models.ForeignKey(
        db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name=related_name, to=to
    )


class Migration(migrations.Migration):
    dependencies = [
        ("ballots", "0008_ballot_in_one_box"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(FORWARD, BACKWARD)],
            state_operations=[
                migrations.AlterField(model_name="checkin", name="round", field=_fk("ballots.round", "checkins")),
                migrations.AlterField(model_name="openballot", name="round", field=_fk("ballots.round", "+")),
                migrations.AlterField(model_name="openballot", name="station", field=_fk("ballots.station", "+")),
                migrations.AddIndex(
                    model_name="openballot",
                    index=models.Index(fields=["round", "station"], name="open_ballot_box"),
                ),
            ],
        ),
    ]
