"""The count: tallying a round from its seals, certification by the committee, and the runoff."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit import services as audit
from audit.canonical import canonical_bytes
from audit.models import Action, Checkpoint, Entry, Leaf
from ballots import counting
from ballots.errors import RoundStateError
from ballots.models import Certification, Election, Elector, Round, Seal, Tally
from ballots.services import publish
from config.errors import DomainError, NotFound

COMMITTEE_GROUP = "election committee"


class NotCommittee(DomainError):
    code, http_status = "permission_denied", 403
    default_message = "Only a member of the election committee certifies results."


class AlreadyApproved(DomainError):
    code, http_status = "already_approved", 409
    default_message = "This member has already approved this tally."


def _audit_point(round_: Round) -> dict[str, Any]:
    """The signed checkpoint the tally is computed from: the first covering the last of its inputs.

    Its inputs in the log are the round's seals and the electorate (frozen, then changed). Fixed once
    signed, so the same records give the same document whenever the tally runs.
    """
    seal_entries = Seal.objects.filter(round=round_).exclude(entry=None).values_list("entry_id", flat=True)
    electorate_entries = Entry.objects.filter(
        action__in=[Action.ELECTORATE_FROZEN, Action.ELECTORATE_CHANGED], payload__election=round_.election.slug
    ).values_list("id", flat=True)
    last_entry = max([*seal_entries, *electorate_entries], default=None)
    needed = 0
    if last_entry is not None:
        index = Leaf.objects.filter(entry_id=last_entry).values_list("index", flat=True).first()
        if index is None:  # not integrated yet: the caller integrates before tallying
            raise RoundStateError("The round's last input is not yet in the audit tree; try again in a moment.")
        needed = index + 1
    checkpoint = Checkpoint.objects.filter(tree_size__gte=needed).order_by("tree_size", "id").first()
    if checkpoint is None:
        checkpoint = audit.sign_checkpoint(force=True)
    return {"tree_size": checkpoint.tree_size, "root": bytes(checkpoint.root).hex()}


def build_document(round_: Round) -> dict[str, Any]:
    """The results document of the round from its seals (DESIGN.md), without the publication's
    fields (status, version, published_at, sha256, signature). A pure function of the records."""
    election = round_.election
    candidates = list(round_.candidates.order_by("position").values_list("code", "name"))
    codes = [code for code, _ in candidates]
    station_rounds = list(round_.station_rounds.select_related("station").order_by("station__position"))
    seals = {seal.station_id: seal for seal in Seal.objects.filter(round=round_)}
    by_station, reported = [], []
    for sr in station_rounds:
        seal = seals.get(sr.station_id)
        row: dict[str, Any] = {
            "station": sr.station.code, "name": sr.station.name, "mode": sr.station.mode,
            "checked_in": sr.checkins, "reported": seal is not None,
        }  # fmt: skip
        if seal is not None:
            votes = {code: seal.counts.get(code, 0) for code in codes}
            row.update(
                votes=votes, blank=seal.counts.get("blank", 0), invalid=seal.counts.get("invalid", 0),
                cast=seal.ballots, source=seal.source, ballots_root=seal.ballots_root or None,
            )  # fmt: skip
            reported.append(counting.StationCount(sr.station.code, votes, row["blank"], row["invalid"]))
        by_station.append(row)
    electorate = Elector.objects.filter(election=election, removed_at__isnull=True).count()
    complete = round_.status == Round.Status.CLOSED and len(reported) == len(station_rounds)
    document = counting.results_document(
        election=election.slug, number=round_.number, rule=election.rule, names=dict(candidates), candidates=codes,
        by_station=by_station, reported=reported, electorate=electorate, complete=complete,
        seed=round_.tie_break_seed or None,
    )  # fmt: skip
    document["audit"] = _audit_point(round_)
    return document


def tally_round(*, election: Election, number: int, actor: str) -> Tally:
    """Count the round from the sealed ballots and accepted returns; store it if it is new.

    Stations not yet reported count as not reported (the tally is then provisional and its decision
    "pending"), never as zero. The same records give the same bytes: tallying twice with nothing new
    returns the existing tally and writes nothing. A certified round is not tallied again.
    """
    audit.integrate_pending()  # the seals committed so far get their leaves before the count
    with transaction.atomic():
        round_ = Round.objects.select_for_update(no_key=True).filter(election=election, number=number).first()
        if round_ is None:
            raise NotFound(f"{election.slug} has no round {number}.")
        if round_.status == Round.Status.SCHEDULED:
            raise RoundStateError(f"Round {number} has not opened; there is nothing to count.")
        if round_.certified_tally_id is not None:
            raise RoundStateError(f"Round {number} is certified; its results are final.")
        document = build_document(round_)
        digest = hashlib.sha256(canonical_bytes(document)).hexdigest()
        latest = round_.tallies.order_by("-number").first()
        stations = document["stations"]
        if latest is not None and latest.sha256 == digest:
            return latest
        tally = Tally(
            round=round_, number=(latest.number + 1) if latest else 1, document=document, sha256=digest,
            complete=round_.status == Round.Status.CLOSED and stations["reported"] == stations["total"],
            decision=document["outcome"]["decision"], created_at=timezone.now(), created_by=actor,
        )  # fmt: skip
        audit.save_with_entry(
            tally,
            action=Action.ROUND_TALLIED,
            actor=actor,
            payload={
                "election": election.slug, "round": number, "tally": tally.number, "sha256": digest,
                "complete": tally.complete, "decision": tally.decision, "stations": document["stations"],
            },
        )  # fmt: skip
        audit.request_checkpoint()
        return tally


@transaction.atomic
def certify_round(*, election: Election, number: int, username: str) -> tuple[Tally, int, bool]:
    """A committee member approves the round's latest tally. Returns (tally, approvals, certified).

    The round is certified when `certifications_required` distinct members have approved the same
    tally; a later tally (after a correction) needs approvals of its own. On certification of a round
    whose outcome is a runoff, the runoff round is scheduled `runoff_after_days` later.
    """
    user = User.objects.filter(username=username, is_active=True).first()
    # Committee members only, superusers included: certification is the committee's own act.
    if user is None or not user.groups.filter(name=COMMITTEE_GROUP).exists():
        raise NotCommittee(f"{username} is not a member of the election committee.")
    round_ = Round.objects.select_for_update(no_key=True).filter(election=election, number=number).first()
    if round_ is None:
        raise NotFound(f"{election.slug} has no round {number}.")
    if round_.certified_tally_id is not None:
        raise RoundStateError(f"Round {number} is already certified.")
    tally = round_.tallies.order_by("-number").first()
    if tally is None or not tally.complete:
        raise RoundStateError("Only a complete tally of a closed round, every station reported, is certified.")
    if tally.decision in ("pending", "tie"):
        raise RoundStateError(f"The tally's decision is {tally.decision!r}: settle it before certifying.")
    # What is approved must be what the records give now (an electorate corrected since, say).
    if hashlib.sha256(canonical_bytes(build_document(round_))).hexdigest() != tally.sha256:
        raise RoundStateError("The records have changed since the latest tally: tally the round again first.")
    if Certification.objects.filter(tally=tally, username=username).exists():
        raise AlreadyApproved()
    approvals = sorted([*tally.certifications.values_list("username", flat=True), username])
    audit.save_with_entry(
        Certification(tally=tally, username=username, created_at=timezone.now()),
        action=Action.ROUND_APPROVED,
        actor=username,
        payload={"election": election.slug, "round": number, "tally": tally.number, "sha256": tally.sha256,
                 "approvals": len(approvals), "required": election.certifications_required},
    )  # fmt: skip
    certified = len(approvals) >= election.certifications_required
    if certified:
        round_.certified_tally = tally
        round_.certified_at = timezone.now()
        audit.save_with_entry(
            round_,
            update_fields=["certified_tally", "certified_at"],
            action=Action.ROUND_CERTIFIED,
            actor=username,
            payload={"election": election.slug, "round": number, "tally": tally.number, "sha256": tally.sha256,
                     "approved_by": approvals, "outcome": tally.document["outcome"]},
        )  # fmt: skip
        if tally.decision == "runoff":
            _schedule_runoff(round_, tally, actor=username)
        audit.request_checkpoint()
        publish.official_after_commit(round_.id)
    return tally, len(approvals), certified


def _schedule_runoff(round_: Round, tally: Tally, *, actor: str) -> Round:
    election = round_.election
    delay = timedelta(days=election.runoff_after_days)
    runoff, _ = Round.objects.get_or_create(
        election=election,
        number=round_.number + 1,
        defaults={"opens_at": round_.opens_at + delay, "closes_at": round_.closes_at + delay},
    )
    advancing = tally.document["outcome"]["advancing"]
    runoff.candidates.set(election.candidates.filter(code__in=advancing))
    audit.record(
        action=Action.ROUND_SCHEDULED,
        actor=actor,
        payload={"election": election.slug, "round": runoff.number, "candidates": advancing,
                 "opens_at": runoff.opens_at.isoformat(), "closes_at": runoff.closes_at.isoformat()},
    )  # fmt: skip
    return runoff


@transaction.atomic
def reschedule_round(*, round_: Round, opens_at, closes_at, actor: str) -> Round:
    """The committee moves a round that has not opened yet (the runoff's dates, say)."""
    round_ = Round.objects.select_for_update(no_key=True).get(pk=round_.pk)
    if round_.status != Round.Status.SCHEDULED:
        raise RoundStateError("Only a round that has not opened can be moved.")
    if closes_at <= opens_at:
        raise RoundStateError("A round closes after it opens.")
    round_.opens_at, round_.closes_at = opens_at, closes_at
    audit.save_with_entry(
        round_,
        update_fields=["opens_at", "closes_at"],
        action=Action.ROUND_SCHEDULED,
        actor=actor,
        payload={"election": round_.election.slug, "round": round_.number,
                 "candidates": sorted(round_.candidates.values_list("code", flat=True)),
                 "opens_at": opens_at.isoformat(), "closes_at": closes_at.isoformat()},
    )  # fmt: skip
    return round_
