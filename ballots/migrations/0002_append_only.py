"""Check-ins, ballots, returns, resolutions and seals can only be added to, never changed or removed."""

from django.db import migrations

from audit.immutability import AppendOnly


class Migration(migrations.Migration):
    dependencies = [("ballots", "0001_election_day"), ("audit", "0002_append_only")]

    operations = [
        AppendOnly("checkin"),
        AppendOnly("ballot"),
        AppendOnly("stationreturn"),
        AppendOnly("returnresolution"),
        AppendOnly("seal"),
    ]
