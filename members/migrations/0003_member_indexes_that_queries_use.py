"""Keep only the member indexes a query uses: the key, the unique member number, the branch.

The name index could not serve the admin's substring search, the (status, joined_on) index was never
chosen for the eligibility query (it reads most of the roster), and `unique=True` on a CharField also
made a LIKE-pattern index that nothing queried. Each one slowed every roster import and member edit.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0002_roster_clerk_group"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="member",
            constraint=models.UniqueConstraint(fields=("member_no",), name="member_no_unique"),
        ),
        migrations.AlterField(
            model_name="member",
            name="member_no",
            field=models.CharField(max_length=32, verbose_name="member number"),
        ),
        migrations.RemoveIndex(model_name="member", name="member_name_idx"),
        migrations.RemoveIndex(model_name="member", name="member_eligibility_idx"),
    ]
