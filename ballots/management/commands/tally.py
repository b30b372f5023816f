"""manage.py tally ELECTION N [--json]: count a round from its seals and print the results."""

import json

from django.core.management.base import BaseCommand

from ballots.management.commands._helpers import get_election, refusals_as_errors
from ballots.services.count import tally_round


class Command(BaseCommand):
    help = "Tally round N of an election from its sealed ballots and accepted returns."

    def add_arguments(self, parser):
        parser.add_argument("election")
        parser.add_argument("number", type=int)
        parser.add_argument("--json", action="store_true", help="print the results document as JSON")
        parser.add_argument("--user", default="cli")

    def handle(self, *args, election, number, user, **options):
        as_json = options["json"]
        with refusals_as_errors():
            tally = tally_round(election=get_election(election), number=number, actor=user)
        document = tally.document
        if as_json:
            self.stdout.write(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False))
            return
        stations = document["stations"]
        self.stdout.write(
            f"{document['election']} round {document['round']}, tally {tally.number} "
            f"({'complete' if tally.complete else 'provisional'}): stations {stations['reported']} of "
            f"{stations['total']}, electorate {document['electorate']}, checked in {document['checked_in']} "
            f"({document['turnout_percent']}%), cast {document['cast']}, valid {document['valid']}, "
            f"blank {document['blank']}, invalid {document['invalid']}"
        )
        for candidate in document["candidates"]:
            self.stdout.write(f"  {candidate['name']:<30} {candidate['votes']:>9}  {candidate['percent']:>6}%")
        outcome = document["outcome"]
        line = f"outcome: {outcome['decision']}"
        if outcome["winner"]:
            line += f", winner {outcome['winner']}"
        if outcome["advancing"]:
            line += f", advancing {', '.join(outcome['advancing'])}"
        self.stdout.write(line)
        self.stdout.write(f"sha256 {tally.sha256}")
