"""manage.py close_round ELECTION N: closes the round and every station still open in it."""

from django.core.management.base import BaseCommand

from ballots.management.commands._helpers import get_election, refusals_as_errors
from ballots.services.setup import close_round


class Command(BaseCommand):
    help = "Close round N of an election and all its stations."

    def add_arguments(self, parser):
        parser.add_argument("election")
        parser.add_argument("number", type=int)
        parser.add_argument("--user", default="cli")

    def handle(self, *args, election, number, user, **options):
        with refusals_as_errors():
            round_ = close_round(election=get_election(election), number=number, actor=user)
        self.stdout.write(f"Round {round_.number} of {election} is closed.")
