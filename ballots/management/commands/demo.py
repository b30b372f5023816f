"""manage.py demo: the 2011 Labor Party scenario, built through the real code paths.

So far it loads the party roster (about 66,000 members in branches) through the roster import and
creates demo officials; the elections, stations and rounds come with the issues that build them.
"""

import io
import os

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from config.progress import Progress
from members.fake_roster import roster_csv_bytes
from members.models import Member
from members.services import import_roster

ROSTER_SIZE = 66_000
DEMO_PASSWORD_ENV = "KALPI_DEMO_PASSWORD"


class Command(BaseCommand):
    help = "Load the 2011 Labor Party demo (roster of 66,000 members and demo officials)."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="do nothing when the roster has members")
        parser.add_argument("--members", type=int, default=ROSTER_SIZE, help="roster size")

    def handle(self, *args, if_empty, members, **options):
        if if_empty and Member.objects.exists():
            self.stdout.write("The database already has a roster; demo not loaded again.")
            return
        if members < 1:
            raise CommandError("--members must be at least 1")
        data = roster_csv_bytes(members)
        progress = Progress(
            total=len(data), description="Demo roster", unit="B", unit_scale=True, stream=self.stderr._out
        )
        with progress:
            report = import_roster(
                stream=io.BytesIO(data),
                actor="demo",
                on_progress=lambda done, rows: progress.update_to(done, f"{rows} rows"),
            )
        if not report.ok:
            raise CommandError(f"the demo roster was refused: {report.summary()}")
        self.stdout.write(report.summary())
        password = self._create_officials()
        self.stdout.write(
            "\nLook at:\n"
            "  http://127.0.0.1:8000/admin/   (superuser 'admin', roster clerk 'clerk'; "
            f"password {password!r})\n"
            "  http://127.0.0.1:8000/healthz\n"
        )

    @transaction.atomic
    def _create_officials(self) -> str:
        # Demo accounts only make sense on a developer's machine; never in production.
        if not settings.DEBUG and not os.environ.get(DEMO_PASSWORD_ENV):
            raise CommandError(f"set {DEMO_PASSWORD_ENV} to create demo officials when DEBUG is off")
        password = os.environ.get(DEMO_PASSWORD_ENV, "kalpi-demo")
        admin, created = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
        if created:
            admin.set_password(password)
            admin.save()
        clerk, created = User.objects.get_or_create(username="clerk", defaults={"is_staff": True})
        if created:
            clerk.set_password(password)
            clerk.save()
            clerk.groups.add(Group.objects.get(name="roster clerk"))
        return password
