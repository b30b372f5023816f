"""manage.py publish ELECTION N [--official]: publish round N's results now, as a signed version."""

from django.core.management.base import BaseCommand, CommandError

from ballots.management.commands._helpers import get_election, refusals_as_errors
from ballots.services import publish


class Command(BaseCommand):
    help = (
        "Publish round N's provisional results (tallied now), or with --official its certified results. "
        "Publishing what is already published writes nothing and prints the existing version."
    )

    def add_arguments(self, parser):
        parser.add_argument("election")
        parser.add_argument("number", type=int)
        parser.add_argument("--official", action="store_true", help="the certified results (after certification)")
        parser.add_argument("--user", default="cli")

    def handle(self, *args, election, number, official, user, **options):
        target = get_election(election)
        round_ = target.rounds.filter(number=number).first()
        if round_ is None:
            raise CommandError(f"{election} has no round {number}.")
        with refusals_as_errors():
            if official:
                publication = publish.publish_official(round_id=round_.id, actor=user)
            else:
                publication = publish.publish_provisional(round_id=round_.id, actor=user)
        if publication is None:
            if round_.certified_tally_id:
                raise CommandError(f"Round {number} of {election} is certified: publish its results with --official.")
            raise CommandError(f"Round {number} of {election} is {round_.status}: there are no results to publish.")
        self.stdout.write(
            f"{election} round {number}: version {publication.version} ({publication.status}), "
            f"sha256 {publication.sha256}, published {publication.published_at.isoformat()}."
        )
