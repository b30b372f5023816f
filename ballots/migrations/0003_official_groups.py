"""The station manager and election committee groups."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = {
    # Stations and their device tokens, nothing else.
    "station manager": [
        ("ballots", "view_station"),
        ("ballots", "view_stationtoken"),
        ("ballots", "add_stationtoken"),
        ("ballots", "change_stationtoken"),
        ("ballots", "view_stationround"),
    ],
    # The election itself: its definition, the electorate, rounds, returns and their resolution.
    "election committee": [
        ("ballots", "view_election"),
        ("ballots", "change_election"),
        ("ballots", "view_candidate"),
        ("ballots", "view_station"),
        ("ballots", "view_stationtoken"),
        ("ballots", "change_stationtoken"),
        ("ballots", "view_round"),
        ("ballots", "change_round"),
        ("ballots", "view_stationround"),
        ("ballots", "view_elector"),
        ("ballots", "change_elector"),
        ("ballots", "view_stationreturn"),
        ("ballots", "view_returnresolution"),
        ("ballots", "add_returnresolution"),
        ("ballots", "view_seal"),
        ("members", "view_member"),
        ("members", "view_branch"),
    ],
}


def create_groups(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, permissions in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(
            [Permission.objects.get(content_type__app_label=app, codename=code) for app, code in permissions]
        )
    # Auditors read everything, these tables included.
    auditor = Group.objects.filter(name="auditor").first()
    if auditor is not None:
        auditor.permissions.add(*Permission.objects.filter(codename__startswith="view_"))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(GROUPS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("ballots", "0002_append_only"),
        ("members", "0002_roster_clerk_group"),
        ("audit", "0003_auditor_group"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
