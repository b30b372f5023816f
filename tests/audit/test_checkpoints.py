"""Checkpoints: signed when the tree grows, at least every interval while entries arrive, on demand."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

from django.db import transaction
from django.utils import timezone

from audit import keys, note, services
from audit.models import Action, Checkpoint
from audit.selectors import NodeReader


def add(n: int = 1) -> None:
    with transaction.atomic():
        for i in range(n):
            services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={"i": i})
    services.integrate_pending()


def test_the_first_integration_signs_a_checkpoint_of_the_tree(db):
    add(3)
    checkpoint = Checkpoint.objects.get()
    body = note.open_note(checkpoint.note, [keys.verifier()])
    assert note.parse_checkpoint(body) == note.Checkpoint("kalpi.test/audit", 3, NodeReader().root(3))
    assert bytes(checkpoint.root) == NodeReader().root(3) and checkpoint.tree_size == 3


def test_it_signs_again_only_once_the_interval_has_passed(db, settings):
    settings.KALPI_CHECKPOINT_INTERVAL = 60
    add()
    add()
    assert list(Checkpoint.objects.values_list("tree_size", flat=True)) == [1]
    # Checkpoints cannot be back-dated (append-only), so the clock moves forward instead.
    later = timezone.now() + timedelta(seconds=61)
    with mock.patch("audit.services.timezone.now", return_value=later):
        add()
    assert list(Checkpoint.objects.values_list("tree_size", flat=True)) == [1, 3]


def test_the_periodic_task_signs_only_when_the_tree_has_grown(db):
    from audit.tasks import sign_checkpoint

    add(2)
    assert sign_checkpoint() is None
    add(2)  # within the interval: no checkpoint from the integration
    assert sign_checkpoint() == 4
    assert list(Checkpoint.objects.values_list("tree_size", flat=True)) == [2, 4]


def test_a_forced_checkpoint_is_signed_even_when_nothing_changed(db):
    add()
    assert services.sign_checkpoint() is None
    assert services.sign_checkpoint(force=True).tree_size == 1
    assert Checkpoint.objects.count() == 2


def test_the_empty_tree_can_be_signed(db):
    checkpoint = services.sign_checkpoint()
    assert checkpoint.tree_size == 0 and bytes(checkpoint.root).hex().startswith("e3b0c442")
