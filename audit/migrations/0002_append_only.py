"""Entries, leaves, nodes and checkpoints can only be added to, never changed or removed."""

from django.db import migrations

from audit.immutability import AppendOnly


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_log")]

    operations = [AppendOnly("entry"), AppendOnly("leaf"), AppendOnly("node"), AppendOnly("checkpoint")]
