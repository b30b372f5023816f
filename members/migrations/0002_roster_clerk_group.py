"""The roster clerk group: keeps members and branches and imports the roster, nothing else."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "roster clerk"
PERMISSIONS = [
    ("members", "view_member"),
    ("members", "add_member"),
    ("members", "change_member"),
    ("members", "import_roster"),
    ("members", "view_branch"),
    ("members", "add_branch"),
    ("members", "change_branch"),
]


def create_group(apps, schema_editor):
    # Permissions are normally created after all migrations; this one needs them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    group.permissions.set(
        [Permission.objects.get(content_type__app_label=app, codename=codename) for app, codename in PERMISSIONS]
    )


def remove_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_group, remove_group)]
