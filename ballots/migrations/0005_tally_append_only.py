"""Tallies and certifications can only be added to, never changed or removed.

Seals again too: adding their audit entry rebuilt the table on SQLite, which drops triggers.
"""

from django.db import migrations

from audit.immutability import AppendOnly


class Migration(migrations.Migration):
    dependencies = [("ballots", "0004_tally")]

    operations = [AppendOnly("seal"), AppendOnly("tally"), AppendOnly("certification")]
