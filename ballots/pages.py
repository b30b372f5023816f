"""The public result pages and open data (DESIGN.md "Public API and pages"): no login, no script.

A round's page, JSON and CSV are served from its latest published version, as stored
(ballots/versions.py): an ETag and a Last-Modified, and a 304 when the reader already has it. The lists
of elections and rounds are read live: they hold the schedule, never a number of votes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_safe

from audit import keys
from ballots.models import Election, Publication, Round
from ballots.versions import serve_latest
from config.errors import envelope

DECISION_WORDS = {
    "winner": "Winner",
    "runoff": "Runoff",
    "pending": "Counting",
    "tie": "Tie",
    "quorum_not_met": "Quorum not met",
}


def _not_published(request: HttpRequest, slug: str, number: int, *, as_json: bool) -> HttpResponse:
    round_ = Round.objects.filter(election__slug=slug, number=number).select_related("election").first()
    if round_ is None:
        message = f"There is no round {number} of {slug}."
    else:
        message = f"Round {number} of {round_.election.name} has no published results yet."
    if as_json:
        return JsonResponse(envelope("not_found", message), status=404)
    return render(request, "results/not_published.html", {"round": round_, "message": message}, status=404)


@require_safe
def round_page(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    return serve_latest(request, slug, number, "page") or _not_published(request, slug, number, as_json=False)


@require_safe
def round_json(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    return serve_latest(request, slug, number, "document") or _not_published(request, slug, number, as_json=True)


@require_safe
def round_csv(request: HttpRequest, slug: str, number: int) -> HttpResponse:
    return serve_latest(request, slug, number, "csv") or _not_published(request, slug, number, as_json=True)


@require_safe
def election_index(request: HttpRequest) -> HttpResponse:
    elections = Election.objects.prefetch_related("rounds").order_by("-roster_cutoff", "slug")
    return render(request, "results/index.html", {"elections": elections})


@require_safe
def election_page(request: HttpRequest, slug: str) -> HttpResponse:
    election = get_object_or_404(Election, slug=slug)
    latest = {}
    for round_id, status, version, published_at in (
        Publication.objects.filter(round__election=election)
        .order_by("round_id", "version")
        .values_list("round_id", "status", "version", "published_at")
    ):
        latest[round_id] = {"status": status, "version": version, "published_at": published_at}
    rounds = [
        {"round": r, "publication": latest.get(r.id), "candidates": [c.name for c in r.candidates.all()]}
        for r in election.rounds.prefetch_related("candidates").order_by("number")
    ]
    context = {"election": election, "rounds": rounds, "time_zone": settings.TIME_ZONE}
    return render(request, "results/election.html", context)


@require_safe
def how_to_verify(request: HttpRequest) -> HttpResponse:
    return render(request, "results/verify.html", {"verifier_key": keys.verifier_key()})


def round_context(round_: Round, document: dict[str, Any]) -> dict[str, Any]:
    """What the round's page shows, from the results document alone (plus names and the runoff's date)."""
    rule = document["rule"]
    # Only round one has a threshold: in the runoff the most votes wins.
    first_round = rule.get("method") == "two_round" and document["round"] == 1
    threshold = rule.get("threshold_percent") if first_round else None
    names = {c["code"]: c["name"] for c in document["candidates"]}
    candidates = [
        {**c, "votes_text": f"{c['votes']:,}", "leading": i == 0 and c["votes"] > 0}
        for i, c in enumerate(document["candidates"])
    ]
    official = document["status"] == "official"
    stations = document["stations"]
    by_station = []
    codes = [c["code"] for c in document["candidates"]]
    for row in document["by_station"]:
        by_station.append(
            {
                **row,
                "cells": [f"{row['votes'][code]:,}" for code in codes] if row["reported"] else [],
                "cast_text": f"{row['cast']:,}" if row["reported"] else "",
                "checked_in_text": f"{row['checked_in']:,}",
            }
        )
    base = "ballots cast" if rule.get("threshold_base") == "cast" else "valid votes"
    slug, number = document["election"], document["round"]
    return {
        "election": round_.election,
        "round": round_,
        "doc": document,
        "official": official,
        "threshold": threshold,
        "base": base,
        "candidates": candidates,
        "banner": outcome_banner(round_, document, names, threshold),
        "decision_word": DECISION_WORDS.get(document["outcome"]["decision"], document["outcome"]["decision"]),
        "figures": {
            "electorate": f"{document['electorate']:,}",
            "checked_in": f"{document['checked_in']:,}",
            "cast": f"{document['cast']:,}",
            "valid": f"{document['valid']:,}",
            "blank": f"{document['blank']:,}",
            "invalid": f"{document['invalid']:,}",
        },
        "stations": stations,
        "all_reported": stations["reported"] == stations["total"],
        "by_station": by_station,
        "published_at": datetime.fromisoformat(document["published_at"].replace("Z", "+00:00")),
        "sha_groups": [document["sha256"][i : i + 4] for i in range(0, 64, 4)],
        "links": {
            "json": reverse("results-round-json", args=[slug, number]),
            "csv": reverse("results-round-csv", args=[slug, number]),
            "election": reverse("results-election", args=[slug]),
            "index": reverse("results-index"),
            "verify": reverse("results-verify"),
            "public_key": reverse("audit-public-key"),
            "checkpoint": reverse("audit-checkpoint"),
        },
    }


def outcome_banner(round_: Round, document: dict[str, Any], names: dict[str, str], threshold: str | None) -> str:
    """The outcome in plain words, as a reader says it aloud."""
    outcome = document["outcome"]
    decision = outcome["decision"]
    official = document["status"] == "official"
    stations = document["stations"]

    def listed(codes: list[str]) -> str:
        people = [names.get(code, code) for code in codes]
        return people[0] if len(people) == 1 else ", ".join(people[:-1]) + " and " + people[-1]

    if decision == "winner":
        winner = names.get(outcome["winner"], outcome["winner"])
        if official:
            return f"{winner} is elected."
        return f"{winner} is elected, provisionally: the result is official once the committee certifies it."
    if decision == "runoff":
        when = runoff_date(round_)
        day = f"{when.day} {when:%B %Y}" if when else "a date to be set"
        lead = f"No candidate reached {threshold}%" if threshold else "No candidate won outright"
        text = f"{lead} — runoff between {listed(outcome['advancing'])} on {day}."
        return text if official else f"{text} Provisional until the committee certifies the result."
    if decision == "tie":
        return f"{listed(outcome.get('tied') or outcome['advancing'])} are tied: the committee decides."
    if decision == "quorum_not_met":
        return f"Turnout did not reach the quorum of {document['rule'].get('quorum_percent')}%: there is no result."
    return f"Counting: {stations['reported']:,} of {stations['total']:,} stations reported."


def runoff_date(round_: Round) -> datetime | None:
    """When the runoff opens: the scheduled runoff round, else the rule's delay after this round opened."""
    runoff = Round.objects.filter(election_id=round_.election_id, number=round_.number + 1).first()
    if runoff is not None:
        return runoff.opens_at
    return round_.opens_at + timedelta(days=round_.election.runoff_after_days)
