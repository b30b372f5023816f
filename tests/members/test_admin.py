"""The roster in the admin: the clerk's work (search, filter, import) and nothing beyond it."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from members.models import Branch, Member
from tests.conftest import SMALL_ROSTER

CHANGELIST = reverse("admin:members_member_changelist")
IMPORT = reverse("admin:members_member_import")


def upload(client, text: str, name: str = "roster.csv"):
    return client.post(IMPORT, {"file": SimpleUploadedFile(name, text.encode(), content_type="text/csv")})


class TestTheClerk:
    def test_it_finds_a_member_by_number_and_by_name(self, client, clerk, small_roster):
        client.force_login(clerk)
        by_number = client.get(CHANGELIST, {"q": "1002"})
        assert by_number.status_code == 200 and "Peretz" in by_number.text and "Herzog" not in by_number.text
        by_name = client.get(CHANGELIST, {"q": "Herzog"})
        assert "1003" in by_name.text and "Peretz" not in by_name.text

    def test_a_member_number_is_looked_up_through_its_index(self, client, clerk, small_roster):
        client.force_login(clerk)
        haifa = Branch.objects.get(code="haifa")
        Member.objects.create(
            member_no="HF-77",
            first_name="Dana",
            last_name="Golan",
            branch=haifa,
            joined_on="2001-01-01",
            status="active",
        )
        with CaptureQueriesContext(connection) as queries:
            page = client.get(CHANGELIST, {"q": "hf-77"})
        assert "Golan" in page.text and "Peretz" not in page.text
        listing = [q["sql"] for q in queries if 'FROM "members_member"' in q["sql"] and "Golan" not in q["sql"]]
        assert listing and all('"members_member"."member_no" IN' in sql for sql in listing)
        assert not any('UPPER("members_member"."member_no"' in sql for sql in listing)
        # A name is still a substring search; a number nobody has finds nobody.
        assert "Golan" in client.get(CHANGELIST, {"q": "gola"}).text
        assert "Golan" not in client.get(CHANGELIST, {"q": "HF-7"}).text

    def test_member_numbers_stay_unique(self, small_roster):
        with pytest.raises(IntegrityError), transaction.atomic():
            Member.objects.create(
                member_no="1002", first_name="A", last_name="B", branch=Branch.objects.first(),
                joined_on="2001-01-01", status="active",
            )  # fmt: skip

    def test_it_filters_by_branch_and_status(self, client, clerk, small_roster):
        client.force_login(clerk)
        haifa = Branch.objects.get(code="haifa")
        page = client.get(CHANGELIST, {"branch__id__exact": haifa.pk, "status__exact": "suspended"})
        assert page.status_code == 200
        assert "Mitzna" in page.text and "Levi" not in page.text and "Yachimovich" not in page.text

    def test_it_edits_a_member(self, client, clerk, small_roster):
        client.force_login(clerk)
        member = Member.objects.get(member_no="1003")
        page = client.get(reverse("admin:members_member_change", args=[member.pk]))
        assert page.status_code == 200

    def test_it_imports_after_seeing_the_dry_run(self, client, clerk):
        client.force_login(clerk)
        assert "Import roster CSV" in client.get(CHANGELIST).text
        report = upload(client, SMALL_ROSTER)
        assert report.status_code == 200
        assert "Dry run of 7 rows, nothing written: would have created 7" in report.text
        assert not Member.objects.exists()
        token = re.search(r'name="token" value="([0-9a-f]{32})"', report.text).group(1)
        sha256 = re.search(r'name="sha256" value="([0-9a-f]{64})"', report.text).group(1)
        done = client.post(IMPORT, {"confirm": "1", "token": token, "sha256": sha256}, follow=True)
        assert "Imported 7 rows: created 7" in done.text
        assert Member.objects.count() == 7

    def test_it_sees_each_bad_row_and_cannot_confirm(self, client, clerk):
        client.force_login(clerk)
        report = upload(client, SMALL_ROSTER.replace("1995-03-01", "1995-02-30"))
        assert "Rejected: 1 bad row(s) in 7; nothing was written" in report.text
        assert "bad date &#x27;1995-02-30&#x27;" in report.text
        assert 'name="confirm"' not in report.text
        assert not Member.objects.exists()

    def test_it_is_told_of_a_bad_header(self, client, clerk):
        client.force_login(clerk)
        page = upload(client, "id;name\n1;x\n")
        assert page.status_code == 200 and "line 1: missing column" in page.text

    def test_a_confirmation_with_a_made_up_token_imports_nothing(self, client, clerk):
        client.force_login(clerk)
        page = client.post(IMPORT, {"confirm": "1", "token": "../../etc/passwd", "sha256": "x"}, follow=True)
        assert "no longer waiting" in page.text

    def test_it_cannot_delete_members_or_reach_anything_else(self, client, clerk, small_roster):
        client.force_login(clerk)
        member = Member.objects.get(member_no="1001")
        assert client.get(reverse("admin:members_member_delete", args=[member.pk])).status_code == 403
        assert client.get(reverse("admin:auth_user_changelist")).status_code == 403
        assert client.get(reverse("admin:auth_group_changelist")).status_code == 403
        index = client.get(reverse("admin:index"))
        assert "Roster" in index.text and "Authentication and Authorization" not in index.text

    def test_the_group_holds_exactly_the_roster_permissions(self, clerk):
        assert clerk.get_all_permissions() == {
            "members.view_member", "members.add_member", "members.change_member", "members.import_roster",
            "members.view_branch", "members.add_branch", "members.change_branch",
        }  # fmt: skip


@pytest.mark.parametrize("url", [CHANGELIST, IMPORT])
def test_staff_outside_the_clerk_group_cannot_see_or_import_the_roster(client, outsider, url):
    client.force_login(outsider)
    assert client.get(url).status_code == 403
