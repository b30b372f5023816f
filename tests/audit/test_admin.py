"""The audit log in the admin: read-only for everyone; auditors read everything, change nothing, verify."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.db import transaction
from django.urls import reverse

from audit import services
from audit.models import Action, Entry
from members.models import Member


@pytest.fixture
def auditor(db) -> User:
    """Avi, an observer for a candidate."""
    user = User.objects.create_user(username="avi", password="correct horse battery", is_staff=True)
    user.groups.add(Group.objects.get(name="auditor"))
    return user


@pytest.fixture
def log(db):
    with transaction.atomic():
        for i in range(3):
            services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={"n": i})
    services.integrate_pending()
    services.sign_checkpoint()


def test_the_auditor_can_view_every_model_and_change_none(auditor):
    perms = auditor.get_all_permissions()
    every_view = {
        f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.filter(codename__startswith="view_")
    }
    assert every_view <= perms
    assert perms - every_view == {"audit.verify_log"}


def test_the_auditor_browses_entries_and_members(client, auditor, log, small_roster):
    client.force_login(auditor)
    assert client.get(reverse("admin:audit_entry_changelist")).status_code == 200
    entry = Entry.objects.first()
    page = client.get(reverse("admin:audit_entry_change", args=[entry.pk]))
    assert page.status_code == 200 and "roster.imported" in page.text
    assert client.get(reverse("admin:members_member_changelist")).status_code == 200
    member = Member.objects.get(member_no="1001")
    member_page = client.get(reverse("admin:members_member_change", args=[member.pk]))
    assert member_page.status_code == 200
    assert 'name="_save"' not in member_page.text  # read-only view


@pytest.mark.parametrize("who", ["auditor", "superuser"])
def test_nobody_adds_changes_or_deletes_entries_in_the_admin(client, log, who, request):
    client.force_login(request.getfixturevalue(who))
    entry = Entry.objects.first()
    assert client.get(reverse("admin:audit_entry_add")).status_code == 403
    assert client.get(reverse("admin:audit_entry_delete", args=[entry.pk])).status_code == 403
    page = client.get(reverse("admin:audit_entry_change", args=[entry.pk]))
    assert 'name="_save"' not in page.text
    changelist = client.get(reverse("admin:audit_entry_changelist"))
    assert "delete_selected" not in changelist.text


def test_the_auditor_verifies_now(client, auditor, log):
    client.force_login(auditor)
    assert "Verify now" in client.get(reverse("admin:audit_entry_changelist")).text
    page = client.post(reverse("admin:audit_entry_verify"))
    assert page.status_code == 200
    assert "OK: 3 entries, 1 checkpoints, latest size 3" in page.text


def test_the_clerk_cannot_see_the_log_or_verify(client, clerk, log):
    client.force_login(clerk)
    assert client.get(reverse("admin:audit_entry_changelist")).status_code == 403
    assert client.post(reverse("admin:audit_entry_verify")).status_code == 403
