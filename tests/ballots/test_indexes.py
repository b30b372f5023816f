"""The two tables every voter writes carry only the indexes their queries use (migration ballots 0009)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ballots.models import CheckIn, OpenBallot


def index_columns(model, *, unique: bool = False) -> set[tuple[str, ...]]:
    """The column lists of the table's plain indexes, or with `unique` of its unique constraints (never
    its primary key)."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, model._meta.db_table).values()
    if unique:
        return {tuple(c["columns"]) for c in found if c["unique"] and not c["primary_key"]}
    return {tuple(c["columns"]) for c in found if c["index"] and not c["primary_key"] and not c["unique"]}


def assert_current():
    # A check-in's lookups by round go through the unique (round, member); the box of a station in a
    # round has one index, which its close reads and empties.
    assert ("round_id", "member_id") in index_columns(CheckIn, unique=True)
    assert index_columns(CheckIn) == {("member_id",), ("station_id",)}
    assert index_columns(OpenBallot) == {("round_id", "station_id")}


@pytest.mark.django_db
def test_a_check_in_and_a_ballot_write_no_index_their_queries_do_not_use():
    assert_current()


@pytest.mark.django_db(transaction=True)
def test_the_migration_goes_back_to_the_indexes_of_before_and_forward_again():
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes("ballots")
    try:
        executor.migrate([("ballots", "0008_ballot_in_one_box")])
        assert index_columns(CheckIn) == {("round_id",), ("member_id",), ("station_id",)}
        assert index_columns(OpenBallot) == {("round_id",), ("station_id",)}
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(latest)
    assert_current()
