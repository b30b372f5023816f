"""Many writers at once on PostgreSQL: dense indices, no gaps, no duplicates, every committed entry
integrated exactly once, nothing from a rolled-back transaction."""

from __future__ import annotations

import threading

import pytest
from django.db import transaction

from audit import services
from audit.models import Action, Entry, Leaf, PendingEntry
from audit.verification import verify_database
from tests.conftest import is_postgres, run_threads

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgres_only():
    if not is_postgres():
        pytest.skip("SQLite has one writer at a time; concurrency is PostgreSQL's to prove")


class Rollback(Exception):
    pass


def test_many_writers_end_with_a_dense_log_of_exactly_the_committed_entries():
    writers, per_writer = 8, 30
    start = threading.Barrier(writers)

    def write(k: int) -> None:
        start.wait(10)
        for i in range(per_writer):
            try:
                with transaction.atomic():
                    services.record(action=Action.ROSTER_IMPORTED, actor=f"writer-{k}", payload={"i": i})
                    if i % 5 == 4:
                        raise Rollback  # the change failed: its entry must vanish with it
            except Rollback:
                pass

    assert run_threads(write, writers) == []
    services.integrate_pending()  # whatever a last after-commit run left behind
    committed = writers * per_writer * 4 // 5
    assert Entry.objects.count() == committed
    assert not Entry.objects.filter(payload__i__in=[4, 9, 14, 19, 24, 29]).exists()
    indices = list(Leaf.objects.order_by("index").values_list("index", flat=True))
    assert indices == list(range(committed))
    assert Leaf.objects.values("entry_id").distinct().count() == committed
    assert not PendingEntry.objects.exists()
    services.sign_checkpoint()
    assert verify_database().ok


def test_an_entry_committed_after_a_later_one_is_integrated_after_it_exactly_once():
    early_recorded, late_committed = threading.Event(), threading.Event()
    ids = {}

    def early(_: int) -> None:
        with transaction.atomic():
            ids["early"] = services.record(action=Action.ROSTER_IMPORTED, actor="early", payload={}).id
            early_recorded.set()
            assert late_committed.wait(30)
        # committed now; its integration runs after commit

    def late(_: int) -> None:
        assert early_recorded.wait(30)
        with transaction.atomic():
            ids["late"] = services.record(action=Action.ROSTER_IMPORTED, actor="late", payload={}).id
        late_committed.set()

    def both(k: int) -> None:
        (early if k == 0 else late)(k)

    assert run_threads(both, 2) == []
    services.integrate_pending()
    assert ids["early"] < ids["late"]
    order = list(Leaf.objects.order_by("index").values_list("entry_id", flat=True))
    assert order == [ids["late"], ids["early"]]


def test_integrators_racing_each_other_write_each_leaf_once(monkeypatch):
    # Leave the entries pending (as if the worker were down), then race four integrators on them.
    monkeypatch.setattr(services, "_integrate_after_commit", lambda: None)
    with transaction.atomic():
        for i in range(1000):
            services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={"i": i})
    assert PendingEntry.objects.count() == 1000
    assert run_threads(lambda k: services.integrate_pending(batch_size=50), 4) == []
    assert list(Leaf.objects.order_by("index").values_list("index", flat=True)) == list(range(1000))
    assert Leaf.objects.values("entry_id").distinct().count() == 1000 and not PendingEntry.objects.exists()
    services.sign_checkpoint()
    assert verify_database().ok
