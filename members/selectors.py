"""Reads of the roster that carry a rule: who is eligible to vote in an election."""

from __future__ import annotations

from datetime import date

from django.db.models import QuerySet

from members.models import Member


def eligible_members(*, cutoff: date, require_dues: bool) -> QuerySet[Member]:
    """Members eligible for an election with this roster cutoff.

    Active, joined on or before the cutoff, and, when the election requires it, dues paid through the
    cutoff (paid until the cutoff date or later). The roster keeps each member's current status, so
    this is the roster as it stands now, read at the cutoff; freezing the electorate keeps the answer.
    """
    members = Member.objects.filter(status=Member.Status.ACTIVE, joined_on__lte=cutoff)
    if require_dues:
        members = members.filter(dues_paid_until__gte=cutoff)
    return members
