"""Every write to the audit log: recording entries, integrating them into the tree, signing checkpoints."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.utils import timezone

from audit import keys, merkle, note
from audit.canonical import canonical_bytes
from audit.models import Action, Checkpoint, Entry, Leaf, Node, PendingEntry, entry_document
from audit.selectors import NodeReader, tree_size
from config.db import prepared_cursor
from config.locks import transaction_lock
from config.transactions import on_commit_once

logger = logging.getLogger(__name__)

INTEGRATION_BATCH = 2000
# Seconds an entry may wait for the integrator in production; Celery beat is the safety net behind it.
INTEGRATION_WINDOW = 0.5
_next_integration = 0.0


class NotInTransaction(RuntimeError):
    """An entry must be written in the same transaction as the change it records."""


def record(*, action: Action | str, actor: str, payload: dict[str, Any]) -> Entry:
    """Append an entry for a change being made in the current transaction.

    Precondition: inside `transaction.atomic`, with the change itself; the entry and the change commit
    together or not at all. Payloads hold integers, strings, booleans, null, lists and objects; no
    floats and no personal data (members appear as `keys.member_pseudonym`). The entry gets its leaf
    shortly after commit (see `integrate_pending`).
    """
    if not connection.in_atomic_block:
        raise NotInTransaction("audit.record must run inside the transaction of the change it records")
    action = Action(action)
    canonical_bytes(payload)  # refuse a float or a stray type now, not at integration
    now = timezone.now()
    # Every audited change pays for this: one statement on PostgreSQL (the entry and its place in the
    # pending queue in one CTE), prepared once per connection (planning it cost about as much as
    # running it: docs/benchmarks.md), two on SQLite, without building querysets.
    with prepared_cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(_RECORD_POSTGRES, [action.value, actor, json.dumps(payload), now])
            (entry_id,) = cursor.fetchone()
        else:
            created_at = connection.ops.adapt_datetimefield_value(now)
            cursor.execute(_RECORD_SQLITE, [action.value, actor, json.dumps(payload), created_at])
            (entry_id,) = cursor.fetchone()
            cursor.execute("INSERT INTO audit_pendingentry (entry_id) VALUES (%s)", [entry_id])
    entry = Entry(id=entry_id, action=action, actor=actor, payload=payload, created_at=now)
    entry._state.adding, entry._state.db = False, connection.alias
    _integrate_after_commit()
    return entry


_RECORD_POSTGRES = """
    WITH entry AS (
        INSERT INTO audit_entry (action, actor, payload, created_at) VALUES (%s, %s, %s::jsonb, %s) RETURNING id
    )
    INSERT INTO audit_pendingentry (entry_id) SELECT id FROM entry RETURNING entry_id"""
_RECORD_SQLITE = "INSERT INTO audit_entry (action, actor, payload, created_at) VALUES (%s, %s, %s, %s) RETURNING id"


def entries_sql(source: str, *, actor: str, payload: str) -> str:
    """The CTEs that append one entry per row of `source`, for a change written as one statement.

    PostgreSQL only. For the station API's hottest writes, which make their change and its entry in a
    single statement, so that a request is one round trip in autocommit. `actor` and `payload` are
    SQL expressions over `source`'s columns (text and a jsonb object of strings and integers); the
    statement binds `entry_params(...)`. Same rows as `record` writes. After the statement wrote, the
    caller calls `recorded()`.
    """
    return f"""
    audit_entry AS (
        INSERT INTO audit_entry (action, actor, payload, created_at)
        SELECT %(audit_action)s, {actor}, {payload}, %(audit_at)s FROM {source} RETURNING id
    ),
    audit_pending AS (INSERT INTO audit_pendingentry (entry_id) SELECT id FROM audit_entry)"""


def entry_params(action: Action | str) -> dict[str, Any]:
    """The parameters of `entries_sql`."""
    return {"audit_action": Action(action).value, "audit_at": timezone.now()}


def with_entry_sql(change: str) -> str:
    """One statement that makes `change` and writes its entry: `record` without a second statement.

    PostgreSQL only. `change` is an INSERT or UPDATE with `%(name)s` parameters and a RETURNING
    clause; the statement returns its rows. One entry is written if `change` wrote a row, none if it
    wrote nothing (the caller then finds out why, as it would have without the log). The statement
    binds `with_entry_params(...)` beside the change's own parameters, then calls `recorded()`:
    `run_with_entry` does both.
    A separate statement in the change's transaction costs a one-row write about half as much again
    as the write itself, the round trip more than the rows (docs/benchmarks.md).
    """
    entry = entries_sql("(SELECT 1 FROM audit_change LIMIT 1) AS one", **_ENTRY_PARAMETERS)
    return f"WITH audit_change AS ({change}),{entry}\n    SELECT * FROM audit_change"


# The entry's actor and payload as `entries_sql` takes them, bound by `with_entry_params`.
_ENTRY_PARAMETERS = {"actor": "%(audit_actor)s", "payload": "%(audit_payload)s::jsonb"}


def with_entry_params(*, action: Action | str, actor: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The parameters of `with_entry_sql`: the entry's, checked as `record` checks them."""
    canonical_bytes(payload)  # refuse a float or a stray type now, not at integration
    return {**entry_params(action), "audit_actor": actor, "audit_payload": json.dumps(payload)}


def run_with_entry(statement: str, params: dict[str, Any], *, action: Action | str, actor: str,
                   payload: dict[str, Any]) -> tuple | None:  # fmt: skip
    """Run a statement of `with_entry_sql` (prepared) with its entry's parameters; its first row, or
    None when the change wrote nothing (and so no entry)."""
    with prepared_cursor() as cursor:
        cursor.execute(statement, {**params, **with_entry_params(action=action, actor=actor, payload=payload)})
        row = cursor.fetchone()
    if row is not None:
        recorded()
    return row


def save_with_entry(
    instance: Model,
    *,
    action: Action | str,
    actor: str,
    payload: dict[str, Any],
    update_fields: Sequence[str] | None = None,
    entry_field: str | None = None,
) -> None:
    """Save a model instance and write its entry: on PostgreSQL in one statement, elsewhere as
    `instance.save()` and `record`. The same rows, values and preconditions as those two.

    `update_fields` as for `save()`. `entry_field` names a foreign key of a new instance to the entry
    (a seal, a publication), filled with the new entry's id. An update that finds no row does what
    `save()` does then (inserts the row again, or raises with `update_fields`), with `record`.
    The one statement sends no `pre_save`/`post_save` signals (no receiver listens to the audited
    models) and takes `save()` for a model with parent tables.
    """
    if not connection.in_atomic_block:
        raise NotInTransaction("an audited save must run inside the transaction of the change it records")
    if entry_field is not None and not instance._state.adding:
        raise ValueError("entry_field links a new row to its entry; an update keeps the link it has")
    if connection.vendor == "postgresql" and not instance._meta.parents:
        key = (type(instance), instance._state.adding, tuple(update_fields or ()), entry_field)
        row = run_with_entry(_instance_sql(*key), _write_params(instance, key), action=action, actor=actor,
                             payload=payload)  # fmt: skip
        if row is not None:
            if instance._state.adding:
                instance.pk = row[0]
            if entry_field is not None:
                setattr(instance, instance._meta.get_field(entry_field).attname, row[1])
            instance._state.adding, instance._state.db = False, connection.alias
            return
    if entry_field is None:
        instance.save(update_fields=update_fields)
        record(action=action, actor=actor, payload=payload)
    else:
        setattr(instance, entry_field, record(action=action, actor=actor, payload=payload))
        instance.save(update_fields=update_fields)


def bare_instance_write(instance: Model, *, update_fields: Sequence[str] | None = None) -> tuple[str, dict[str, Any]]:
    """The INSERT or UPDATE of `save_with_entry` without its entry, and its parameters: the same
    write without the log, a benchmark's reference (PostgreSQL)."""
    key = (type(instance), instance._state.adding, tuple(update_fields or ()), None)
    return _change_sql(*key), _write_params(instance, key)


def _write_params(instance: Model, key: tuple) -> dict[str, Any]:
    adding = instance._state.adding
    params = {f.column: f.get_db_prep_save(f.pre_save(instance, adding), connection) for f in _saved_fields(*key)}
    if not adding:
        params["audit_pk"] = instance.pk
    return params


@cache
def _saved_fields(model: type[Model], adding: bool, update_fields: tuple[str, ...], entry_field: str | None) -> list:
    """The columns `save()` writes: all but an automatic key, or `update_fields` (never the key)."""
    if update_fields and not adding:
        fields = [model._meta.get_field(name) for name in update_fields]
    else:
        fields = [f for f in model._meta.concrete_fields if not (f.primary_key and getattr(f, "db_returning", False))]
        if not adding:
            fields = [f for f in fields if not f.primary_key]
    return [f for f in fields if f.name != entry_field]


@cache
def _change_sql(model: type[Model], adding: bool, update_fields: tuple[str, ...], entry_field: str | None) -> str:
    table, pk = model._meta.db_table, model._meta.pk.column
    fields = _saved_fields(model, adding, update_fields, entry_field)
    if adding:
        columns = [f.column for f in fields]
        values = [f"%({f.column})s" for f in fields]
        if entry_field is None:
            return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)}) RETURNING {pk}"
        columns.append(model._meta.get_field(entry_field).column)
        values.append("audit_entry.id")
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM audit_entry"
            f" RETURNING {pk}, {columns[-1]}"
        )
    assignments = ", ".join(f"{f.column} = %({f.column})s" for f in fields)
    return f"UPDATE {table} SET {assignments} WHERE {pk} = %(audit_pk)s RETURNING {pk}"


@cache
def _instance_sql(model: type[Model], adding: bool, update_fields: tuple[str, ...], entry_field: str | None) -> str:
    change = _change_sql(model, adding, update_fields, entry_field)
    if entry_field is None:
        return with_entry_sql(change)
    # The entry first, whatever the change, then the row that points at it.
    entry = entries_sql("(SELECT 1) AS one", **_ENTRY_PARAMETERS)
    return f"WITH {entry.lstrip()},\n    audit_change AS ({change})\n    SELECT * FROM audit_change"


def recorded() -> None:
    """After a statement of `entries_sql` wrote its entries: integrate them after commit (at once in
    autocommit, where the statement has committed; like an after-commit callback, a failure to ask
    is logged, and the entries wait for the next integration)."""
    if connection.in_atomic_block:
        _integrate_after_commit()
        return
    if _deferred:
        return
    try:
        _ask_integrator()
    except Exception:
        logger.exception("could not ask for the integration of new audit entries; the periodic task will")


def record_many(*, action: Action | str, actor: str, payloads: list[dict[str, Any]]) -> int:
    """Append one entry per payload, in one round trip each for entries and the pending queue.

    Same preconditions and guarantees as `record`; for batches (a station's batch of ballots).
    """
    if not connection.in_atomic_block:
        raise NotInTransaction("audit.record_many must run inside the transaction of the change it records")
    action = Action(action)
    for payload in payloads:
        canonical_bytes(payload)
    if not payloads:
        return 0
    now = timezone.now()
    if connection.vendor == "postgresql":
        # One statement for the whole batch, as `record` does for one entry: building a thousand
        # model instances and two multi-row INSERTs cost more than the database's work on them.
        with connection.cursor() as cursor:
            cursor.execute(_RECORD_MANY_POSTGRES, [action.value, actor, now, [json.dumps(p) for p in payloads]])
            count = cursor.rowcount
    else:
        entries = Entry.objects.bulk_create(
            [Entry(action=action, actor=actor, payload=payload, created_at=now) for payload in payloads],
            batch_size=1000,
        )
        PendingEntry.objects.bulk_create([PendingEntry(entry_id=entry.id) for entry in entries], batch_size=1000)
        count = len(entries)
    _integrate_after_commit()
    return count


# Ids in the payloads' order (ORDER BY the ordinality), so the log keeps the batch's order.
_RECORD_MANY_POSTGRES = """
    WITH entry AS (
        INSERT INTO audit_entry (action, actor, payload, created_at)
        SELECT %s, %s, p.payload::jsonb, %s FROM unnest(%s::text[]) WITH ORDINALITY AS p (payload, n) ORDER BY p.n
        RETURNING id
    )
    INSERT INTO audit_pendingentry (entry_id) SELECT id FROM entry"""


def request_checkpoint() -> None:
    """After this transaction commits, integrate what is pending and sign a checkpoint covering it
    (a station sealed, a round tallied, results published: moments an observer will want signed)."""

    def sign() -> None:
        from audit.tasks import integrate_and_sign

        integrate_and_sign.delay()

    on_commit_once("audit.checkpoint", sign)  # one per transaction, however many stations it seals


_deferred = False


@contextmanager
def integration_deferred():
    """Leave entries pending while a bulk job runs (the demo, a benchmark), then integrate them at once.

    Nothing is lost: entries wait in the pending queue, and the integration at the end (or the
    periodic task) gives them their leaves.
    """
    global _deferred
    previous, _deferred = _deferred, True
    try:
        yield
    finally:
        _deferred = previous
    integrate_pending()


def _integrate_after_commit() -> None:
    if _deferred:
        return
    # One per transaction, however many entries it records; a failed one leaves the entries pending,
    # for the next integration or the periodic task.
    on_commit_once("audit.integrate", _ask_integrator)


def _ask_integrator() -> None:
    global _next_integration
    # With a broker, one delayed run per window per process covers every commit in the window,
    # instead of one message per station request; a commit after the window schedules the next.
    # Checked first: within the window, a vote asks nothing of Celery (its settings and its task
    # proxy cost a station request about 9 µs). Without a broker the window is never set.
    now = time.monotonic()
    if now < _next_integration:
        return
    task = _integrator()
    if task.app.conf.task_always_eager:
        task.delay()
        return
    _next_integration = now + INTEGRATION_WINDOW
    task.apply_async(countdown=INTEGRATION_WINDOW)


def reset_integration_window() -> None:
    """Forget the window (tests that switch from a broker to eager Celery in one process)."""
    global _next_integration
    _next_integration = 0.0


@cache
def _integrator():
    # The task itself, not the lazy proxy that `audit.tasks` exports.
    from audit.tasks import integrate_entries

    return integrate_entries._get_current_object()


def integrate_pending(*, batch_size: int = INTEGRATION_BATCH) -> int:
    """Give every committed, pending entry the next leaf index, in batches; returns how many.

    The only writer of leaves and nodes. Safe to run concurrently and repeatedly: each batch holds
    the integrator lock, and an entry leaves the pending queue in the same transaction that writes its
    leaf, so it is integrated exactly once. Signs a checkpoint afterwards when one is due.
    """
    total = 0
    while True:
        done = _integrate_batch(batch_size)
        total += done
        if done < batch_size:
            break
    if total:
        sign_checkpoint_if_due()
    return total


@transaction.atomic
def _integrate_batch(batch_size: int) -> int:
    transaction_lock("kalpi.audit.integrator")
    ids = list(PendingEntry.objects.order_by("entry_id").values_list("entry_id", flat=True)[:batch_size])
    if not ids:
        return 0
    size = tree_size()
    appender = merkle.TreeAppender.from_getter(size, NodeReader())
    leaves: list[tuple[int, int, bytes]] = []
    nodes: list[tuple[int, int, bytes]] = []
    # Columns, not model instances: building 2,000 Entry objects cost more than hashing them.
    rows = Entry.objects.filter(id__in=ids).order_by("id").values_list("id", "action", "actor", "payload", "created_at")
    for offset, (id_, action, actor, payload, created_at) in enumerate(rows):
        leaf = merkle.leaf_hash(canonical_bytes(entry_document(id_, action, actor, payload, created_at)))
        leaves.append((size + offset, id_, leaf))
        nodes.extend(appender.append(leaf))
    _append_rows(Leaf, ("index", "entry_id", "hash"), leaves)
    _append_rows(Node, ("level", "index", "hash"), nodes)
    PendingEntry.objects.filter(entry_id__in=ids).delete()
    return len(ids)


def _append_rows(model, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """Insert rows of an append-only table: COPY on PostgreSQL (measured several times faster than
    bulk_create's multi-row INSERTs, whose building and splitting dominated the integrator), batched
    INSERTs elsewhere."""
    if not rows:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(model._meta.get_field(c).column) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", rows)


@transaction.atomic
def sign_checkpoint(*, force: bool = False) -> Checkpoint | None:
    """Sign the tree as it stands; None when the latest checkpoint already covers it (unless forced).

    Holds the integrator lock, so the size and root it signs are those of one moment.
    """
    transaction_lock("kalpi.audit.integrator")
    size = tree_size()
    latest = Checkpoint.objects.order_by("-id").first()
    if latest is not None and latest.tree_size == size and not force:
        return None
    root = NodeReader().root(size)
    body = note.format_checkpoint(settings.KALPI_LOG_ORIGIN, size, root)
    return Checkpoint.objects.create(
        tree_size=size, root=root, note=note.sign(body, keys.signer()), created_at=timezone.now()
    )


def sign_checkpoint_if_due() -> Checkpoint | None:
    """Sign when the tree has grown and the latest checkpoint is older than the interval."""
    latest = Checkpoint.objects.order_by("-id").first()
    interval = timedelta(seconds=settings.KALPI_CHECKPOINT_INTERVAL)
    if latest is not None and timezone.now() - latest.created_at < interval:
        return None
    return sign_checkpoint()
