"""Elections for the ballots tests: with Haifa voters for the paper station, one not yet open, one under
way on polling day; and choosing an admin action."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ballots.services.station import check_in_voter, close_station, enter_return
from members.services import import_roster
from tests.ballots.station_api import cast, check_in, figures
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


@pytest.fixture
def polling_day(haifa_election):
    """Round 1 under way: two voters at Tel Aviv (one ballot), two at the paper station Haifa, which has
    closed and whose two entries differ (the first with a warning), and the party house still open."""
    election = haifa_election
    tlv = election.client("tlv-01")
    check_in(tlv, "1001")
    cast(tlv, "peretz")
    check_in(tlv, "1003")
    haifa = election.station("hfa-01")
    for member_no in ("8800001", "8800002"):
        check_in_voter(station=haifa, member_no=member_no)
    close_station(station=haifa, actor="hfa-01")
    enter_return(station=haifa, entry=1, actor="clerk-a", **figures(1, total=1))  # W201 one short, W203
    enter_return(station=haifa, entry=2, actor="clerk-b", **figures(1, 1))
    return election


def act(client, model: str, action: str, objects, *, confirm: bool = True, **fields):
    """Choose an action on a changelist, and (`confirm`) submit its confirmation page."""
    data = {"action": action, "_selected_action": [obj.pk for obj in objects], **fields}
    if confirm:
        data["post"] = "yes"
    return client.post(reverse(f"admin:ballots_{model}_changelist"), data, follow=True)
