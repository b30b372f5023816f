"""Reads for the officials: the election-day picture of a round, in a fixed handful of queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import TruncHour

from ballots import counting
from ballots.models import CheckIn, Election, Elector, Round, Seal, Station, StationReturn, StationRound


def current_round(election: Election) -> Round | None:
    """The open round; else the latest that has opened; else the first scheduled; None without rounds."""
    rounds = Round.objects.filter(election=election)
    return (
        rounds.filter(status=Round.Status.OPEN).first()
        or rounds.exclude(status=Round.Status.SCHEDULED).order_by("-number").first()
        or rounds.order_by("number").first()
    )


@dataclass(frozen=True)
class StationDay:
    station_id: int
    code: str
    name: str
    mode: str
    electors: int  # members of the electorate whose station this is (they may vote elsewhere too)
    checkins: int
    ballots: int | None  # electronic: recorded so far; paper: the accepted return's total, once reported
    closed_at: datetime | None
    reported: bool  # sealed: its count is in

    @property
    def turnout_percent(self) -> str | None:
        return counting.percent(self.checkins, self.electors) if self.electors else None


@dataclass(frozen=True)
class HourCount:
    hour: datetime
    checkins: int
    running: int
    bar: int  # width of its bar: percent of the busiest hour


@dataclass(frozen=True)
class DifferingReturns:
    """A paper station whose two entries disagree and which the committee has not settled yet."""

    station_id: int
    code: str
    entries: list[StationReturn]  # entry 1, entry 2

    @property
    def rows(self) -> list[tuple[str, int | None, int | None]]:
        """(what, entry 1, entry 2) per candidate by code, then blank, invalid and total: side by side."""
        first, second = self.entries
        codes = sorted({*first.counts, *second.counts})  # sorted: PostgreSQL's jsonb keeps no key order
        rows = [(code, first.counts.get(code), second.counts.get(code)) for code in codes]
        return rows + [(name, getattr(first, name), getattr(second, name)) for name in ("blank", "invalid", "total")]


@dataclass
class ElectionDay:
    election: Election
    round: Round
    electorate: int
    stations: list[StationDay]
    hours: list[HourCount]
    # Only for those who may read the returns (None otherwise): W… warnings as (return, warning), and
    # the stations whose entries differ.
    warnings: list[tuple[StationReturn, dict[str, Any]]] | None = None
    differing: list[DifferingReturns] | None = None

    @property
    def checked_in(self) -> int:
        return sum(s.checkins for s in self.stations)

    @property
    def turnout_percent(self) -> str:
        return counting.percent(self.checked_in, self.electorate)

    @property
    def open_stations(self) -> list[StationDay]:
        return [s for s in self.stations if s.closed_at is None]

    @property
    def unreported_stations(self) -> list[StationDay]:
        return [s for s in self.stations if not s.reported]


def election_day(election: Election, *, with_returns: bool) -> ElectionDay | None:
    """Turnout by station and by hour, open and unreported stations, and (`with_returns`) the paper
    returns' warnings and differences, for the election's current round. None before it has rounds.

    Seven queries at most (four while a round is open), whatever the number of stations, check-ins or
    returns.
    """
    round_ = current_round(election)
    if round_ is None:
        return None
    # The electorate per station in one grouped query; members whose branch no station serves have none.
    electors = dict(
        Elector.objects.filter(election=election, removed_at__isnull=True)
        .values("station")
        .annotate(n=Count("id"))
        .values_list("station", "n")
    )
    seal = Seal.objects.filter(round=OuterRef("round"), station=OuterRef("station"))
    station_rounds = (
        StationRound.objects.filter(round=round_)
        .select_related("station")
        .annotate(sealed_ballots=Subquery(seal.values("ballots")[:1]))
        .order_by("station__position")
    )
    stations = [
        StationDay(
            station_id=sr.station_id,
            code=sr.station.code,
            name=sr.station.name,
            mode=sr.station.mode,
            electors=electors.get(sr.station_id, 0),
            checkins=sr.checkins,
            ballots=sr.ballots if sr.station.mode == Station.Mode.ELECTRONIC else sr.sealed_ballots,
            closed_at=sr.closed_at,
            reported=sr.sealed_ballots is not None,
        )
        for sr in station_rounds
    ]
    day = ElectionDay(
        election=election,
        round=round_,
        electorate=sum(electors.values()),
        stations=stations,
        hours=_checkins_by_hour(round_),
    )
    if with_returns:
        _add_returns(day)
    return day


def _checkins_by_hour(round_: Round) -> list[HourCount]:
    # Grouped in the database, by the hour in the configured time zone (TruncHour does so on SQLite
    # and PostgreSQL alike): a round's check-ins never come to Python one by one.
    counts = list(
        CheckIn.objects.filter(round=round_)
        .annotate(hour=TruncHour("created_at"))
        .values("hour")
        .annotate(n=Count("id"))
        .order_by("hour")
        .values_list("hour", "n")
    )
    busiest = max((n for _, n in counts), default=0)
    hours, running = [], 0
    for hour, n in counts:
        running += n
        hours.append(HourCount(hour=hour, checkins=n, running=running, bar=n * 100 // busiest))
    return hours


def _add_returns(day: ElectionDay) -> None:
    returns = list(
        StationReturn.objects.filter(round=day.round).select_related("station").order_by("station__position", "entry")
    )
    day.warnings = [(r, warning) for r in returns for warning in r.warnings]
    reported = {s.station_id for s in day.stations if s.reported}
    by_station: dict[int, list[StationReturn]] = {}
    for r in returns:
        by_station.setdefault(r.station_id, []).append(r)
    day.differing = [
        DifferingReturns(station_id=station_id, code=entries[0].station.code, entries=entries)
        for station_id, entries in by_station.items()
        if station_id not in reported and len(entries) == 2 and entries[0].figures() != entries[1].figures()
    ]
