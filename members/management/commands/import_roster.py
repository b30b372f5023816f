"""manage.py import_roster FILE.csv [--dry-run]: the party's roster export into Kalpi, all or nothing."""

import os

from django.core import checks
from django.core.management.base import BaseCommand, CommandError

from config.progress import Progress
from members.services import RosterFileError, import_roster


class Command(BaseCommand):
    help = "Import the party's roster CSV: upsert by member number, all or nothing."
    # The checks of what an import touches, the models. All of them (URLs, admin, templates, security)
    # first imported every view and cost 0.1 s of each import; `manage.py check` still runs them.
    requires_system_checks = [checks.Tags.models]

    def add_arguments(self, parser):
        parser.add_argument("file", help="CSV with header member_no,first_name,last_name,branch,joined_on,status")
        parser.add_argument("--dry-run", action="store_true", help="check the file and report, write nothing")
        parser.add_argument("--user", default="cli", help="the official running the import, for the audit log")
        parser.add_argument("--max-errors", type=int, default=50, help="bad rows to print (all are counted)")

    def handle(self, *args, file, dry_run, user, max_errors, **options):
        try:
            size = os.path.getsize(file)
            handle = open(file, "rb")  # noqa: SIM115 (closed below)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        progress = Progress(
            total=size, description="Reading roster", unit="B", unit_scale=True, stream=self.stderr._out
        )
        try:
            with handle:
                report = import_roster(
                    stream=handle,
                    dry_run=dry_run,
                    actor=user,
                    on_progress=lambda done, rows: progress.update_to(done, f"{rows} rows"),
                )
        except RosterFileError as exc:
            raise CommandError(f"{file}: {exc}") from None
        finally:
            progress.close()

        for error in report.errors[:max_errors]:
            self.stderr.write(f"{file}: {error}")
        if report.error_count > max_errors:
            self.stderr.write(f"… and {report.error_count - max_errors} more error(s)")
        self.stdout.write(
            f"created {report.created}, updated {report.updated}, unchanged {report.unchanged}, "
            f"rejected {report.rejected}"
        )
        self.stdout.write(f"sha256 {report.sha256}")
        if not report.ok:
            raise CommandError(report.summary())
        self.stdout.write(self.style.SUCCESS(report.summary()))
