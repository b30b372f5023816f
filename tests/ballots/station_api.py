"""Helpers for the station API tests: requests, the error envelope, and "this wrote nothing"."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from audit.models import Entry
from ballots.models import (
    Ballot,
    CheckIn,
    Elector,
    OpenBallot,
    ReturnResolution,
    Round,
    Seal,
    StationReturn,
    StationRound,
)

STATION_API = "/api/v1/station/"
CANDIDATES = ("yachimovich", "peretz", "herzog")


def url(path: str = "") -> str:
    return STATION_API + path


def new_id() -> str:
    return str(uuid.uuid4())


def check_in(client, member_no: str):
    return client.post(url("checkins/"), {"member_no": member_no}, format="json")


def cast(client, choice: str, ballot_id: str | None = None):
    return client.post(url("ballots/"), {"id": ballot_id or new_id(), "choice": choice}, format="json")


def cast_batch(client, ballots: list[dict[str, Any]]):
    return client.post(url("ballots/batch/"), {"ballots": ballots}, format="json")


def close(client):
    return client.post(url("close/"))


def figures(
    yachimovich: Any = 0, peretz: Any = 0, herzog: Any = 0, *, blank: Any = 0, invalid: Any = 0, total: Any = None
) -> dict[str, Any]:
    """A return's figures; the total is the sum unless given."""
    counts = {"yachimovich": yachimovich, "peretz": peretz, "herzog": herzog}
    if total is None:
        total = yachimovich + peretz + herzog + blank + invalid
    return {"counts": counts, "blank": blank, "invalid": invalid, "total": total}


def enter(client, entry: int, body: dict[str, Any]):
    return client.post(url("returns/"), {"entry": entry, **body}, format="json")


def refused(response, status: int, code: str) -> dict[str, Any]:
    """Assert the contract's error envelope with this status and code; return the body."""
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert set(body) == {"code", "message", "extra"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"], body
    assert isinstance(body["extra"], dict), body
    return body


def counters(code: str, number: int = 1, election: str = "labor-2011") -> tuple[int, int, bool]:
    """A station's (check-ins, ballots, closed) in a round."""
    row = StationRound.objects.get(station__code=code, round__number=number, round__election__slug=election)
    return row.checkins, row.ballots, row.closed_at is not None


def stored_ballots(**filters: Any) -> dict[uuid.UUID, str]:
    """Every ballot stored, id -> choice: those in the open box of open stations and the sealed ones.

    An id is in one of the two, never both (checked here)."""
    open_box = dict(OpenBallot.objects.filter(**filters).values_list("id", "choice"))
    sealed = dict(Ballot.objects.filter(**filters).values_list("id", "choice"))
    assert not open_box.keys() & sealed.keys()
    return open_box | sealed


def state() -> dict[str, Any]:
    """Everything a station request could write."""
    return {
        "checkins": CheckIn.objects.count(),
        "ballots": len(stored_ballots()),
        "returns": StationReturn.objects.count(),
        "resolutions": ReturnResolution.objects.count(),
        "seals": Seal.objects.count(),
        "entries": Entry.objects.count(),
        "electors": Elector.objects.filter(removed_at__isnull=True).count(),
        "rounds": sorted(Round.objects.values_list("election__slug", "number", "status")),
        "station_rounds": sorted(
            (s.round.election.slug, s.round.number, s.station.code, s.checkins, s.ballots, s.closed_at)
            for s in StationRound.objects.select_related("round__election", "station")
        ),
    }


@contextmanager
def nothing_written() -> Iterator[None]:
    before = state()
    yield
    assert state() == before
