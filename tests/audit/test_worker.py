"""Production shape: a real Celery worker on the audit queue integrates entries shortly after commit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction

from audit import services
from audit.models import Action, PendingEntry
from audit.selectors import tree_size
from tests.conftest import database_url, is_postgres, wait_for

MAIN = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.real_celery, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def audit_worker(tmp_path):
    if not (settings.CELERY_BROKER_URL and is_postgres()):
        pytest.skip("needs PostgreSQL and a Redis broker (the CI's production run)")
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "KALPI_SIGNING_KEY": settings.KALPI_SIGNING_KEY,
        "KALPI_LOG_ORIGIN": settings.KALPI_LOG_ORIGIN,
    }
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", "audit", "--concurrency", "1",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO"],
        cwd=MAIN, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield worker
    worker.terminate()
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        worker.kill()
    log.close()


def test_the_audit_worker_integrates_entries_after_commit(audit_worker):
    with transaction.atomic():
        for i in range(50):
            services.record(action=Action.ROSTER_IMPORTED, actor="rina", payload={"i": i})
    # Nothing ran in this process: the task went through Redis to the worker.
    assert wait_for(lambda: tree_size() == 50), f"integrated {tree_size()} of 50"
    assert not PendingEntry.objects.exists()
    # The worker signs the first checkpoint once the tree has grown.
    from audit.selectors import latest_checkpoint

    assert wait_for(lambda: latest_checkpoint() is not None)
    assert latest_checkpoint().tree_size == 50
