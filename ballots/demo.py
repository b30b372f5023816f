"""The 2011 Labor Party leadership election, built end to end through Kalpi's real code paths.

Round one: 44,184 voters, nobody at 40% (Yachimovich 32.2%, Peretz 30.9%, Herzog 24.6%, Mitzna
11.9%), a runoff between the top two a week later, won by Yachimovich. Every step goes through the
services the station API calls, and one station votes through the HTTP API itself. Deterministic.

The reported shares add up to 99.6%, the rest being blank and invalid ballots, so they are shares of
all ballots cast: the demo's rule takes its 40% of cast ballots ("threshold_base": "cast").
"""

from __future__ import annotations

import io
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.test.utils import override_settings
from rest_framework.test import APIClient

from audit import services as audit
from ballots.models import Elector, Round, Station
from ballots.services import count, setup, station
from members.fake_roster import BRANCHES, roster_csv_bytes
from members.services import import_roster

SLUG = "labor-2011"
ROSTER_SIZE = 66_000
CANDIDATES = [
    ("yachimovich", "Shelly Yachimovich"),
    ("peretz", "Amir Peretz"),
    ("herzog", "Isaac Herzog"),
    ("mitzna", "Amram Mitzna"),
]
# Round one: 44,184 ballots: 32.20%, 30.90%, 24.60% and 11.90% of them, 574 votes between the top two.
ROUND_ONE = {"yachimovich": 14_227, "peretz": 13_653, "herzog": 10_869, "mitzna": 5_258, "blank": 131, "invalid": 46}
# The runoff a week later, with its own, lower turnout.
RUNOFF = {"yachimovich": 19_476, "peretz": 16_300, "blank": 160, "invalid": 64}
# Small branches count on paper; the rest vote on tablets.
PAPER = {"kibbutz-movement", "moshav-movement", "druze-sector", "eilat", "tiberias", "nahariya", "raanana", "lod"}
# This station's device votes over HTTP, through the whole request stack.
OVER_HTTP = {"modiin"}
COMMITTEE = ("dana", "yossi")

Progress = Callable[[str, int, int], None]


def election_file() -> dict:
    stations = [
        {"code": code, "name": code.replace("-", " ").title(), "mode": "paper" if code in PAPER else "electronic",
         "branches": [code]}
        for code in BRANCHES
    ]  # fmt: skip
    stations.append({"code": "party-house", "name": "Party house, Tel Aviv", "mode": "electronic", "branches": []})
    return {
        "slug": SLUG,
        "name": "Labor Party leadership election 2011",
        "roster_cutoff": "2011-06-30",
        "require_dues": False,
        "candidates": [{"code": c, "name": n} for c, n in CANDIDATES],
        "stations": stations,
        "rule": {
            "method": "two_round",
            "threshold_percent": "40",
            "threshold_base": "cast",
            "quorum_percent": None,
            "advance": 2,
            "tie_break": "lot",
        },
        "rounds": [{"number": 1, "opens_at": "2011-09-12T07:00:00+03:00", "closes_at": "2011-09-12T22:00:00+03:00"}],
        "runoff_after_days": 7,
        "certifications_required": 2,
    }


@dataclass
class DemoResult:
    tallies: dict[int, object] = field(default_factory=dict)
    voters: dict[int, int] = field(default_factory=dict)


def run_demo(*, progress: Progress, password: str, scale: float = 1.0) -> DemoResult:
    """Build the whole scenario; `progress(stage, done, total)` reports as it goes.

    `scale` shrinks the roster and every count alike (the tests run the demo at 2%).
    """
    roster_size = round(ROSTER_SIZE * scale)
    rng = random.Random(2011)
    result = DemoResult()
    # Entries wait and are integrated in bulk; no query log is kept (DEBUG would keep one).
    with audit.integration_deferred(), override_settings(DEBUG=False):
        data = roster_csv_bytes(roster_size)
        report = import_roster(
            stream=io.BytesIO(data), actor="demo", on_progress=lambda done, rows: progress("roster", done, len(data))
        )
        if not report.ok:
            raise RuntimeError(f"the demo roster was refused: {report.summary()}")
        _officials(password)
        election, _ = setup.load_election(data=election_file(), actor="dana")
        setup.freeze_electorate(election=election, actor="dana")
        tokens = {s.code: setup.issue_station_token(station=s, actor="moshe")[1] for s in election.stations.all()}

        for number, full in ((1, ROUND_ONE), (2, RUNOFF)):
            target = {choice: round(n * scale) for choice, n in full.items()}
            setup.open_round(election=election, number=number, actor="dana")
            voters, paper = _vote(election, number, target, tokens, rng, progress)
            result.voters[number] = voters
            setup.close_round(election=election, number=number, actor="dana")
            _paper_returns(election, number, paper, progress)
            audit.integrate_pending()
            tally = count.tally_round(election=election, number=number, actor="dana")
            for username in COMMITTEE:
                count.certify_round(election=election, number=number, username=username)
            result.tallies[number] = tally
    audit.sign_checkpoint()
    return result


def _officials(password: str) -> None:
    roles = {"admin": None, "clerk": "roster clerk", "moshe": "station manager", "dana": "election committee",
             "yossi": "election committee", "avi": "auditor"}  # fmt: skip
    for username, group in roles.items():
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": group is None}
        )
        if created:
            user.set_password(password)
            user.save()
        if group:
            user.groups.add(Group.objects.get(name=group))


def _vote(
    election, number: int, target: dict[str, int], tokens, rng: random.Random, progress: Progress
) -> tuple[int, dict[str, Counter]]:
    """Check in and vote as many members as the target has ballots, each at their own station.

    Returns the number of voters and, for each paper station, the count its clerks will report.
    """
    choices = [choice for choice, n in target.items() for _ in range(n)]
    rng.shuffle(choices)
    electors = list(
        Elector.objects.filter(election=election, removed_at__isnull=True, station__isnull=False)
        .order_by("member__member_no")
        .values_list("member__member_no", "station__code")
    )
    if len(electors) < len(choices):
        raise RuntimeError(f"the demo electorate has {len(electors)} members, fewer than {len(choices)} voters")
    voters = rng.sample(electors, len(choices))
    by_station: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for (member_no, code), choice in zip(voters, choices, strict=True):
        by_station[code].append((member_no, choice))
    stations = {s.code: s for s in election.stations.all()}
    done = 0
    for code in sorted(by_station):
        st, ballots = stations[code], by_station[code]
        if code in OVER_HTTP:
            _vote_over_http(tokens[code], ballots)
            done += len(ballots)
            progress(f"round {number} voting", done, len(choices))
            continue
        for start in range(0, len(ballots), station.MAX_BATCH):
            chunk = ballots[start : start + station.MAX_BATCH]
            # The services' own transactions nest here as savepoints, in one commit per chunk: what
            # this saves is SQLite's work per commit, none of the services' checks.
            with transaction.atomic():
                for member_no, _ in chunk:
                    station.check_in_voter(station=st, member_no=member_no)
                if st.mode == Station.Mode.ELECTRONIC:
                    batch = [{"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "choice": c} for _, c in chunk]
                    station.record_ballots(station=st, ballots=batch)
            done += len(chunk)
            progress(f"round {number} voting", done, len(choices))
    paper = {
        code: Counter(choice for _, choice in ballots)
        for code, ballots in by_station.items()
        if stations[code].mode == Station.Mode.PAPER
    }
    return len(choices), paper


def _vote_over_http(token: str, ballots: list[tuple[str, str]]) -> None:
    # Through Django's whole request stack (middleware, routing, authentication, the views).
    client = APIClient(SERVER_NAME=(settings.ALLOWED_HOSTS or ["localhost"])[0].lstrip("."))
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    for member_no, choice in ballots:
        response = client.post("/api/v1/station/checkins/", {"member_no": member_no}, format="json")
        if response.status_code != 201:
            raise RuntimeError(f"check-in of {member_no} refused: {response.content!r}")
        response = client.post("/api/v1/station/ballots/", {"id": str(uuid.uuid4()), "choice": choice}, format="json")
        if response.status_code != 201:
            raise RuntimeError(f"ballot refused: {response.content!r}")


def _paper_returns(election, number: int, counts: dict[str, Counter], progress: Progress) -> None:
    """Each paper station's count, typed twice by two clerks."""
    round_ = Round.objects.get(election=election, number=number)
    codes = list(round_.candidates.values_list("code", flat=True))
    for i, (code, tally) in enumerate(sorted(counts.items()), start=1):
        st = election.stations.get(code=code)
        figures = {
            "counts": {c: tally.get(c, 0) for c in codes}, "blank": tally.get("blank", 0),
            "invalid": tally.get("invalid", 0), "total": sum(tally.values()),
        }  # fmt: skip
        for entry in (1, 2):
            station.enter_return(station=st, entry=entry, actor=code, **figures)
        progress(f"round {number} paper returns", i, len(counts))
