"""Recording entries: in the change's transaction, integrated right after commit, never in a rollback."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection, transaction

from audit import services
from audit.canonical import canonical_bytes
from audit.models import Action, Entry, Leaf, PendingEntry
from audit.selectors import tree_size


def record(n: int = 1, **payload) -> list[Entry]:
    with transaction.atomic():
        return [
            services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={"n": i, **payload}) for i in range(n)
        ]


def test_an_entry_gets_its_leaf_right_after_commit(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        [entry] = record()
    leaf = Leaf.objects.get(entry=entry)
    assert leaf.index == 0 and not PendingEntry.objects.exists()
    document = {
        "id": entry.id,
        "action": "roster.imported",
        "actor": "rina",
        "payload": {"n": 0},
        "created_at": entry.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    assert entry.document() == document
    assert bytes(leaf.hash) == hashlib.sha256(b"\x00" + canonical_bytes(document)).digest()


def test_entries_of_one_transaction_get_dense_indices_in_order(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        entries = record(5)
    assert len(callbacks) == 1  # one integration per transaction, not one per entry
    assert list(Leaf.objects.order_by("index").values_list("index", "entry_id")) == [
        (i, e.id) for i, e in enumerate(entries)
    ]
    assert tree_size() == 5


@pytest.mark.django_db(transaction=True)
def test_it_refuses_to_record_outside_a_transaction():
    with pytest.raises(services.NotInTransaction):
        services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={})
    assert not Entry.objects.exists()


def test_a_rolled_back_change_leaves_no_entry(db, django_capture_on_commit_callbacks):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(ZeroDivisionError),
        transaction.atomic(),
    ):
        services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={})
        1 / 0  # noqa: B018 (the change fails after its entry was written)
    assert callbacks == []
    assert not Entry.objects.exists() and not PendingEntry.objects.exists() and tree_size() == 0


def test_it_refuses_an_unknown_action_and_a_float(db):
    with transaction.atomic():
        with pytest.raises(ValueError):
            services.record(action="roster.burned", actor="rina", payload={})
        with pytest.raises(TypeError):
            services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={"turnout": 66.7})
    assert not Entry.objects.exists()


def test_integration_is_safe_to_run_again(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        record(3)
    assert services.integrate_pending() == 0
    assert tree_size() == 3


def test_integration_works_in_batches(db):
    record(7)  # no on-commit callbacks run inside the test transaction: all seven wait
    assert PendingEntry.objects.count() == 7
    assert services.integrate_pending(batch_size=3) == 7
    assert list(Leaf.objects.values_list("index", flat=True).order_by("index")) == list(range(7))


def test_a_batch_is_recorded_in_its_order_each_entry_pending_once(db):
    payloads = [{"election": "labor-2011", "round": 1, "station": f"s-{i:04d}"} for i in range(1500)]
    with transaction.atomic():
        assert services.record_many(action=Action.BALLOT_RECORDED, actor="tlv-01", payloads=payloads) == 1500
        assert services.record_many(action=Action.BALLOT_RECORDED, actor="tlv-01", payloads=[]) == 0
    entries = list(Entry.objects.order_by("id"))
    assert [e.payload for e in entries] == payloads
    assert {(e.action, e.actor) for e in entries} == {(Action.BALLOT_RECORDED, "tlv-01")}
    assert len({e.created_at for e in entries}) == 1
    assert sorted(PendingEntry.objects.values_list("entry_id", flat=True)) == [e.id for e in entries]
    services.integrate_pending()
    assert list(Leaf.objects.order_by("index").values_list("entry_id", flat=True)) == [e.id for e in entries]


def test_a_batch_is_refused_outside_a_transaction():
    with pytest.raises(services.NotInTransaction):
        services.record_many(action=Action.BALLOT_RECORDED, actor="x", payloads=[{"a": 1}])


def test_a_batch_with_a_float_is_refused_whole(db):
    with pytest.raises(TypeError), transaction.atomic():
        services.record_many(action=Action.BALLOT_RECORDED, actor="x", payloads=[{"a": 1}, {"b": 0.5}])
    assert not Entry.objects.exists()


def test_the_integrator_skips_a_pending_id_with_no_entry(db):
    """The queue has no database key to its entries (both are written by one statement): a stray
    pending id, which only a bug or a hand in the database could make, is dropped, not integrated."""
    with transaction.atomic():
        services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={"rows": 1})
    PendingEntry.objects.create(entry_id=10**9)
    assert services.integrate_pending() == 2
    assert tree_size() == 1 and Leaf.objects.count() == 1
    assert not PendingEntry.objects.exists()


def test_the_pending_queue_has_no_database_key_to_check_at_commit(db):
    """The key's deferred check ran a sequential scan of audit_entry per audited write on connections
    that planned it while the log was small (docs/benchmarks.md, station ingest): it must not return."""
    if connection.vendor != "postgresql":
        pytest.skip("the plan of a key's check is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_constraint WHERE conrelid = 'audit_pendingentry'::regclass AND contype = 'f'"
        )
        assert cursor.fetchone()[0] == 0


def _needs_postgres() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a change and its entry in one statement is PostgreSQL's (SQLite has no writes in a WITH)")


_CHANGE = "INSERT INTO audit_bench_change (n) SELECT %(n)s WHERE %(n)s > 0 RETURNING n"


@pytest.fixture
def change_table(db):
    _needs_postgres()
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE audit_bench_change (n integer NOT NULL)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE audit_bench_change")


def _change_with_entry(n: int, payload: dict) -> list[tuple]:
    params = {"n": n, **services.with_entry_params(action=Action.OFFICIAL_ADDED, actor="rina", payload=payload)}
    with connection.cursor() as cursor:
        cursor.execute(services.with_entry_sql(_CHANGE), params)
        return cursor.fetchall()


def test_a_change_and_its_entry_in_one_statement(change_table):
    with transaction.atomic():
        assert _change_with_entry(7, {"n": 7}) == [(7,)]
    [entry] = Entry.objects.all()
    assert (entry.action, entry.actor, entry.payload) == ("official.added", "rina", {"n": 7})
    assert list(PendingEntry.objects.values_list("entry_id", flat=True)) == [entry.id]
    assert services.integrate_pending() == 1 and tree_size() == 1


def test_a_change_that_wrote_nothing_has_no_entry(change_table):
    with transaction.atomic():
        assert _change_with_entry(0, {"n": 0}) == []
    assert not Entry.objects.exists() and not PendingEntry.objects.exists()


def test_the_one_statement_form_refuses_what_record_refuses(change_table):
    with pytest.raises(TypeError):
        _change_with_entry(7, {"turnout": 66.7})
    with pytest.raises(ValueError):
        services.with_entry_params(action="roster.burned", actor="rina", payload={})
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit_bench_change")
        assert cursor.fetchone()[0] == 0
    assert not Entry.objects.exists()


def test_a_failing_one_statement_change_writes_no_entry(change_table):
    with pytest.raises(Exception), transaction.atomic():  # noqa: B017 (the database's own error)
        _change_with_entry(2**40, {"n": 1})  # out of range for an integer
    assert not Entry.objects.exists() and not PendingEntry.objects.exists()


# --- save_with_entry: a model's row and its entry (one statement on PostgreSQL) -----------------------


def _save(instance, **kwargs) -> None:
    with transaction.atomic():
        services.save_with_entry(
            instance, action=Action.MEMBER_CHANGED, actor="rina", payload={"code": instance.code}, **kwargs
        )


def test_save_with_entry_inserts_and_updates_as_save_would(db):
    from members.models import Branch

    branch = Branch(code="eilat", name="Eilat")
    _save(branch)
    assert branch.pk is not None and not branch._state.adding
    assert Branch.objects.values_list("id", "code", "name").get() == (branch.pk, "eilat", "Eilat")
    branch.name, branch.code = "Eilat Bay", "eilat-bay"
    _save(branch, update_fields=["name"])  # only the named field, as save(update_fields=...)
    assert Branch.objects.values_list("code", "name").get() == ("eilat", "Eilat Bay")
    assert [e.payload for e in Entry.objects.order_by("id")] == [{"code": "eilat"}, {"code": "eilat-bay"}]
    assert PendingEntry.objects.count() == 2


def test_save_with_entry_of_a_row_deleted_meanwhile_does_what_save_does(db):
    from django.db import DatabaseError

    from members.models import Branch

    branch = Branch.objects.create(code="eilat", name="Eilat")
    Branch.objects.all().delete()
    with pytest.raises(DatabaseError, match="did not affect any rows"):
        _save(branch, update_fields=["name"])
    assert not Entry.objects.exists()
    _save(branch)  # a whole save inserts the row again
    assert Branch.objects.values_list("id", "code").get() == (branch.pk, "eilat")
    assert Entry.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_save_with_entry_refuses_what_record_refuses_and_writes_nothing():
    from members.models import Branch

    with pytest.raises(services.NotInTransaction):
        services.save_with_entry(Branch(code="a", name="A"), action=Action.MEMBER_CHANGED, actor="r", payload={})
    with pytest.raises(TypeError), transaction.atomic():
        services.save_with_entry(
            Branch(code="b", name="B"), action=Action.MEMBER_CHANGED, actor="r", payload={"share": 0.4}
        )
    with pytest.raises(ValueError), transaction.atomic():
        services.save_with_entry(Branch(code="c", name="C"), action="branch.burned", actor="r", payload={})
    with pytest.raises(ValueError, match="new row"), transaction.atomic():
        branch = Branch.objects.create(code="d", name="D")
        services.save_with_entry(branch, action=Action.MEMBER_CHANGED, actor="r", payload={}, entry_field="name")
    assert not Branch.objects.exists() and not Entry.objects.exists()
