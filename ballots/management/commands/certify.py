"""manage.py certify ELECTION N --user USERNAME: one committee member's approval of the latest tally."""

from django.core.management.base import BaseCommand

from ballots.management.commands._helpers import get_election, refusals_as_errors
from ballots.services.count import certify_round


class Command(BaseCommand):
    help = "Approve the latest tally of round N as a committee member; certified once enough approve."

    def add_arguments(self, parser):
        parser.add_argument("election")
        parser.add_argument("number", type=int)
        parser.add_argument("--user", required=True, help="the committee member approving")

    def handle(self, *args, election, number, user, **options):
        target = get_election(election)
        with refusals_as_errors():
            tally, approvals, certified = certify_round(election=target, number=number, username=user)
        required = target.certifications_required
        if certified:
            self.stdout.write(f"Round {number} of {election} is certified ({approvals} of {required} approvals).")
            if tally.decision == "runoff":
                runoff = target.rounds.get(number=number + 1)
                self.stdout.write(
                    f"Runoff between {', '.join(tally.document['outcome']['advancing'])}: round {runoff.number}, "
                    f"opens {runoff.opens_at.isoformat()}."
                )
        else:
            self.stdout.write(f"Approved by {user}: {approvals} of {required} approvals of tally {tally.number}.")
