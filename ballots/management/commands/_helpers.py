"""Shared bits of the election commands: finding an election, turning refusals into one-line errors."""

from __future__ import annotations

from contextlib import contextmanager

from django.core.management.base import CommandError

from ballots.election_file import ElectionFileError
from ballots.models import Election
from config.errors import DomainError


def get_election(slug: str) -> Election:
    election = Election.objects.filter(slug=slug).first()
    if election is None:
        raise CommandError(f"no election {slug!r}")
    return election


@contextmanager
def refusals_as_errors():
    """A refusal of the service becomes a clear one-line error and a non-zero exit."""
    try:
        yield
    except ElectionFileError as exc:
        raise CommandError("the election file is not valid:\n  " + "\n  ".join(exc.problems)) from None
    except DomainError as exc:
        raise CommandError(f"{exc.message} ({exc.code})") from None
