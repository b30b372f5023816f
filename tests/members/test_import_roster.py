"""The roster import on the database: counts, re-import, all-or-nothing, dry run, the command."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from members.fake_roster import roster_csv_bytes
from members.models import Branch, Member
from members.services import RosterFileError, import_roster
from tests.conftest import ROSTER_HEADER, SMALL_ROSTER, csv_stream, is_postgres


def snapshot():
    return list(
        Member.objects.order_by("member_no").values_list(
            "member_no", "first_name", "last_name", "branch__code", "joined_on", "status", "dues_paid_until", "email",
            "phone", "updated_at",
        )
    )  # fmt: skip


def test_it_creates_members_and_their_branches(db):
    report = import_roster(actor="rina", stream=csv_stream(SMALL_ROSTER))
    assert (report.created, report.updated, report.unchanged, report.rejected) == (7, 0, 0, 0)
    assert report.branches_created == 3
    assert sorted(Branch.objects.values_list("code", flat=True)) == ["haifa", "sderot", "tel-aviv"]
    peretz = Member.objects.get(member_no="1002")
    assert (peretz.branch.code, peretz.phone, peretz.email, peretz.dues_paid_until.isoformat()) == (
        "sderot", "050-1234567", "", "2011-01-01"
    )  # fmt: skip
    assert Member.objects.get(member_no="1003").dues_paid_until is None


def test_it_reports_everything_unchanged_on_the_same_file_and_writes_nothing(small_roster):
    before = snapshot()
    report = import_roster(actor="rina", stream=csv_stream(SMALL_ROSTER))
    assert (report.created, report.updated, report.unchanged, report.rejected) == (0, 0, 7, 0)
    assert snapshot() == before  # not even updated_at moved


def test_it_updates_only_what_changed(small_roster):
    before = {row[0]: row for row in snapshot()}
    corrected = (
        SMALL_ROSTER.replace(
            "1004,Amram,Mitzna,haifa,1999-11-20,suspended", "1004,Amram,Mitzna,haifa,1999-11-20,active"
        )
        .replace("1003,Isaac,Herzog,tel-aviv", "1003,Isaac,Herzog,jerusalem")
        .replace("1006,Dana,Cohen,haifa,2005-02-02,lapsed,2009-01-01,,", "1006,Dana,Cohen,haifa,2005-02-02,lapsed,,,")
        + "1008,Eitan,Cabel,tel-aviv,2000-01-01,active,2012-01-01,,\n"
    )
    report = import_roster(actor="rina", stream=csv_stream(corrected))
    assert (report.created, report.updated, report.unchanged, report.rejected) == (1, 3, 4, 0)
    assert report.branches_created == 1
    after = {row[0]: row for row in snapshot()}
    assert after["1004"][5] == "active" and after["1003"][3] == "jerusalem" and after["1006"][6] is None
    for member_no in ("1001", "1002", "1005", "1007"):
        assert after[member_no] == before[member_no]


def test_a_new_branch_named_by_a_new_member_and_a_moved_one_is_created_once(small_roster):
    corrected = SMALL_ROSTER.replace("1005,Noa,Levi,haifa", "1005,Noa,Levi,eilat") + (
        "1008,Eitan,Cabel,eilat,2000-01-01,active,2012-01-01,,\n1009,Ruth,Dayan,eilat,2001-01-01,active,,,\n"
    )
    report = import_roster(actor="rina", stream=csv_stream(corrected))
    assert (report.created, report.updated, report.unchanged, report.branches_created) == (2, 1, 6, 1)
    eilat = Branch.objects.get(code="eilat")
    assert sorted(eilat.members.values_list("member_no", flat=True)) == ["1005", "1008", "1009"]


def test_a_member_missing_from_the_export_is_kept(small_roster):
    report = import_roster(
        actor="rina",
        stream=csv_stream(
            ROSTER_HEADER + "1001,Shelly,Yachimovich,tel-aviv,1995-03-01,active,2012-01-01,shelly@example.org,\n"
        ),
    )
    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)
    assert Member.objects.count() == 7


def test_it_writes_nothing_when_one_row_is_bad(small_roster):
    before = snapshot()
    bad = SMALL_ROSTER.replace("1002,Amir,Peretz,sderot,1990-05-10", "1002,Amir,Peretz,sderot,1990-13-10") + (
        "1009,New,Member,eilat,2000-01-01,active,,,\n"
    )
    report = import_roster(actor="rina", stream=csv_stream(bad))
    assert not report.ok and report.rejected == 1
    assert [str(e) for e in report.errors] == ["line 3, column joined_on: bad date '1990-13-10': expected YYYY-MM-DD"]
    assert snapshot() == before
    assert not Branch.objects.filter(code="eilat").exists()


def test_it_names_a_member_number_that_appears_twice(db):
    data = (
        SMALL_ROSTER
        + "1003,Isaac,Herzog,tel-aviv,2001-09-01,active,,,\n"
        + "1001,Shelly,Y,tel-aviv,1995-03-01,active,,,\n"
    )
    report = import_roster(actor="rina", stream=csv_stream(data))
    assert [str(e) for e in report.errors] == [
        "line 9, column member_no: member number 1003 is also on line 4",
        "line 10, column member_no: member number 1001 is also on line 2",
    ]
    assert report.rejected == 2 and not Member.objects.exists()


def test_it_reports_bad_rows_and_repeated_numbers_together_in_line_order(db):
    data = SMALL_ROSTER + "1001,Shelly,Y,tel-aviv,1995-03-01,active,,,\n" + "1010,,Z,tel-aviv,1995-03-01,active,,,\n"
    data = data.replace("1002,Amir,Peretz,sderot,1990-05-10,active", "1002,Amir,Peretz,sderot,1990-05-10,retired")
    report = import_roster(actor="rina", stream=csv_stream(data))
    assert [(e.line, e.column) for e in report.errors] == [(3, "status"), (9, "member_no"), (10, "first_name")]
    assert report.rejected == 3


def test_a_dry_run_reports_what_would_change_and_writes_nothing(small_roster):
    before = snapshot()
    corrected = SMALL_ROSTER.replace("1003,Isaac,Herzog,tel-aviv", "1003,Isaac,Herzog,jerusalem") + (
        "1008,Eitan,Cabel,tel-aviv,2000-01-01,active,,,\n"
    )
    dry = import_roster(actor="rina", stream=csv_stream(corrected), dry_run=True)
    assert (dry.created, dry.updated, dry.unchanged, dry.branches_created) == (1, 1, 6, 1)
    assert snapshot() == before and not Branch.objects.filter(code="jerusalem").exists()
    real = import_roster(actor="rina", stream=csv_stream(corrected))
    assert (real.created, real.updated, real.unchanged, real.branches_created) == (1, 1, 6, 1)


def test_it_refuses_a_file_with_a_bad_header(db):
    with pytest.raises(RosterFileError, match="missing column"):
        import_roster(actor="rina", stream=csv_stream("member_no,name\n1,A\n"))


def test_it_hashes_the_whole_file(db):
    import hashlib

    report = import_roster(actor="rina", stream=csv_stream(SMALL_ROSTER + "\n\n"))
    assert report.sha256 == hashlib.sha256((SMALL_ROSTER + "\n\n").encode()).hexdigest()


def test_a_larger_generated_roster_imports_and_reimports_with_the_expected_counts(db):
    fresh = import_roster(actor="rina", stream=csv_stream(roster_csv_bytes(3000).decode()))
    assert (fresh.created, fresh.rejected) == (3000, 0)
    again = import_roster(actor="rina", stream=csv_stream(roster_csv_bytes(3000, changed_every=10).decode()))
    assert (again.created, again.updated, again.unchanged) == (0, 300, 2700)


class TestTheCommand:
    def test_it_prints_the_counts(self, db, tmp_path, capsys):
        path = tmp_path / "roster.csv"
        path.write_text(SMALL_ROSTER)
        call_command("import_roster", str(path))
        out = capsys.readouterr().out
        assert "created 7, updated 0, unchanged 0, rejected 0" in out

    def test_a_dry_run_writes_nothing(self, db, tmp_path, capsys):
        path = tmp_path / "roster.csv"
        path.write_text(SMALL_ROSTER)
        call_command("import_roster", str(path), "--dry-run")
        assert "Dry run of 7 rows" in capsys.readouterr().out
        assert not Member.objects.exists()

    def test_it_fails_naming_each_bad_line(self, db, tmp_path, capsys):
        path = tmp_path / "roster.csv"
        path.write_text(SMALL_ROSTER.replace(",resigned,", ",quit,") + "1001,A,B,tlv,2000-01-01,active,,,\n")
        with pytest.raises(CommandError, match=r"Rejected: 2 bad row\(s\) in 8; nothing was written"):
            call_command("import_roster", str(path))
        err = capsys.readouterr().err
        assert "line 8, column status: unknown status 'quit'" in err
        assert "line 9, column member_no: member number 1001 is also on line 2" in err
        assert not Member.objects.exists()

    def test_it_fails_clearly_on_a_missing_file(self, db, tmp_path):
        with pytest.raises(CommandError, match=r"cannot read .*nope\.csv: No such file or directory"):
            call_command("import_roster", str(tmp_path / "nope.csv"))

    def test_it_fails_clearly_on_a_bad_header(self, db, tmp_path):
        path = tmp_path / "roster.csv"
        path.write_text("id;name\n")
        with pytest.raises(CommandError, match="line 1: missing column"):
            call_command("import_roster", str(path))


@pytest.mark.parametrize("collide", [False, True], ids=["hashes", "every-hash-collides"])
def test_the_repeated_number_check_does_not_trust_a_hash_alone(db, monkeypatch, collide):
    # On PostgreSQL the fast path counts distinct hashes of the member numbers; numbers that share a
    # hash must not pass for a number twice, and a number twice must not pass whatever the hash.
    if not is_postgres():
        pytest.skip("the fast path is PostgreSQL's")
    from members import services

    if collide:
        monkeypatch.setattr(services, "_MEMBER_NO_HASH", "length(member_no)")
    report = import_roster(actor="rina", stream=csv_stream(SMALL_ROSTER))
    assert (report.created, report.rejected) == (7, 0)
    twice = SMALL_ROSTER + "1003,Isaac,Herzog,tel-aviv,1997-01-01,active,2012-01-01,,\n"
    report = import_roster(actor="rina", stream=csv_stream(twice))
    assert not report.ok and any("also on line" in error.reason for error in report.errors)
