"""Settings come from the environment, and a bad value stops Kalpi at start with the variable named."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
_OURS = ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "CONN_MAX_AGE")


def start(**env: str) -> subprocess.CompletedProcess:
    """Start Django in a fresh process with exactly this Kalpi environment and print a few settings."""
    clean = {k: v for k, v in os.environ.items() if k not in _OURS}
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.CACHES['default']['BACKEND'], s.DEBUG)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_with_nothing_set_it_runs_embedded():
    result = start()
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3", "True", "django.core.cache.backends.locmem.LocMemCache", "True"
    ]  # fmt: skip


def test_the_environment_alone_chooses_production():
    result = start(
        DATABASE_URL="postgres://kalpi:pw@127.0.0.1:5999/kalpi",
        CELERY_BROKER_URL="redis://127.0.0.1:6999/0",
        REDIS_URL="redis://127.0.0.1:6999/1",
        SECRET_KEY="x" * 50,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql", "False", "django.core.cache.backends.redis.RedisCache", "False"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DATABASE_URL": "postgres://db/kalpi"}, "SECRET_KEY must be set when DEBUG is off"),
        ({"DEBUG": "0"}, "SECRET_KEY must be set when DEBUG is off"),
        ({"DATABASE_URL": "mysql://db/kalpi", "SECRET_KEY": "k" * 50}, "DATABASE_URL must be a postgres://"),
        ({"CELERY_BROKER_URL": "amqp://guest@localhost//"}, "CELERY_BROKER_URL must be a redis://"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must be a redis://"),
        ({"DEBUG": "maybe"}, "DEBUG must be one of"),
        (
            {"CONN_MAX_AGE": "forever", "DATABASE_URL": "postgres://db/k", "SECRET_KEY": "k" * 50},
            "CONN_MAX_AGE must be a whole number",
        ),
    ],
)
def test_a_bad_value_stops_it_with_a_sentence_naming_the_variable(env, message):
    result = start(**env)
    assert result.returncode != 0
    assert message in result.stderr
