"""manage.py export_audit DIR: the whole audit log as a bundle anyone can verify with `python -m audit.verify`."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit import services
from audit.selectors import tree_size
from audit.verification import export_bundle
from config.progress import Progress


class Command(BaseCommand):
    help = "Export entries, checkpoints and the public key to DIR for independent verification."

    def add_arguments(self, parser):
        parser.add_argument("directory")

    def handle(self, *args, directory, **options):
        target = Path(directory)
        if target.exists() and any(target.iterdir()):
            raise CommandError(f"{target} is not empty; export into a new directory")
        # Everything committed so far goes in, under a checkpoint signed for it.
        services.integrate_pending()
        services.sign_checkpoint()
        progress = Progress(total=tree_size(), description="Exporting", unit="entries", stream=self.stderr._out)
        with progress:
            size = export_bundle(target, on_progress=progress.update_to)
        self.stdout.write(f"Exported {size} entries to {target}; verify with: python -m audit.verify {target}")
