"""Who may vote in an election with a roster cutoff, with and without the dues rule."""

from datetime import date

from members.selectors import eligible_members
from members.services import import_roster
from tests.conftest import SMALL_ROSTER, csv_stream

CUTOFF = date(2011, 6, 30)


def eligible(**kwargs) -> list[str]:
    return sorted(eligible_members(**kwargs).values_list("member_no", flat=True))


def test_it_takes_active_members_who_joined_by_the_cutoff(small_roster):
    # 1004 suspended, 1005 joined after the cutoff, 1006 lapsed, 1007 resigned.
    assert eligible(cutoff=CUTOFF, require_dues=False) == ["1001", "1002", "1003"]


def test_it_also_requires_dues_paid_through_the_cutoff_when_the_election_does(small_roster):
    # 1002 paid until 2011-01-01 only, 1003 has no dues record.
    assert eligible(cutoff=CUTOFF, require_dues=True) == ["1001"]


def test_the_cutoff_day_itself_counts_for_joining_and_for_dues(db):
    import_roster(
        actor="rina",
        stream=csv_stream(
            SMALL_ROSTER
            + "2001,On,Time,haifa,2011-06-30,active,2011-06-30,,\n"
            + "2002,One,DayLate,haifa,2011-07-01,active,2012-01-01,,\n"
            + "2003,Dues,DayShort,haifa,2000-01-01,active,2011-06-29,,\n"
        ),
    )
    assert eligible(cutoff=CUTOFF, require_dues=True) == ["1001", "2001"]
    assert "2003" in eligible(cutoff=CUTOFF, require_dues=False)


def test_an_earlier_cutoff_gives_a_smaller_electorate(small_roster):
    assert eligible(cutoff=date(1996, 1, 1), require_dues=False) == ["1001", "1002"]
