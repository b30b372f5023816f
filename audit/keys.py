"""The service's signing key (outside the database) and the keyed pseudonym for members."""

from __future__ import annotations

import hashlib
import hmac
import os
from functools import cache, lru_cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from audit import note


def _signer_key_text() -> str:
    value = settings.KALPI_SIGNING_KEY
    if value:
        return value if value.startswith("PRIVATE+KEY+") else Path(value).read_text().strip()
    if not settings.KALPI_DEV_SIGNING_KEY_ALLOWED:
        raise ImproperlyConfigured(
            "KALPI_SIGNING_KEY must be set when DEBUG is off: the key that signs checkpoints and results "
            "must be the published one, not one made up on this machine."
        )
    # The embedded default: one key per checkout, made on first use, never committed.
    path = Path(settings.KALPI_DEV_SIGNING_KEY_FILE)
    if not path.exists():
        skey, _ = note.generate_key(key_name())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(skey + "\n")
    return path.read_text().strip()


def key_name() -> str:
    # A key name is the log's origin, as transparency logs name theirs.
    return settings.KALPI_LOG_ORIGIN


@cache
def signer() -> note.Signer:
    return note.Signer.from_key(_signer_key_text())


def verifier_key() -> str:
    """The public verifier key in the signed-note format: <name>+<key id>+<base64(0x01 ‖ key)>."""
    return signer().verifier_key


def verifier() -> note.Verifier:
    return note.Verifier.from_key(verifier_key())


def reset() -> None:
    """Forget the cached key (tests, or after rotating the key file)."""
    signer.cache_clear()


def member_pseudonym(member_no: str) -> str:
    """HMAC-SHA256(server secret, member number), hex: how a member appears in the public log."""
    key = _pseudonym_key(settings.KALPI_PSEUDONYM_KEY, settings.SECRET_KEY)
    return hmac.new(key, member_no.encode(), hashlib.sha256).hexdigest()


@lru_cache(maxsize=4)
def _pseudonym_key(configured: str, secret: str) -> bytes:
    # Derived once per setting, not once per check-in; keyed by both, so a changed setting takes effect.
    return configured.encode() or hmac.new(secret.encode(), b"kalpi.audit.pseudonym", hashlib.sha256).digest()
