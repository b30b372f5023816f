"""A named lock held until the transaction ends, on either database."""

from django.db import connection


def transaction_lock(name: str) -> None:
    """Serialise with other holders of `name` until the current transaction ends.

    PostgreSQL: an advisory transaction lock. SQLite: nothing to do, its write transactions
    (BEGIN IMMEDIATE) already exclude each other.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
