"""/healthz: 200 when the database (and Redis, when configured) answer; 503 naming what failed."""

import pytest
from django.db import connection


def test_it_answers_ok_when_the_database_answers(client, db, settings):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["checks"]["database"] == "ok"
    # Redis is checked exactly when it is configured (it is in the PostgreSQL + Redis CI run).
    assert ("redis" in body["checks"]) == bool(settings.REDIS_URL)
    assert ("broker" in body["checks"]) == bool(settings.CELERY_BROKER_URL)
    assert response["Cache-Control"].startswith("max-age=0")


def test_it_answers_503_when_redis_is_configured_but_down(client, db, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"] == "error: ConnectionError"


def test_it_answers_503_when_the_database_is_down(client, db, monkeypatch):
    class BrokenConnection:
        def cursor(self):
            raise connection.Database.OperationalError("connection refused")

    monkeypatch.setattr("config.health.connection", BrokenConnection())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "error: OperationalError"


@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_it_only_answers_get(client, db, method):
    assert getattr(client, method)("/healthz").status_code == 405
