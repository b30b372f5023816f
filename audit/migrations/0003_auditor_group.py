"""The auditor group: can read everything and change nothing, and can run the verification.

View permissions of models added later are granted by the post_migrate handler in audit/apps.py.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "auditor"


def create_group(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.add(*Permission.objects.filter(codename__startswith="view_"))
    group.permissions.add(Permission.objects.get(content_type__app_label="audit", codename="verify_log"))


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only"),
        ("members", "0002_roster_clerk_group"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
