"""Election day at a station: check-ins, secret ballots, the paper return by double entry, the close.

Every function here runs in one transaction with its audit entry. The station's row for the round
(StationRound) is the gate: its counters move by conditional UPDATEs that also require the station to
be open, so a close and a check-in, or two devices of one station, can never interleave wrongly.
"""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from audit import merkle
from audit import services as audit
from audit.keys import member_pseudonym
from audit.models import Action
from ballots.errors import (
    AlreadyVoted,
    BatchTooLarge,
    IdempotencyConflict,
    NotInElectorate,
    NoVoterForBallot,
    ReturnAlreadyEntered,
    ReturnInvalid,
    RoundNotOpen,
    StationClosed,
    StationOpen,
    UnknownChoice,
    WrongMode,
    WrongStation,
)
from ballots.models import (
    SPECIAL_CHOICES,
    Ballot,
    Candidate,
    CheckIn,
    Election,
    Elector,
    OpenBallot,
    ReturnResolution,
    Round,
    Seal,
    Station,
    StationReturn,
    StationRound,
    StationToken,
)
from ballots.returns import validate_return
from ballots.services import publish
from config.db import prepared_cursor
from config.errors import Invalid
from members.models import Member

MAX_BATCH = 1000


# Every check-in and ballot asks for the open round, and a check-in is election day's hottest write
# (one request per voter): its statements are written out here, as audit.record's are, because
# building the querysets cost several times what the database spends on them (docs/benchmarks.md,
# "The demo"). Same statements, same order, same locks as the querysets they replace. The open round
# comes back with the fields these services use; any other field loads on first access.
_ROUND_FIELDS = ["id", "election_id", "number", "status"]
_OPEN_ROUND = f"SELECT {', '.join(_ROUND_FIELDS)} FROM {Round._meta.db_table} WHERE election_id = %s AND status = %s"
_ELECTOR = f"""
    SELECT e.member_id, e.branch_code, home.code FROM {Elector._meta.db_table} e
    JOIN {Member._meta.db_table} m ON m.id = e.member_id
    LEFT JOIN {Station._meta.db_table} home ON home.id = e.station_id
    WHERE e.election_id = %s AND m.member_no = %s AND e.removed_at IS NULL"""
_INSERT_CHECKIN = (
    f"INSERT INTO {CheckIn._meta.db_table} (round_id, member_id, station_id, created_at)"
    " VALUES (%s, %s, %s, %s) RETURNING id"
)
_COUNT_CHECKIN = (
    f"UPDATE {StationRound._meta.db_table} SET checkins = checkins + 1"
    " WHERE round_id = %s AND station_id = %s AND closed_at IS NULL"
)


def open_round_of(station: Station) -> Round:
    """The election's open round (one at most: a unique constraint), else RoundNotOpen."""
    with connection.cursor() as cursor:
        cursor.execute(_OPEN_ROUND, [station.election_id, Round.Status.OPEN])
        row = cursor.fetchone()
    if row is None:
        raise RoundNotOpen()
    return Round.from_db(connection.alias, _ROUND_FIELDS, row)


def current_round(station: Station) -> Round | None:
    """The open round; else the latest that has opened (where returns and a close belong after the
    polls); else the first scheduled one; None for an election without rounds."""
    rounds = Round.objects.filter(election_id=station.election_id)
    return (
        rounds.filter(status=Round.Status.OPEN).first()
        or rounds.exclude(status=Round.Status.SCHEDULED).order_by("-number").first()
        or rounds.order_by("number").first()
    )


def _latest_round_of(station: Station) -> Round:
    """The open round, else the latest closed one: where a return or a close belongs after the polls."""
    round_ = current_round(station)
    if round_ is None or round_.status == Round.Status.SCHEDULED:
        raise RoundNotOpen()
    return round_


def _choices(round_: Round) -> set[str]:
    return set(round_.candidates.values_list("code", flat=True)) | set(SPECIAL_CHOICES)


def check_in_voter(*, station: Station, member_no: str, at_once: bool = True) -> tuple[CheckIn, Round]:
    """Check a member in to vote in the open round at this station.

    One member, one check-in per round across all stations: the unique constraint decides, so of
    twenty simultaneous check-ins exactly one succeeds. Refuses: no open round, the station closed, a
    member outside the electorate, a member of a branch this station does not serve.
    """
    # at_once=False: the caller has just run the one statement (`check_in_by_token`) and it wrote nothing.
    done = _check_in_at_once(station=station, member_no=member_no) if at_once else None
    if done is not None:
        return done
    try:
        return _check_in(station=station, member_no=member_no)
    except IntegrityError:
        # The insert hit the one-check-in-per-round constraint (on SQLite, the append-only guard
        # that stands before it): a check-in of this member committed first. Catching it here, after
        # the transaction rolled back, spares every check-in a savepoint.
        if CheckIn.objects.filter(
            round__election_id=station.election_id, round__status=Round.Status.OPEN, member__member_no=member_no
        ).exists():
            raise AlreadyVoted() from None
        raise


@transaction.atomic
def _check_in(*, station: Station, member_no: str) -> tuple[CheckIn, Round]:
    round_ = open_round_of(station)
    with connection.cursor() as cursor:
        cursor.execute(_ELECTOR, [station.election_id, member_no])
        elector = cursor.fetchone()
        if elector is None:
            raise NotInElectorate()
        member_id, branch_code, home = elector
        if not station.serves(branch_code):
            raise WrongStation(f"This member votes at station {home}.", station=home)
        now = timezone.now()
        cursor.execute(
            _INSERT_CHECKIN, [round_.id, member_id, station.id, connection.ops.adapt_datetimefield_value(now)]
        )
        (checkin_id,) = cursor.fetchone()
        # The gate: counts the check-in only while the station is open; the row lock orders it with a close.
        cursor.execute(_COUNT_CHECKIN, [round_.id, station.id])
        if not cursor.rowcount:
            raise StationClosed()
    checkin = CheckIn(id=checkin_id, round=round_, member_id=member_id, station=station, created_at=now)
    checkin._state.adding, checkin._state.db = False, connection.alias
    audit.record(
        action=Action.VOTER_CHECKED_IN,
        actor=station.code,
        payload={
            "election": station.election.slug,
            "round": round_.number,
            "station": station.code,
            "member": member_pseudonym(member_no),
        },
    )
    return checkin, round_


# --- a check-in or a ballot in one statement (PostgreSQL) ---------------------------------------------
#
# A check-in or a ballot that goes through is one prepared statement (config.db), in autocommit: the
# device (its station and election, found by the station's id, or by the device's token, which is
# then checked in the same statement: `check_in_by_token`), the open round, the elector at a station
# that serves their branch or the choice on the round's ballot, the station's counter (only while the
# station is open, and for a ballot only below its check-ins; the row lock orders it with a close),
# the row itself and its audit entry. Each part reads the one before it, so a request that cannot be
# made writes nothing and returns no row; the step-by-step path (`_check_in`, `_record_ballot`) then
# does the same work and names the reason (it also decides for a station whose branches are not a
# list). The constraints still decide between simultaneous requests: one check-in per round, one
# ballot per id (the open box's key and trigger).

_DEVICE = f"""
    device AS (
        SELECT s.id AS station_id, s.election_id, s.code, s.mode, s.branches, e.slug
        FROM {Station._meta.db_table} s JOIN {Election._meta.db_table} e ON e.id = s.election_id
        {{}}
    )"""
_DEVICE_BY_STATION = _DEVICE.format("WHERE s.id = %(station)s")
_DEVICE_BY_TOKEN = _DEVICE.format(
    f"JOIN {StationToken._meta.db_table} t ON t.station_id = s.id"
    " WHERE t.key_hash = %(key_hash)s AND t.revoked_at IS NULL"
)
_ROUND_OPEN = Round.Status.OPEN.value
# Each statement's audit entry (bench/audit.py times the statements with and without them).
_CHECK_IN_ENTRY = audit.entries_sql(
    "counted, checkin", actor="counted.code",
    payload="jsonb_build_object('election', counted.slug, 'round', counted.number, 'station', counted.code,"
    " 'member', %(member)s::text)",
)  # fmt: skip
_BALLOT_ENTRY = audit.entries_sql(
    "counted, ballot", actor="counted.code",
    payload="jsonb_build_object('election', counted.slug, 'round', counted.number, 'station', counted.code)",
)  # fmt: skip

_CHECK_IN = f"""
    open_round AS (
        SELECT r.id, r.number FROM {Round._meta.db_table} r JOIN device d ON r.election_id = d.election_id
        WHERE r.status = '{_ROUND_OPEN}'
    ),
    elector AS (
        SELECT e.member_id FROM {Elector._meta.db_table} e JOIN device d ON e.election_id = d.election_id
        JOIN {Member._meta.db_table} m ON m.id = e.member_id
        WHERE m.member_no = %(member_no)s AND e.removed_at IS NULL
            AND CASE WHEN jsonb_typeof(d.branches) = 'array'
                THEN jsonb_array_length(d.branches) = 0 OR d.branches ? e.branch_code END
    ),
    counted AS (
        UPDATE {StationRound._meta.db_table} sr SET checkins = sr.checkins + 1 FROM device, open_round, elector
        WHERE sr.round_id = open_round.id AND sr.station_id = device.station_id AND sr.closed_at IS NULL
        RETURNING open_round.id AS round_id, open_round.number, elector.member_id, device.station_id,
            device.code, device.slug
    ),
    checkin AS (
        INSERT INTO {CheckIn._meta.db_table} (round_id, member_id, station_id, created_at)
        SELECT round_id, member_id, station_id, %(audit_at)s FROM counted RETURNING id
    ),{_CHECK_IN_ENTRY}
    SELECT counted.round_id, counted.number, counted.member_id, checkin.id FROM counted, checkin"""
_CHECK_IN_BY_STATION = f"WITH {_DEVICE_BY_STATION}, {_CHECK_IN}"
_CHECK_IN_BY_TOKEN = f"WITH {_DEVICE_BY_TOKEN}, {_CHECK_IN}"

_BALLOT = f"""
    open_round AS (
        SELECT r.id, r.number FROM {Round._meta.db_table} r JOIN device d ON r.election_id = d.election_id
        WHERE r.status = '{_ROUND_OPEN}' AND d.mode = '{Station.Mode.ELECTRONIC.value}'
            AND (%(choice)s = ANY(%(special)s::text[]) OR EXISTS (
                SELECT 1 FROM {Round.candidates.through._meta.db_table} rc
                JOIN {Candidate._meta.db_table} c ON c.id = rc.candidate_id
                WHERE rc.round_id = r.id AND c.code = %(choice)s))
            -- A replay writes nothing here rather than fail on the key of the box: the server logs
            -- each key it refuses, with the time, and no ballot id may be logged near its voter.
            AND NOT EXISTS (SELECT 1 FROM {OpenBallot._meta.db_table} WHERE id = %(id)s)
            AND NOT EXISTS (SELECT 1 FROM {Ballot._meta.db_table} WHERE id = %(id)s)
    ),
    counted AS (
        UPDATE {StationRound._meta.db_table} sr SET ballots = sr.ballots + 1 FROM device, open_round
        WHERE sr.round_id = open_round.id AND sr.station_id = device.station_id AND sr.closed_at IS NULL
            AND sr.ballots < sr.checkins
        RETURNING open_round.id AS round_id, open_round.number, device.station_id, device.code, device.slug
    ),
    ballot AS (
        INSERT INTO {OpenBallot._meta.db_table} (id, round_id, station_id, choice)
        SELECT %(id)s, round_id, station_id, %(choice)s FROM counted RETURNING id
    ),{_BALLOT_ENTRY}
    SELECT counted.number FROM counted, ballot"""
_BALLOT_BY_STATION = f"WITH {_DEVICE_BY_STATION}, {_BALLOT}"
_BALLOT_BY_TOKEN = f"WITH {_DEVICE_BY_TOKEN}, {_BALLOT}"


def check_in_by_token(*, key_hash: str, member_no: str) -> int | None:
    """Check a member in at the station of the device whose live token has this hash, in one statement.

    The round's number; None when nothing was written, for whatever reason (no such live token
    included): the caller then authenticates the device and calls `check_in_voter(at_once=False)`,
    which names it.
    """
    done = _check_in_statement(_CHECK_IN_BY_TOKEN, member_no, key_hash=key_hash)
    return None if done is None else done[0][1]


def record_ballot_by_token(*, key_hash: str, ballot_id: Any, choice: str) -> bool:
    """Record a new ballot at the station of the device whose live token has this hash, in one
    statement. False when nothing was written (a replay included): the caller then authenticates
    the device and calls `record_ballot(at_once=False)`, which answers the replay or names the refusal."""
    try:
        ballot_id = _parse_ballot_id(ballot_id)
    except Invalid:
        return False
    return _ballot_statement(_BALLOT_BY_TOKEN, ballot_id, choice, key_hash=key_hash)


def _check_in_at_once(*, station: Station, member_no: str) -> tuple[CheckIn, Round] | None:
    """The check-in as one statement (PostgreSQL); None if it wrote nothing, for `_check_in` to explain."""
    done = _check_in_statement(_CHECK_IN_BY_STATION, member_no, station=station.id)
    if done is None:
        return None
    (round_id, number, member_id, checkin_id), at = done
    round_ = Round.from_db(connection.alias, _ROUND_FIELDS, [round_id, station.election_id, number, _ROUND_OPEN])
    checkin = CheckIn(id=checkin_id, round=round_, member_id=member_id, station=station, created_at=at)
    checkin._state.adding, checkin._state.db = False, connection.alias
    return checkin, round_


def _check_in_statement(sql: str, member_no: str, **device: Any) -> tuple[tuple, Any] | None:
    """(the statement's row, the check-in's time), or None when it wrote nothing or is not PostgreSQL's."""
    if connection.vendor != "postgresql":
        return None
    params = {**audit.entry_params(Action.VOTER_CHECKED_IN), **device}
    row = _at_once(sql, {**params, "member_no": member_no, "member": member_pseudonym(member_no)})
    if row is None:
        return None
    audit.recorded()
    return row, params["audit_at"]


def _ballot_statement(sql: str, ballot_id: uuid.UUID, choice: str, **device: Any) -> bool:
    """True when the ballot statement wrote the ballot; False when it did not or is not PostgreSQL's."""
    if connection.vendor != "postgresql":
        return False
    params = {**audit.entry_params(Action.BALLOT_RECORDED), **device}
    if _at_once(sql, {**params, "id": ballot_id, "choice": choice, "special": list(SPECIAL_CHOICES)}) is None:
        return False
    audit.recorded()
    return True


def _at_once(sql: str, params: dict[str, Any]) -> tuple | None:
    """Run one of the station's single-statement writes; its row, or None when it wrote nothing.

    A constraint it hits (a second check-in, a ballot id already recorded) also means nothing was
    written: the step-by-step path then finds out why. Inside a caller's transaction the statement
    runs in a savepoint, so that a refused one leaves that transaction usable.
    """
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext(), prepared_cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    except IntegrityError:
        return None


def lookup_voter(*, station: Station, member_no: str) -> dict[str, Any]:
    """What a station may know of a member: in the electorate, their station, voted in the open round."""
    elector = (
        Elector.objects.select_related("station")
        .filter(election_id=station.election_id, member__member_no=member_no, removed_at__isnull=True)
        .first()
    )
    round_ = Round.objects.filter(election_id=station.election_id, status=Round.Status.OPEN).first()
    voted = bool(elector and round_ and CheckIn.objects.filter(round=round_, member_id=elector.member_id).exists())
    return {
        "member_no": member_no,
        "in_electorate": elector is not None,
        "station": elector.station.code if elector and elector.station else None,
        "voted": voted,
    }


def _parse_ballot_id(value: Any, field: str = "id") -> uuid.UUID:
    try:
        parsed = uuid.UUID(str(value))
    except ValueError:
        raise Invalid("The ballot id must be a UUID.", fields={field: ["A UUIDv4 is required."]}) from None
    if parsed.version != 4:
        raise Invalid("The ballot id must be a random UUID (version 4).", fields={field: ["A UUIDv4 is required."]})
    return parsed


def _count_ballots(station: Station, round_: Round, count: int) -> None:
    """Move the station's ballot counter by `count`, only while open and never past its check-ins."""
    updated = StationRound.objects.filter(
        round=round_, station=station, closed_at__isnull=True, ballots__lte=F("checkins") - count
    ).update(ballots=F("ballots") + count)
    if not updated:
        if StationRound.objects.filter(round=round_, station=station, closed_at__isnull=False).exists():
            raise StationClosed()
        raise NoVoterForBallot()


def record_ballot(*, station: Station, ballot_id: Any, choice: str, at_once: bool = True) -> bool:
    """Record one secret ballot; True when new, False for an identical replay (counted once).

    The id is the station's UUIDv4, so a retry after a lost answer is safe. The same id with another
    choice or at another station is refused. The ballot carries no member and no time; its audit
    entry says only that this station recorded a ballot. It goes into the open box (`OpenBallot`)
    until the station closes.
    """
    if station.mode != Station.Mode.ELECTRONIC:
        raise WrongMode("A paper station reports its count as a return, not ballots.")
    ballot_id = _parse_ballot_id(ballot_id)
    # at_once=False: the caller has just run the one statement (`record_ballot_by_token`) and it wrote nothing.
    if at_once and _ballot_statement(_BALLOT_BY_STATION, ballot_id, choice, station=station.id):
        return True
    return _record_ballot(station=station, ballot_id=ballot_id, choice=choice)


@transaction.atomic
def _record_ballot(*, station: Station, ballot_id: uuid.UUID, choice: str) -> bool:
    existing = _recorded(ballot_id)
    if existing is not None:
        return _replay(existing, station, choice, ballot_id)
    round_ = open_round_of(station)
    if choice not in _choices(round_):
        raise UnknownChoice(f"{choice!r} is not a candidate of this round, blank or invalid.", choice=choice)
    try:
        with transaction.atomic():
            # The open box refuses an id already there or already sealed (migration 0008).
            OpenBallot.objects.create(id=ballot_id, round=round_, station=station, choice=choice)
    except IntegrityError:
        # The same id arrived at once, or was sealed by another station's close since the look
        # above; the first has committed: this is its replay, or a conflict.
        return _replay(_recorded(ballot_id), station, choice, ballot_id)
    _count_ballots(station, round_, 1)
    audit.record(
        action=Action.BALLOT_RECORDED,
        actor=station.code,
        payload={"election": station.election.slug, "round": round_.number, "station": station.code},
    )
    return True


def _replay(existing, station: Station, choice: str, ballot_id: uuid.UUID) -> bool:
    if existing == (station.id, choice):
        return False
    raise IdempotencyConflict(id=str(ballot_id))


def _recorded(ballot_id: uuid.UUID) -> tuple[int, str] | None:
    """(station id, choice) of the ballot recorded under this id, in the open box or sealed; or None."""
    found = _stored_ballots([ballot_id])
    return tuple(found[0][1:]) if found else None


@transaction.atomic
def record_ballots(*, station: Station, ballots: list[dict[str, Any]]) -> tuple[int, int]:
    """Record a batch of ballots, all or nothing; returns (accepted, duplicates).

    Ballots already recorded identically (or repeated within the batch) count as duplicates; any
    conflict, unknown choice or shortfall of check-ins refuses the whole batch.
    """
    if len(ballots) > MAX_BATCH:
        raise BatchTooLarge(size=len(ballots))
    if station.mode != Station.Mode.ELECTRONIC:
        raise WrongMode("A paper station reports its count as a return, not ballots.")
    round_ = open_round_of(station)
    # The station's row first: a batch resent while its first copy is in flight waits here, then finds
    # its ballots stored and counts them as duplicates.
    StationRound.objects.select_for_update().filter(round=round_, station=station).first()
    choices = _choices(round_)
    wanted: dict[uuid.UUID, str] = {}
    duplicates = 0
    for i, item in enumerate(ballots):
        ballot_id = _parse_ballot_id(item.get("id"), f"ballots[{i}].id")
        choice = item.get("choice")
        if choice not in choices:
            raise UnknownChoice(f"ballots[{i}]: {choice!r} is not a candidate of this round.", index=i, choice=choice)
        if ballot_id in wanted:
            if wanted[ballot_id] != choice:
                raise IdempotencyConflict(f"ballots[{i}] repeats an id with another choice.", id=str(ballot_id))
            duplicates += 1
            continue
        wanted[ballot_id] = choice
    for ballot_id, station_id, choice in _stored_ballots(list(wanted)):
        if (station_id, choice) != (station.id, wanted[ballot_id]):
            raise IdempotencyConflict(id=str(ballot_id))
        del wanted[ballot_id]
        duplicates += 1
    if wanted:
        _count_ballots(station, round_, len(wanted))
        try:
            with transaction.atomic():
                # The open box refuses an id already there or already sealed (migration 0008).
                _insert_ballots(round_, station, wanted)
        except IntegrityError:
            # Another station recorded one of these ids at this very moment: an id is one ballot.
            raise IdempotencyConflict("A ballot id of this batch was just recorded elsewhere.") from None
        payload = {"election": station.election.slug, "round": round_.number, "station": station.code}
        audit.record_many(action=Action.BALLOT_RECORDED, actor=station.code, payloads=[payload] * len(wanted))
    return len(wanted), duplicates


# A batch's statements on PostgreSQL take the ids as one array parameter: compiling an IN list of a
# thousand parameters and a thousand model instances cost more than the database's work.
_OPEN, _SEALED = OpenBallot._meta.db_table, Ballot._meta.db_table
_STORED_BALLOTS = (
    f"SELECT id, station_id, choice FROM {_OPEN} WHERE id = ANY(%s)"
    f" UNION ALL SELECT id, station_id, choice FROM {_SEALED} WHERE id = ANY(%s)"
)
_BALLOT_FIELDS = ("id", "station_id", "choice")
_INSERT_BALLOTS = (
    f"INSERT INTO {_OPEN} (id, round_id, station_id, choice)"
    " SELECT b.id, %s, %s, b.choice FROM unnest(%s::uuid[], %s::text[]) AS b (id, choice)"
)
# A station's close: its ballots into the sealed table in the order of their random ids, in one
# statement (so one transaction id for all), then out of the open box.
_SEAL_BOX = (
    f"INSERT INTO {_SEALED} (id, round_id, station_id, choice)"
    f" SELECT id, round_id, station_id, choice FROM {_OPEN} WHERE round_id = %s AND station_id = %s ORDER BY id"
)
_EMPTY_BOX = f"DELETE FROM {_OPEN} WHERE round_id = %s AND station_id = %s"


def _stored_ballots(ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, int, str]]:
    """(id, station id, choice) of the ballots recorded under these ids, in the open box or sealed."""
    if connection.vendor != "postgresql":
        open_box = OpenBallot.objects.filter(id__in=ids).values_list(*_BALLOT_FIELDS)
        return list(open_box.union(Ballot.objects.filter(id__in=ids).values_list(*_BALLOT_FIELDS), all=True))
    with connection.cursor() as cursor:
        cursor.execute(_STORED_BALLOTS, [ids, ids])
        return cursor.fetchall()


def _insert_ballots(round_: Round, station: Station, ballots: dict[uuid.UUID, str]) -> None:
    ids = sorted(ballots)  # the order of the batch is the order the voters came in: not kept
    if connection.vendor != "postgresql":
        OpenBallot.objects.bulk_create(
            [OpenBallot(id=i, round=round_, station=station, choice=ballots[i]) for i in ids], batch_size=1000
        )
        return
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_BALLOTS, [round_.id, station.id, ids, [ballots[i] for i in ids]])


def _seal_box(round_: Round, station: Station) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_SEAL_BOX, [round_.id, station.id])
        cursor.execute(_EMPTY_BOX, [round_.id, station.id])


def ballots_root(ballots: list[tuple[str, str]]) -> str:
    """The Merkle root (hex) of a station's ballots sorted by id: leaves are canonical {"id", "choice"}."""
    # The canonical bytes of {"id", "choice"} written out directly ("choice" sorts before "id"): ids
    # are UUID strings and choices slugs, neither holds a character JSON would escape. A million
    # ballots would otherwise spend most of the seal in the general encoder.
    leaves = [merkle.leaf_hash(f'{{"choice":"{c}","id":"{i}"}}'.encode()) for i, c in sorted(ballots)]
    return merkle.root(leaves).hex()


@transaction.atomic
def close_station(*, station: Station, actor: str, round_: Round | None = None) -> dict[str, Any]:
    """Close the station for the round: no more check-ins or ballots. Returns the reconciliation.

    An electronic station is sealed at once (counts per choice and the Merkle root of its ballots,
    into the audit log); a paper station is sealed when its return is accepted. Closing again answers
    the same reconciliation (safe to retry).
    """
    round_ = round_ or _latest_round_of(station)
    station_round = StationRound.objects.select_for_update().get(round=round_, station=station)
    if station_round.closed_at is None:
        station_round.closed_at = timezone.now()
        audit.save_with_entry(
            station_round,
            update_fields=["closed_at"],
            action=Action.STATION_CLOSED,
            actor=actor,
            payload={
                "election": station.election.slug,
                "round": round_.number,
                "station": station.code,
                "checkins": station_round.checkins,
                "ballots": station_round.ballots,
            },
        )
        if station.mode == Station.Mode.ELECTRONIC:
            _seal_box(round_, station)
            ballots = [
                (str(i), c) for i, c in Ballot.objects.filter(round=round_, station=station).values_list("id", "choice")
            ]
            if len(ballots) != station_round.ballots:  # the counter and the rows move together; never apart
                raise RuntimeError(
                    f"station {station.code}: {len(ballots)} ballots stored, {station_round.ballots} counted"
                )
            counts = dict.fromkeys(sorted(_choices(round_)), 0)
            for _, choice in ballots:
                counts[choice] += 1
            root = ballots_root(ballots)
            _seal(round_, station, station_round.checkins, len(ballots), counts, root, "ballots", actor)
    seal = Seal.objects.filter(round=round_, station=station).first()
    return {
        "checkins": station_round.checkins,
        "ballots": station_round.ballots,
        "seal": None
        if seal is None
        else {"counts": seal.counts, "ballots_root": seal.ballots_root or None, "source": seal.source},
    }


def _seal(
    round_: Round, station: Station, checkins: int, ballots: int, counts: dict[str, int], root: str, source: str,
    actor: str,
) -> Seal:  # fmt: skip
    seal = Seal(
        round=round_, station=station, checkins=checkins, ballots=ballots, counts=counts, ballots_root=root,
        source=source, created_at=timezone.now(),
    )  # fmt: skip
    audit.save_with_entry(
        seal,
        entry_field="entry",
        action=Action.STATION_SEALED,
        actor=actor,
        payload={
            "election": station.election.slug, "round": round_.number, "station": station.code,
            "checkins": checkins, "ballots": ballots, "counts": counts, "ballots_root": root or None, "source": source,
        },
    )  # fmt: skip
    audit.request_checkpoint()
    publish.provisional_after_commit(round_.id)
    return seal


def _station_electorate(station: Station) -> int:
    return Elector.objects.filter(station=station, removed_at__isnull=True).count()


@transaction.atomic
def enter_return(
    *, station: Station, entry: int, counts: dict[str, Any], blank: Any, invalid: Any, total: Any, actor: str
) -> tuple[str, list[dict[str, str]]]:
    """Record one entry of a paper station's count (double entry). Returns (status, warnings).

    Precondition: the station is closed (its check-ins are final). Entries 1 and 2 are typed
    independently; equal entries are accepted and seal the station; different ones are kept and
    flagged for the committee (`resolve_return`). An entry with F… errors is refused whole.
    """
    if station.mode != Station.Mode.PAPER:
        raise WrongMode("An electronic station's count is its ballots; returns are for paper stations.")
    round_ = _latest_round_of(station)
    station_round = StationRound.objects.select_for_update().get(round=round_, station=station)
    if station_round.closed_at is None:
        raise StationOpen()
    if StationReturn.objects.filter(round=round_, station=station, entry=entry).exists():
        raise ReturnAlreadyEntered(f"Entry {entry} of this station's return was already made.", entry=entry)
    candidates = sorted(round_.candidates.values_list("code", flat=True))
    errors, warnings = validate_return(
        counts=counts, blank=blank, invalid=invalid, total=total, candidates=candidates,
        checkins=station_round.checkins, electorate=_station_electorate(station),
    )  # fmt: skip
    if errors:
        raise ReturnInvalid(errors=[e.as_dict() for e in errors], warnings=[w.as_dict() for w in warnings])
    warning_dicts = [w.as_dict() for w in warnings]
    other = StationReturn.objects.filter(round=round_, station=station).exclude(entry=entry).first()
    created = StationReturn(
        round=round_, station=station, entry=entry, counts=counts, blank=blank, invalid=invalid, total=total,
        warnings=warning_dicts, entered_by=actor, created_at=timezone.now(),
    )  # fmt: skip
    if other is None:
        status = "awaiting_second_entry"
    elif other.figures() == created.figures():
        status = "accepted"
    else:
        status = "entries_differ"
    audit.save_with_entry(
        created,
        action=Action.RETURN_ENTERED,
        actor=actor,
        payload={
            "election": station.election.slug, "round": round_.number, "station": station.code, "entry": entry,
            **created.figures(),
            "warnings": [w.code for w in warnings], "status": status,
        },
    )  # fmt: skip
    if status == "accepted":
        figures = {**counts, "blank": blank, "invalid": invalid}
        _seal(round_, station, station_round.checkins, total, figures, "", "return", actor)
    return status, warning_dicts


@transaction.atomic
def resolve_return(
    *, round_: Round, station: Station, counts: dict[str, Any], blank: Any, invalid: Any, total: Any, reason: str,
    actor: str,
) -> ReturnResolution:  # fmt: skip
    """The committee settles a station whose two entries differ: the figures that count, and why."""
    if not reason.strip():
        raise Invalid("A reason is required.", fields={"reason": ["A reason is required."]})
    station_round = StationRound.objects.select_for_update().get(round=round_, station=station)
    entries = list(StationReturn.objects.filter(round=round_, station=station))
    if len(entries) != 2 or entries[0].figures() == entries[1].figures():
        raise Invalid("Only a station whose two entries differ is resolved by the committee.")
    if Seal.objects.filter(round=round_, station=station).exists():
        raise ReturnAlreadyEntered("This station's count is already settled.")
    candidates = sorted(round_.candidates.values_list("code", flat=True))
    errors, _ = validate_return(
        counts=counts, blank=blank, invalid=invalid, total=total, candidates=candidates,
        checkins=station_round.checkins, electorate=_station_electorate(station),
    )  # fmt: skip
    if errors:
        raise ReturnInvalid(errors=[e.as_dict() for e in errors])
    resolution = ReturnResolution(
        round=round_, station=station, counts=counts, blank=blank, invalid=invalid, total=total, reason=reason,
        resolved_by=actor, created_at=timezone.now(),
    )  # fmt: skip
    audit.save_with_entry(
        resolution,
        action=Action.RETURN_RESOLVED,
        actor=actor,
        payload={
            "election": station.election.slug,
            "round": round_.number,
            "station": station.code,
            **resolution.figures(),
            "reason": reason,
        },
    )
    figures = {**counts, "blank": blank, "invalid": invalid}
    _seal(round_, station, station_round.checkins, total, figures, "", "resolution", actor)
    return resolution
