"""The roster in the audit log: each import and each change made in the admin, with no personal data."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from audit.keys import member_pseudonym
from audit.models import Entry
from members.models import Branch, Member
from members.services import import_roster, save_member
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


def _needs_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the one-statement save is PostgreSQL's; SQLite saves and records in two")


def _row(member_no: str) -> dict:
    return Member.objects.filter(member_no=member_no).values().get()


def test_save_member_writes_the_row_model_save_would(small_roster):
    """Whatever the database, the saved row is what `Member.save()` writes: every field, and the time."""
    member = Member.objects.get(member_no="1004")
    before = member.updated_at
    member.status, member.email, member.dues_paid_until = "suspended", "new@example.org", None
    save_member(member=member, changed_fields=["status", "email", "dues_paid_until"], actor="rina")
    row = _row("1004")
    assert row["status"] == "suspended" and row["email"] == "new@example.org" and row["dues_paid_until"] is None
    assert row["updated_at"] == member.updated_at > before
    assert Entry.objects.filter(action="member.changed").get().payload["values"] == {
        "status": "suspended", "dues_paid_until": None
    }  # fmt: skip

    added = Member(
        member_no="3002", first_name="Noa", last_name="Tal", branch=member.branch, joined_on=date(2005, 1, 1),
        status="active",
    )  # fmt: skip
    save_member(member=added, changed_fields=["member_no", "first_name"], actor="rina")
    assert added.pk == _row("3002")["id"] and not added._state.adding
    assert Entry.objects.filter(action="member.added").get().payload["member"] == member_pseudonym("3002")


def test_save_member_is_one_statement_on_postgres(small_roster):
    _needs_postgres()
    member = Member.objects.get(member_no="1004")
    member.status = "lapsed"
    with CaptureQueriesContext(connection) as queries:
        save_member(member=member, changed_fields=["status"], actor="rina")
    [statement] = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert "UPDATE members_member" in statement and "INSERT INTO audit_entry" in statement
    assert _row("1004")["status"] == "lapsed" and Entry.objects.filter(action="member.changed").count() == 1


def test_a_member_deleted_meanwhile_is_saved_again_with_one_entry(small_roster):
    """`Member.save()` inserts a row its update did not find; the audited save does the same."""
    member = Member.objects.get(member_no="1007")
    Member.objects.filter(pk=member.pk).delete()
    member.status = "suspended"
    save_member(member=member, changed_fields=["status"], actor="rina")
    assert _row("1007")["status"] == "suspended"
    assert Entry.objects.filter(action="member.changed").count() == 1


def test_a_refused_save_writes_neither_the_member_nor_an_entry(small_roster):
    member = Member.objects.get(member_no="1004")
    member.member_no = "1001"  # another member's number
    with pytest.raises(IntegrityError), transaction.atomic():
        save_member(member=member, changed_fields=["member_no"], actor="rina")
    assert _row("1004")["first_name"] == "Amram" and not Entry.objects.filter(action="member.changed").exists()
