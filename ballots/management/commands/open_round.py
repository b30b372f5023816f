"""manage.py open_round ELECTION N."""

from django.core.management.base import BaseCommand

from ballots.management.commands._helpers import get_election, refusals_as_errors
from ballots.services.setup import open_round


class Command(BaseCommand):
    help = "Open round N of an election."

    def add_arguments(self, parser):
        parser.add_argument("election")
        parser.add_argument("number", type=int)
        parser.add_argument("--user", default="cli")

    def handle(self, *args, election, number, user, **options):
        with refusals_as_errors():
            round_ = open_round(election=get_election(election), number=number, actor=user)
        self.stdout.write(f"Round {round_.number} of {election} is open.")
