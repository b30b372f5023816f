"""manage.py demo: the 2011 Labor Party leadership election, end to end, through the real code paths."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ballots.demo import SLUG, run_demo
from ballots.models import Election
from config.progress import Progress
from members.models import Member

DEMO_PASSWORD_ENV = "KALPI_DEMO_PASSWORD"


class Command(BaseCommand):
    help = "Build the 2011 Labor Party demo: roster, election, round one, tally, certification, runoff."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="do nothing when the database has a roster")
        parser.add_argument("--scale", type=float, default=1.0, help="shrink roster and counts (0 < scale <= 1)")

    def handle(self, *args, if_empty, scale, **options):
        if if_empty and Member.objects.exists():
            self.stdout.write("The database already has a roster; demo not loaded again.")
            return
        if Election.objects.filter(slug=SLUG).exists():
            raise CommandError(f"the election {SLUG} exists already; the demo needs an empty database")
        if not 0 < scale <= 1:
            raise CommandError("--scale must be above 0 and at most 1")
        # Demo accounts only make sense on a developer's machine.
        if not settings.DEBUG and not os.environ.get(DEMO_PASSWORD_ENV):
            raise CommandError(f"set {DEMO_PASSWORD_ENV} to run the demo when DEBUG is off")
        password = os.environ.get(DEMO_PASSWORD_ENV, "kalpi-demo")
        bars: dict[str, Progress] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                for bar in bars.values():
                    bar.close()
                bars.clear()
                unit = "B" if stage == "roster" else "voters" if "voting" in stage else "stations"
                bars[stage] = Progress(total=total, description=stage, unit=unit, unit_scale=unit == "B",
                                       stream=self.stderr._out)  # fmt: skip
            bars[stage].update_to(done)

        result = run_demo(progress=progress, password=password, scale=scale)
        for bar in bars.values():
            bar.close()
        for number, tally in result.tallies.items():
            outcome = tally.document["outcome"]
            leaders = ", ".join(f"{c['name']} {c['percent']}%" for c in tally.document["candidates"])
            self.stdout.write(
                f"Round {number}: {result.voters[number]} voters; {leaders}; "
                f"{outcome['decision']} {outcome['winner'] or ', '.join(outcome['advancing'])}"
            )
        slug = result.tallies[1].round.election.slug if result.tallies else "labor-2011"
        self.stdout.write(
            "\nLook at:\n"
            f"  http://127.0.0.1:8000/results/{slug}/rounds/1/   (round one: official, a runoff)\n"
            f"  http://127.0.0.1:8000/results/{slug}/rounds/2/   (the runoff: official, the winner)\n"
            f"  http://127.0.0.1:8000/results/{slug}/rounds/2/results.json\n"
            "  http://127.0.0.1:8000/admin/   (officials admin, clerk, moshe, dana, yossi, avi; "
            f"password {password!r})\n"
            f"  http://127.0.0.1:8000/api/v1/audit/checkpoint/\n"
            "  http://127.0.0.1:8000/api/docs/\n"
            "  http://127.0.0.1:8000/healthz\n"
        )
