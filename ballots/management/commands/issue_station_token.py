"""manage.py issue_station_token ELECTION STATION: a device token, printed once."""

from django.core.management.base import BaseCommand, CommandError

from ballots.management.commands._helpers import get_election
from ballots.services.setup import issue_station_token


class Command(BaseCommand):
    help = "Issue a device token for a station; the key is printed once and only its hash is kept."

    def add_arguments(self, parser):
        parser.add_argument("election")
        parser.add_argument("station")
        parser.add_argument("--user", default="cli")

    def handle(self, *args, election, station, user, **options):
        target = get_election(election).stations.filter(code=station).first()
        if target is None:
            raise CommandError(f"{election} has no station {station!r}")
        _, key = issue_station_token(station=target, actor=user)
        self.stdout.write(key)
