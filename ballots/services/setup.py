"""Setting an election up: the election file, the electorate, officials and station tokens, rounds."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.contrib.auth.models import Group, User
from django.db import connection, transaction
from django.utils import timezone

from audit import services as audit
from audit.canonical import canonical_bytes
from audit.keys import member_pseudonym
from audit.models import Action
from ballots.election_file import ElectionSpec, parse_election_file
from ballots.errors import ElectionFrozen, RoundStateError
from ballots.models import Candidate, Election, Elector, Round, Station, StationRound, StationToken
from ballots.services import publish
from ballots.services.station import close_station
from config.errors import Invalid, NotFound
from members.models import Member
from members.selectors import eligible_members

ROLES = {
    "committee": "election committee",
    "clerk": "roster clerk",
    "station_manager": "station manager",
    "auditor": "auditor",
}


@transaction.atomic
def load_election(*, data: Any, actor: str) -> tuple[Election, bool]:
    """Create an election from its file, or replace the definition of a draft one.

    Raises ElectionFileError naming every problem, or ElectionFrozen once the electorate is frozen.
    Returns (election, created). Safe to run twice with the same file.
    """
    spec = parse_election_file(data)
    election = Election.objects.select_for_update(no_key=True).filter(slug=spec.slug).first()
    created = election is None
    if election is not None and election.status != Election.Status.DRAFT:
        raise ElectionFrozen(f"The electorate of {spec.slug} is frozen; its definition can no longer change.")
    definition = _definition(spec)
    if election is None:
        election = Election(slug=spec.slug)
    elif election.definition == definition:
        return election, False
    election.name = spec.name
    election.roster_cutoff = spec.roster_cutoff
    election.require_dues = spec.require_dues
    election.rule = spec.rule
    election.runoff_after_days = spec.runoff_after_days
    election.certifications_required = spec.certifications_required
    election.definition = definition
    audit.save_with_entry(
        election,
        action=Action.ELECTION_LOADED,
        actor=actor,
        payload={
            "election": election.slug,
            "created": created,
            "sha256": hashlib.sha256(canonical_bytes(definition)).hexdigest(),
            "definition": definition,
        },
    )
    # A draft has no check-ins, ballots or electorate yet: candidates and rounds are simply replaced.
    # Stations are kept by code, so device tokens already handed out keep working; a station that
    # left the file goes, with its tokens.
    election.rounds.all().delete()
    election.candidates.all().delete()
    Candidate.objects.bulk_create(
        [Candidate(election=election, position=i, **c) for i, c in enumerate(spec.candidates)]
    )
    existing = {station.code: station for station in election.stations.all()}
    election.stations.exclude(code__in=[s["code"] for s in spec.stations]).delete()
    for position, fields in enumerate(spec.stations):
        station = existing.get(fields["code"]) or Station(election=election)
        for name, value in {**fields, "position": position}.items():
            setattr(station, name, value)
        station.save()
    Round.objects.bulk_create(
        [Round(election=election, number=r.number, opens_at=r.opens_at, closes_at=r.closes_at) for r in spec.rounds]
    )
    return election, created


def _definition(spec: ElectionSpec) -> dict[str, Any]:
    return {
        "slug": spec.slug,
        "name": spec.name,
        "roster_cutoff": spec.roster_cutoff.isoformat(),
        "require_dues": spec.require_dues,
        "candidates": spec.candidates,
        "stations": spec.stations,
        "rule": spec.rule,
        "rounds": [
            {"number": r.number, "opens_at": r.opens_at.isoformat(), "closes_at": r.closes_at.isoformat()}
            for r in spec.rounds
        ],
        "runoff_after_days": spec.runoff_after_days,
        "certifications_required": spec.certifications_required,
    }


def member_station(stations: list[Station], branch_code: str) -> Station | None:
    """The member's station: the first, in the file's order, serving the branch, else the first serving all."""
    for station in stations:
        if branch_code in station.branches:
            return station
    return next((s for s in stations if not s.branches), None)


@transaction.atomic
def freeze_electorate(*, election: Election, actor: str) -> int:
    """Snapshot the members eligible at the roster cutoff as the election's electorate; returns its size.

    Later roster changes do not change who may vote. Locks the election row; refuses a second freeze.
    The audit entry carries the size and a digest of the sorted member pseudonyms, so anyone holding
    the electorate's pseudonyms can check it.
    """
    election = Election.objects.select_for_update(no_key=True).get(pk=election.pk)
    if election.status != Election.Status.DRAFT:
        raise ElectionFrozen(f"The electorate of {election.slug} is already frozen.")
    stations = list(election.stations.order_by("position"))
    by_branch: dict[str, Station | None] = {}
    electors = []
    pseudonyms = []
    members = eligible_members(cutoff=election.roster_cutoff, require_dues=election.require_dues)
    for member_id, member_no, branch_code in members.values_list("id", "member_no", "branch__code").iterator(
        chunk_size=5000
    ):
        if branch_code not in by_branch:
            by_branch[branch_code] = member_station(stations, branch_code)
        electors.append(
            Elector(election=election, member_id=member_id, branch_code=branch_code, station=by_branch[branch_code])
        )
        pseudonyms.append(member_pseudonym(member_no))
    Elector.objects.bulk_create(electors, batch_size=5000)
    election.status = Election.Status.FROZEN
    election.electorate_frozen_at = timezone.now()
    digest = hashlib.sha256("\n".join(sorted(pseudonyms)).encode()).hexdigest()
    unserved = sorted(code for code, station in by_branch.items() if station is None)
    audit.save_with_entry(
        election,
        update_fields=["status", "electorate_frozen_at"],
        action=Action.ELECTORATE_FROZEN,
        actor=actor,
        payload={
            "election": election.slug,
            "cutoff": election.roster_cutoff.isoformat(),
            "require_dues": election.require_dues,
            "size": len(electors),
            "pseudonyms_sha256": digest,
            "branches_without_station": unserved,
        },
    )
    return len(electors)


@transaction.atomic
def change_electorate(*, election: Election, member_no: str, add: bool, reason: str, actor: str) -> Elector:
    """Add one member to, or remove one from, a frozen electorate, with a reason; audited."""
    if not reason.strip():
        raise Invalid("A reason is required.", fields={"reason": ["A reason is required."]})
    election = Election.objects.select_for_update(no_key=True).get(pk=election.pk)
    if election.status != Election.Status.FROZEN:
        raise RoundStateError("The electorate is not frozen yet: change the roster instead.")
    member = Member.objects.select_related("branch").filter(member_no=member_no).first()
    if member is None:
        raise NotFound(f"No member {member_no} in the roster.")
    elector = Elector.objects.select_for_update().filter(election=election, member=member).first()
    now = timezone.now()
    if add:
        if elector is not None and elector.removed_at is None:
            raise Invalid(f"Member {member_no} is already in the electorate.")
        if elector is None:
            station = member_station(list(election.stations.order_by("position")), member.branch.code)
            elector = Elector(election=election, member=member, branch_code=member.branch.code, station=station)
        elector.removed_at, elector.removed_by, elector.removal_reason = None, "", ""
        elector.added_by, elector.addition_reason = actor, reason
    else:
        if elector is None or elector.removed_at is not None:
            raise Invalid(f"Member {member_no} is not in the electorate.")
        elector.removed_at, elector.removed_by, elector.removal_reason = now, actor, reason
    audit.save_with_entry(
        elector,
        action=Action.ELECTORATE_CHANGED,
        actor=actor,
        payload={
            "election": election.slug,
            "member": member_pseudonym(member_no),
            "change": "added" if add else "removed",
            "reason": reason,
        },
    )
    return elector


@transaction.atomic
def issue_station_token(*, station: Station, actor: str) -> tuple[StationToken, str]:
    """A new device token for the station; returns it with its key, which is shown once and not stored."""
    key = secrets.token_urlsafe(32)
    token = StationToken(
        station=station, key_hash=hash_key(key), prefix=key[:8], created_at=timezone.now(), created_by=actor
    )
    audit.save_with_entry(
        token,
        action=Action.STATION_TOKEN_ISSUED,
        actor=actor,
        payload={"election": station.election.slug, "station": station.code, "token": token.prefix},
    )
    return token, key


@transaction.atomic
def revoke_station_token(*, token: StationToken, actor: str) -> bool:
    """Revoke a device token at once; False if it was already revoked. Safe to call twice."""
    entry = {
        "action": Action.STATION_TOKEN_REVOKED,
        "actor": actor,
        "payload": {"election": token.station.election.slug, "station": token.station.code, "token": token.prefix},
    }
    now = timezone.now()
    if connection.vendor == "postgresql":  # the revocation and its entry in one statement
        return audit.run_with_entry(_REVOKE, {"id": token.pk, "at": now, "by": actor}, **entry) is not None
    updated = StationToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=now, revoked_by=actor)
    if updated:
        audit.record(**entry)
    return bool(updated)


REVOKE_TOKEN = (
    f"UPDATE {StationToken._meta.db_table} SET revoked_at = %(at)s, revoked_by = %(by)s"
    " WHERE id = %(id)s AND revoked_at IS NULL RETURNING id"
)
_REVOKE = audit.with_entry_sql(REVOKE_TOKEN)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def add_official(*, username: str, role: str, password: str, actor: str) -> User:
    """Create an official (staff user) in the group of their role, or add the role to an existing one."""
    if role not in ROLES:
        raise Invalid(f"Unknown role {role!r}: one of {', '.join(ROLES)}.")
    user, created = User.objects.get_or_create(username=username, defaults={"is_staff": True})
    if created:
        user.set_password(password)
        user.save()
    group = Group.objects.get(name=ROLES[role])
    entry = {
        "action": Action.OFFICIAL_ADDED,
        "actor": actor,
        "payload": {"username": username, "role": role, "created": created},
    }
    # A role the official already holds changes nothing, and writes no entry.
    if connection.vendor == "postgresql":  # the role and its entry in one statement
        audit.run_with_entry(_GIVE_ROLE, {"user": user.pk, "group": group.pk}, **entry)
    elif User.groups.through.objects.get_or_create(user=user, group=group)[1]:
        audit.record(**entry)
    return user


GIVE_ROLE = (
    f"INSERT INTO {User.groups.through._meta.db_table} (user_id, group_id) VALUES (%(user)s, %(group)s)"
    " ON CONFLICT (user_id, group_id) DO NOTHING RETURNING id"
)
_GIVE_ROLE = audit.with_entry_sql(GIVE_ROLE)


@transaction.atomic
def open_round(*, election: Election, number: int, actor: str) -> Round:
    """Open a scheduled round: the electorate must be frozen and the rounds before it closed.

    Locks the election row, so two officials opening rounds at once are taken one after the other.
    """
    election = Election.objects.select_for_update(no_key=True).get(pk=election.pk)
    # FOR NO KEY UPDATE: check-ins and ballots reference the round and take FOR KEY SHARE on it when
    # they commit; a plain FOR UPDATE here would deadlock with them.
    round_ = Round.objects.select_for_update(no_key=True).filter(election=election, number=number).first()
    if round_ is None:
        raise NotFound(f"{election.slug} has no round {number}.")
    if election.status != Election.Status.FROZEN:
        raise RoundStateError("Freeze the electorate before opening a round.")
    if round_.status != Round.Status.SCHEDULED:
        raise RoundStateError(f"Round {number} is {round_.status}; only a scheduled round opens.")
    if election.rounds.filter(number__lt=number).exclude(status=Round.Status.CLOSED).exists():
        raise RoundStateError("The rounds before it are not all closed.")
    if not round_.candidates.exists():
        round_.candidates.set(election.candidates.all())
    stations = list(election.stations.all())
    round_.status = Round.Status.OPEN
    audit.save_with_entry(
        round_,
        update_fields=["status"],
        action=Action.ROUND_OPENED,
        actor=actor,
        payload={
            "election": election.slug,
            "round": number,
            "candidates": sorted(round_.candidates.values_list("code", flat=True)),
            "stations": len(stations),
            "electorate": election.electors.filter(removed_at__isnull=True).count(),
        },
    )
    StationRound.objects.bulk_create([StationRound(round=round_, station=s) for s in stations], ignore_conflicts=True)
    return round_


@transaction.atomic
def close_round(*, election: Election, number: int, actor: str) -> Round:
    """Close an open round and every station still open in it (each writes its close and seal).

    Locks the round FOR NO KEY UPDATE (see open_round), then each station's row in turn, as a station's
    own close does, so a check-in either lands before its station closes or is refused after.
    """
    round_ = Round.objects.select_for_update(no_key=True).filter(election=election, number=number).first()
    if round_ is None:
        raise NotFound(f"{election.slug} has no round {number}.")
    if round_.status != Round.Status.OPEN:
        raise RoundStateError(f"Round {number} is {round_.status}; only an open round closes.")
    for station_round in round_.station_rounds.filter(closed_at__isnull=True).select_related("station"):
        close_station(station=station_round.station, actor=actor, round_=round_)
    round_.status = Round.Status.CLOSED
    # Drawn now, before any count, and written to the log with the close: lots on a tie are drawn
    # from it, reproducibly, by anyone.
    round_.tie_break_seed = secrets.token_hex(32)
    totals = list(round_.station_rounds.values_list("checkins", "ballots"))
    audit.save_with_entry(
        round_,
        update_fields=["status", "tie_break_seed"],
        action=Action.ROUND_CLOSED,
        actor=actor,
        payload={
            "election": election.slug,
            "round": number,
            "checkins": sum(c for c, _ in totals),
            "ballots": sum(b for _, b in totals),
            "tie_break_seed": round_.tie_break_seed,
        },
    )
    publish.provisional_after_commit(round_.id)  # closed: the count may now be complete
    return round_
