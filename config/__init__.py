"""Kalpi project configuration: settings, URLs, Celery app, error envelope."""

from .celery import app as celery_app

__all__ = ["celery_app"]
