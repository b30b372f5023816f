"""manage.py audit_keygen: a new Ed25519 signing key for checkpoints and results, in the signed-note format."""

from django.conf import settings
from django.core.management.base import BaseCommand

from audit import note


class Command(BaseCommand):
    help = "Print a new signer key (keep it secret: KALPI_SIGNING_KEY) and its verifier key (publish it)."

    def add_arguments(self, parser):
        parser.add_argument("--name", default=None, help="key name (default: KALPI_LOG_ORIGIN)")

    def handle(self, *args, name, **options):
        skey, vkey = note.generate_key(name or settings.KALPI_LOG_ORIGIN)
        self.stdout.write(f"signer key (secret, for KALPI_SIGNING_KEY):\n{skey}\nverifier key (public):\n{vkey}")
