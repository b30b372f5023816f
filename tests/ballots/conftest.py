"""Elections for the station API tests: with Haifa voters for the paper station, and one not yet open."""

from __future__ import annotations

import pytest

from members.services import import_roster
from tests.conftest import ELECTION_FILE, ROSTER_HEADER, Election, csv_stream

# Active Haifa members who joined before the cutoff: the electorate of the paper station hfa-01.
# Seven digits, so that a member number cannot hide by chance in a hash, a timestamp or a count.
HAIFA_MEMBERS = [f"88000{n:02d}" for n in range(1, 7)]
HAIFA_ROSTER = ROSTER_HEADER + "".join(
    f"{member_no},Voter,Number{n},haifa,2000-01-0{n},active,,,\n" for n, member_no in enumerate(HAIFA_MEMBERS, 1)
)


@pytest.fixture
def haifa_election(small_roster) -> Election:
    """ELECTION_FILE over SMALL_ROSTER plus six Haifa voters, imported before the electorate is frozen."""
    report = import_roster(actor="rina", stream=csv_stream(HAIFA_ROSTER))
    assert report.ok, report.errors
    election = Election()
    assert election.election.electors.count() == 3 + len(HAIFA_MEMBERS)
    return election


class ScheduledElection(Election):
    """ELECTION_FILE frozen over SMALL_ROSTER, device tokens issued, round 1 not opened yet."""

    def __init__(self) -> None:
        from ballots.services import setup

        self.election, _ = setup.load_election(data=ELECTION_FILE, actor="committee")
        setup.freeze_electorate(election=self.election, actor="committee")
        self.round = self.election.rounds.get(number=1)
        self.tokens = {}
        for station in self.election.stations.all():
            _, self.tokens[station.code] = setup.issue_station_token(station=station, actor="manager")


@pytest.fixture
def scheduled_election(small_roster) -> ScheduledElection:
    return ScheduledElection()
