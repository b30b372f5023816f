"""Leave a tenth of each members page free, so that a re-import's updates stay on their page.

With full pages every changed member got a new tuple elsewhere and an entry in each of the three
indexes; with room on the page, PostgreSQL writes a heap-only tuple (HOT) and no index entry when no
indexed column (member number, branch) changed. On 1,000,000 members with 100,000 changed, the
update went from 1.2 s to 0.5 s (docs/benchmarks.md). Pages written from now on keep the room; a
roster already stored gets it as its pages are rewritten.
"""

from django.db import migrations


def set_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE members_member SET (fillfactor = 90)")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE members_member RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0003_member_indexes_that_queries_use"),
    ]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
