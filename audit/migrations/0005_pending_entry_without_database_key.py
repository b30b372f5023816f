"""The pending queue's row no longer carries a database foreign key to its entry.

Both rows are written by one statement and entries are never deleted; the key's check cost every
audited write a lookup (a sequential scan, on a connection that planned it while the log was small)
and a lock on the entry row at commit.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_more_actions")]

    operations = [
        migrations.AlterField(
            model_name="pendingentry",
            name="entry",
            field=models.OneToOneField(
                db_constraint=False,
                on_delete=django.db.models.deletion.PROTECT,
                primary_key=True,
                related_name="+",
                serialize=False,
                to="audit.entry",
            ),
        ),
    ]
