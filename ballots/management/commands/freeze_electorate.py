"""manage.py freeze_electorate ELECTION: snapshot the eligible members as the electorate."""

from django.core.management.base import BaseCommand

from ballots.management.commands._helpers import get_election, refusals_as_errors
from ballots.services.setup import freeze_electorate


class Command(BaseCommand):
    help = "Freeze the electorate of an election at its roster cutoff."

    def add_arguments(self, parser):
        parser.add_argument("election")
        parser.add_argument("--user", default="cli")

    def handle(self, *args, election, user, **options):
        target = get_election(election)
        with refusals_as_errors():
            size = freeze_electorate(election=target, actor=user)
        self.stdout.write(f"Froze the electorate of {target.slug}: {size} members.")
