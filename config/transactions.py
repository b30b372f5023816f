"""After-commit work that a transaction asks for many times but needs once."""

from __future__ import annotations

from collections.abc import Callable, Hashable

from django.db import transaction


def on_commit_once(key: Hashable, callback: Callable[[], None]) -> None:
    """Run `callback` after the current transaction commits, once per `key` in that transaction.

    A close_round seals every station, and each seal asks for a checkpoint, an integration and a
    publication: one of each is enough. Robust: the change is committed whatever the callback does;
    a failure is logged, and the periodic tasks catch up.
    """
    connection = transaction.get_connection()
    if any(getattr(queued, "_kalpi_once", None) == key for _, queued, _ in connection.run_on_commit):
        return
    callback._kalpi_once = key  # type: ignore[attr-defined]
    transaction.on_commit(callback, robust=True)
