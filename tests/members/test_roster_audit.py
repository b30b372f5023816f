"""The roster in the audit log: each import and each change made in the admin, with no personal data."""

from __future__ import annotations

import hashlib

from django.urls import reverse

from audit.keys import member_pseudonym
from audit.models import Entry
from members.models import Branch, Member
from members.services import import_roster
from tests.conftest import SMALL_ROSTER, csv_stream


def test_an_import_writes_one_entry_with_the_file_hash_and_the_counts(db):
    import_roster(actor="rina", stream=csv_stream(SMALL_ROSTER))
    [entry] = Entry.objects.all()
    assert (entry.action, entry.actor) == ("roster.imported", "rina")
    assert entry.payload == {
        "sha256": hashlib.sha256(SMALL_ROSTER.encode()).hexdigest(),
        "rows": 7, "created": 7, "updated": 0, "unchanged": 0, "branches_created": 3,
    }  # fmt: skip


def test_a_dry_run_and_a_rejected_file_write_no_entry(db):
    import_roster(actor="rina", stream=csv_stream(SMALL_ROSTER), dry_run=True)
    import_roster(actor="rina", stream=csv_stream(SMALL_ROSTER.replace("active", "dormant")))
    assert not Entry.objects.exists()


def test_a_member_changed_in_the_admin_gets_an_entry_by_pseudonym(client, clerk, small_roster):
    member = Member.objects.get(member_no="1004")
    client.force_login(clerk)
    form = {
        "member_no": "1004", "first_name": "Amram", "last_name": "Mitzna", "branch": member.branch_id,
        "joined_on": "1999-11-20", "status": "active", "dues_paid_until": "2012-01-01",
        "email": "amram@example.org", "phone": "",
    }  # fmt: skip
    response = client.post(reverse("admin:members_member_change", args=[member.pk]), form)
    assert response.status_code == 302, response.content
    entry = Entry.objects.filter(action="member.changed").get()
    assert entry.actor == "rina"
    assert entry.payload == {
        "member": member_pseudonym("1004"),
        "fields": ["email", "status"],
        "values": {"status": "active"},
    }
    # No name, number or address of the member anywhere in the entry.
    text = str(entry.payload)
    assert "1004" not in text and "Mitzna" not in text and "amram@" not in text


def test_a_member_added_in_the_admin_gets_an_entry(client, clerk, small_roster):
    client.force_login(clerk)
    haifa = Branch.objects.get(code="haifa")
    form = {
        "member_no": "3001", "first_name": "Noa", "last_name": "Tal", "branch": haifa.pk,
        "joined_on": "2005-01-01", "status": "active", "dues_paid_until": "", "email": "", "phone": "",
    }  # fmt: skip
    response = client.post(reverse("admin:members_member_add"), form)
    assert response.status_code == 302, response.content
    entry = Entry.objects.filter(action="member.added").get()
    assert entry.payload["member"] == member_pseudonym("3001")
    assert entry.payload["values"] == {
        "branch": "haifa", "joined_on": "2005-01-01", "status": "active", "dues_paid_until": None
    }  # fmt: skip


def test_saving_an_unchanged_member_writes_nothing(client, clerk, small_roster):
    member = Member.objects.get(member_no="1001")
    client.force_login(clerk)
    form = {
        "member_no": "1001", "first_name": "Shelly", "last_name": "Yachimovich", "branch": member.branch_id,
        "joined_on": "1995-03-01", "status": "active", "dues_paid_until": "2012-01-01",
        "email": "shelly@example.org", "phone": "",
    }  # fmt: skip
    client.post(reverse("admin:members_member_change", args=[member.pk]), form)
    assert not Entry.objects.filter(action="member.changed").exists()


def test_the_pseudonym_is_keyed_and_stable(settings):
    settings.KALPI_PSEUDONYM_KEY = "one key"
    first = member_pseudonym("1004")
    assert first == member_pseudonym("1004") and len(first) == 64 and first != member_pseudonym("1005")
    settings.KALPI_PSEUDONYM_KEY = "another key"
    assert member_pseudonym("1004") != first
