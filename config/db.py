"""Prepared statements for the few statements every voter costs on election day."""

from __future__ import annotations

import psycopg
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper


class _PreparingCursor(psycopg.Cursor):
    """Binds parameters on the server and prepares each statement on its first run on a connection.

    A prepared statement is parsed and planned once per connection, not once per request: for the
    station API's joins and CTEs, planning cost more than running them (docs/benchmarks.md).
    """

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=True if prepare is None else prepare, binary=binary)


class _LoggedAsWritten(CursorDebugWrapper):
    """Logs a statement as its text with placeholders: psycopg keeps no composed text of a prepared one."""

    def debug_sql(self, sql=None, params=None, use_last_executed_query=False, many=False):
        return super().debug_sql(sql, params, use_last_executed_query=False, many=many)


def prepared_cursor():
    """A Django cursor whose statements are prepared on PostgreSQL (a plain cursor on SQLite).

    Same health check, error wrapping and query logging as `connection.cursor()`. Statements run
    through it must be fixed text with `%s`/`%(name)s` parameters bound by the server (no `%%`
    escapes, no literals built from values). psycopg keeps the prepared statements of a connection
    until a rollback; a PgBouncer in front of the database must be 1.21 or later, with
    `max_prepared_statements` set, to pass them through.
    """
    if connection.vendor != "postgresql":
        return connection.cursor()
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = _PreparingCursor(connection.connection)
    return _LoggedAsWritten(raw, connection) if connection.queries_logged else connection.make_cursor(raw)
