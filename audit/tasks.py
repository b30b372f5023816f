"""Celery tasks of the audit log: thin doors onto the services."""

from celery import shared_task

from audit import services


@shared_task(ignore_result=True)
def integrate_entries() -> int:
    """Integrate pending entries. Runs on its own queue with concurrency 1; the lock makes extra runs harmless."""
    return services.integrate_pending()


@shared_task(ignore_result=True)
def sign_checkpoint() -> int | None:
    """Sign a checkpoint if the tree has grown since the last one (celery beat, every minute)."""
    checkpoint = services.sign_checkpoint()
    return checkpoint.tree_size if checkpoint else None


@shared_task(ignore_result=True)
def integrate_and_sign() -> int | None:
    """Integrate pending entries, then sign a checkpoint if the tree has grown (on demand)."""
    services.integrate_pending()
    checkpoint = services.sign_checkpoint()
    return checkpoint.tree_size if checkpoint else None
