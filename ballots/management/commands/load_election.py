"""manage.py load_election FILE.json: create an election, or update it while it is a draft."""

import json

from django.core.management.base import BaseCommand, CommandError

from ballots.management.commands._helpers import refusals_as_errors
from ballots.models import Election
from ballots.services.setup import load_election


class Command(BaseCommand):
    help = "Create or update (while a draft) an election from its JSON file."

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--user", default="cli", help="the official loading it, for the audit log")

    def handle(self, *args, file, user, **options):
        try:
            with open(file, encoding="utf-8") as handle:
                data = json.load(handle)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CommandError(f"{file} is not JSON: {exc}") from None
        before = (
            Election.objects.filter(slug=data.get("slug") if isinstance(data, dict) else None)
            .values_list("definition", flat=True)
            .first()
        )
        with refusals_as_errors():
            election, created = load_election(data=data, actor=user)
        verb = "Created" if created else ("Updated" if election.definition != before else "Unchanged:")
        self.stdout.write(
            f"{verb} {election.slug}: {election.candidates.count()} candidates, {election.stations.count()} stations, "
            f"{election.rounds.count()} round(s)."
        )
