"""Celery tasks of publication: thin doors onto ballots.services.publish, taking ids.

Acknowledged only when done (acks_late) and given back to the queue if the worker dies, so a killed
publication runs again; the publication itself is one transaction and idempotent, so the rerun either
finds the version written or writes it whole. Only transient database failures are retried: a refusal
(a round not certified, say) is final.
"""

from __future__ import annotations

from celery import shared_task
from django.db import InterfaceError, OperationalError

from ballots.services import publish

TRANSIENT = (OperationalError, InterfaceError)
_OPTIONS = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT,
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "max_retries": 8,
    "ignore_result": True,
}


@shared_task(**_OPTIONS)
def publish_provisional(round_id: int) -> int | None:
    """Publish the round's provisional results if its tally changed; returns the version."""
    publish.clear_pending(round_id)
    publication = publish.publish_provisional(round_id=round_id)
    return publication.version if publication else None


@shared_task(**_OPTIONS)
def publish_official(round_id: int) -> int:
    """Publish the certified round's official results (once); returns the version."""
    return publish.publish_official(round_id=round_id).version


@shared_task(ignore_result=True)
def publish_counting_rounds() -> int:
    """Celery beat, every minute: provisional results of every round being counted, and the official
    results of any certified round still without them (a lost message is caught up here)."""
    counting, unpublished = publish.rounds_to_publish()
    for round_id in counting:
        publish_provisional.delay(round_id)
    for round_id in unpublished:
        publish_official.delay(round_id)
    return len(counting) + len(unpublished)
