"""Kalpi settings: one module, driven by the environment.

With nothing set, Kalpi runs embedded: SQLite, eager Celery, in-memory cache. Production is chosen by
environment alone (DATABASE_URL, CELERY_BROKER_URL, REDIS_URL, SECRET_KEY, ALLOWED_HOSTS).
"""

import os
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str, redis_url

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", default=not env_str("DATABASE_URL"))

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    # Only for the embedded default on a developer's machine; never used with DEBUG off.
    SECRET_KEY = "kalpi-insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "members",
    "ballots",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Published results, as whitenoise serves static files: before sessions, CSRF and authentication.
    "ballots.versions.PublishedResultsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite unless DATABASE_URL names PostgreSQL.
PREPARE_ONLY_WHEN_ASKED = 2**62  # executions before psycopg prepares a statement by itself: never
_database_url = env_str("DATABASE_URL")
if _database_url:
    if not _database_url.startswith(("postgres://", "postgresql://", "sqlite://")):
        raise ImproperlyConfigured(
            f"DATABASE_URL must be a postgres:// (or sqlite://) URL; got {_database_url.split('://')[0]}://…"
        )
    try:
        # Keeping connections open between requests (with health checks) is what lets a writing
        # view keep up on election day; a new connection per request costs more than the write.
        _default_db = dj_database_url.parse(
            _database_url, conn_max_age=env_int("CONN_MAX_AGE", 600), conn_health_checks=True
        )
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL could not be read: {exc}") from None
else:
    _default_db = {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}

if _default_db["ENGINE"] == "django.db.backends.sqlite3":
    _default_db.setdefault("OPTIONS", {}).update(
        {
            # Wait for the writer instead of failing with "database is locked"; take the write lock
            # at BEGIN so two writers never deadlock upgrading a read lock.
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests that start a second process (a killed import, a worker) need the test database in a file;
    # one per test run, so two runs at once do not share it.
    _default_db["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"kalpi-test-{os.getpid()}.sqlite3")}
else:
    # One test database per test run, so two runs against one server do not drop each other's.
    _default_db["TEST"] = {"NAME": f"test_{_default_db['NAME']}_{os.getpid()}"}
    # psycopg prepares only what config.db.prepared_cursor asks it to (the station API's few hot
    # statements, the audit entry of audit.record); Django's own queries are never prepared. None
    # would turn preparing off entirely.
    _default_db.setdefault("OPTIONS", {})["prepare_threshold"] = PREPARE_ONLY_WHEN_ASKED
DATABASES = {"default": _default_db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cache: Redis when REDIS_URL is set, else in-process memory.
REDIS_URL = redis_url("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: eager in the embedded default, so `make run` needs nothing but Python.
CELERY_BROKER_URL = redis_url("CELERY_BROKER_URL")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
# Eager tasks raise in the caller, so a failing task fails the request or the test that ran it.
CELERY_TASK_EAGER_PROPAGATES = True
# A task is acknowledged only when it has finished: a killed worker's task runs again elsewhere.
CELERY_TASK_ACKS_LATE = True
# One message at a time per worker process, so a long task does not hold others hostage.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A stuck task is stopped rather than holding a worker for ever.
# Redis gives an unacknowledged task (its worker killed) to another worker after this many seconds.
# Longer than any task may run (the time limit below) and any countdown, so no live task runs twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("KALPI_TASK_VISIBILITY_TIMEOUT", 600)}
CELERY_TASK_SOFT_TIME_LIMIT = 300
CELERY_TASK_TIME_LIMIT = 330
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_BACKEND = None
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The audit integrator is the only writer of leaves: its own queue, served by one worker process
# (`celery -A config worker -Q audit --concurrency 1`), so it never waits behind publications.
CELERY_TASK_ROUTES = {"audit.tasks.*": {"queue": "audit"}}
CELERY_BEAT_SCHEDULE = {
    # A safety net: entries are integrated right after their commit; this catches any whose
    # after-commit trigger was lost (a worker restart), so none waits more than a few seconds.
    "audit-integrate": {"task": "audit.tasks.integrate_entries", "schedule": 5.0},
    "audit-checkpoint": {"task": "audit.tasks.sign_checkpoint", "schedule": 60.0},
    # Provisional results of every round being counted, whether or not a station reported just now.
    "publish-counting-rounds": {"task": "ballots.tasks.publish_counting_rounds", "schedule": 60.0},
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
TIME_ZONE = env_str("TIME_ZONE", "Asia/Jerusalem")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "config" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# In development whitenoise serves straight from the apps' static folders, no collectstatic needed.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "media")

# Roster files uploaded in the admin wait here between the dry run and the confirmation.
ROSTER_UPLOAD_DIR = MEDIA_ROOT / "roster-uploads"
# Roster files can be large: 1,000,000 members is about 80 MB.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# The audit log. The signing key lives outside the database: the signer key string itself
# ("PRIVATE+KEY+<name>+<id>+<key>", see `manage.py audit_keygen`) or the path of a file holding it.
# Without one, the embedded default makes a key file for the developer's machine; production must
# set it (refused at first use otherwise: a key made up on the spot would not be the published one).
KALPI_SIGNING_KEY = env_str("KALPI_SIGNING_KEY")
if KALPI_SIGNING_KEY and not KALPI_SIGNING_KEY.startswith("PRIVATE+KEY+") and not Path(KALPI_SIGNING_KEY).is_file():
    raise ImproperlyConfigured(
        "KALPI_SIGNING_KEY must be a signer key (PRIVATE+KEY+…) or the path of a file holding one."
    )
KALPI_DEV_SIGNING_KEY_FILE = BASE_DIR / ".kalpi-signing-key"
# Decided once, at start: a bulk job that switches DEBUG off for speed keeps the development key.
KALPI_DEV_SIGNING_KEY_ALLOWED = DEBUG
# The checkpoint's origin line: names this log, so a checkpoint cannot pass for another log's.
KALPI_LOG_ORIGIN = env_str("KALPI_LOG_ORIGIN", "kalpi.localhost/audit")
# Members appear in the log as HMAC-SHA256(this key, member number). It must never change while a
# roster is in use, or pseudonyms would stop matching; by default it is derived from SECRET_KEY.
KALPI_PSEUDONYM_KEY = env_str("KALPI_PSEUDONYM_KEY")
# A checkpoint is signed at least this often (seconds) while entries arrive.
KALPI_CHECKPOINT_INTERVAL = env_int("KALPI_CHECKPOINT_INTERVAL", 60)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "config.schema.AutoSchema",
    "EXCEPTION_HANDLER": "config.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Kalpi API",
    "DESCRIPTION": "Station, public and audit API of Kalpi, the party election service.",
    "VERSION": "1.0.0",
    # The interactive docs' assets are served by Kalpi itself, not fetched from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Two models have a "status": name their choice sets after the model, not after a hash.
    "ENUM_NAME_OVERRIDES": {
        "ElectionStatusEnum": "ballots.models.Election.Status",
        "RoundStatusEnum": "ballots.models.Round.Status",
    },
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # Eager tasks would otherwise log a line each, thousands in a bulk job.
    "loggers": {"celery": {"level": env_str("CELERY_LOG_LEVEL", "WARNING")}},
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
