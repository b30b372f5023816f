"""manage.py verify_audit [--bundle DIR]: check the whole audit log; non-zero naming the first problem."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.selectors import tree_size
from audit.verification import verify_database
from audit.verify import verify_bundle
from config.progress import Progress


class Command(BaseCommand):
    help = "Verify the audit log: every leaf, every checkpoint's root and signature, their consistency."

    def add_arguments(self, parser):
        parser.add_argument("--bundle", help="verify an exported bundle (export_audit) instead of the database")

    def handle(self, *args, bundle, **options):
        if bundle:
            if not Path(bundle).is_dir():
                raise CommandError(f"{bundle} is not a directory")
            report = verify_bundle(bundle)
        else:
            progress = Progress(total=tree_size(), description="Verifying", unit="entries", stream=self.stderr._out)
            with progress:
                report = verify_database(on_progress=progress.update_to)
        if not report.ok:
            raise CommandError(report.summary())
        self.stdout.write(report.summary())
