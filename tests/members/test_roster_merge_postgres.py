"""The re-import on PostgreSQL: a parallel comparison of file and roster, then writes by primary key.

What the counts and the roster look like afterwards is tested on both databases in test_import_roster;
these tests hold what is PostgreSQL's own: the query plan, the lock, and that nothing is left behind.
"""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from members import services
from members.services import import_roster
from tests.conftest import SMALL_ROSTER, csv_stream, database_url, is_postgres

CORRECTED = (
    SMALL_ROSTER.replace("1004,Amram,Mitzna,haifa,1999-11-20,suspended", "1004,Amram,Mitzna,haifa,1999-11-20,active")
    + "1008,Eitan,Cabel,tel-aviv,2000-01-01,active,2012-01-01,,\n"
)


@pytest.fixture
def postgres():
    if not is_postgres():
        pytest.skip("the comparison, its plan and its lock are PostgreSQL's")


def after_statement(starting: str, then):
    """An execute wrapper that calls `then(sql)` once a statement starting with `starting` has run."""

    def wrapper(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.lstrip().startswith(starting):
            then(sql)
        return result

    return wrapper


def test_the_comparison_with_the_roster_can_run_on_several_cores(small_roster, postgres):
    # Parallel workers cannot read a temporary table: this plan is why the staging table is UNLOGGED.
    plans = []

    def explain(sql):
        with connection.cursor() as cursor:
            # A seven-row file is far below the sizes where the planner starts workers.
            cursor.execute("SET LOCAL min_parallel_table_scan_size = 0")
            cursor.execute("SET LOCAL parallel_setup_cost = 0")
            cursor.execute("SET LOCAL parallel_tuple_cost = 0")
            cursor.execute(f"EXPLAIN (COSTS OFF) {sql.replace(services._CHANGES, 'roster_changes_explained')}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))

    statement = f"CREATE TEMPORARY TABLE {services._CHANGES}"
    with connection.execute_wrapper(after_statement(statement, explain)):
        report = import_roster(actor="rina", stream=csv_stream(CORRECTED))
    assert (report.created, report.updated, report.unchanged) == (1, 1, 6)
    assert len(plans) == 1
    assert "Gather" in plans[0] and "Parallel Seq Scan on roster_staging" in plans[0], plans[0]


@pytest.mark.django_db(transaction=True)
def test_the_roster_is_locked_against_other_writers_from_the_comparison_on(small_roster, postgres):
    # What was compared is what gets written: an official's edit in between would be overwritten
    # unseen, or a member deleted in between would lose the file's row. Readers are not held up.
    seen = []

    def try_to_write(sql):
        with psycopg.connect(database_url(), autocommit=True) as other:
            other.execute("SET lock_timeout = '200ms'")
            seen.append(other.execute("SELECT COUNT(*) FROM members_member").fetchone()[0])
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("UPDATE members_member SET phone = '' WHERE member_no = '1001'")
            seen.append("refused")

    with connection.execute_wrapper(after_statement(f"CREATE TEMPORARY TABLE {services._CHANGES}", try_to_write)):
        report = import_roster(actor="rina", stream=csv_stream(CORRECTED))
    assert seen == [7, "refused"]
    assert (report.created, report.updated) == (1, 1)


@pytest.mark.parametrize("how", ["import", "re-import", "dry run", "rejected file", "file for the Python reader"])
def test_no_staging_table_outlives_the_import(db, postgres, how):
    # The staging table is a real (unlogged) table now: it must go with every way an import ends.
    text = {
        "import": SMALL_ROSTER,
        "re-import": CORRECTED,
        "dry run": CORRECTED,
        "rejected file": SMALL_ROSTER.replace(",resigned,", ",quit,"),
        "file for the Python reader": SMALL_ROSTER.replace("1002,Amir,", '1002,"Amir",'),
    }[how]
    if how in ("re-import", "dry run"):
        import_roster(actor="rina", stream=csv_stream(SMALL_ROSTER))
    import_roster(actor="rina", stream=csv_stream(text), dry_run=how == "dry run")
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)::text, to_regclass(%s)::text", [services._STAGING, services._CHANGES])
        assert cursor.fetchone() == (None, None)
