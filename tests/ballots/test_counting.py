"""The counting rules on plain data: tables of cases first, then properties of random rounds. No database."""

from __future__ import annotations

import ast
import hashlib
import json
import sys
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ballots import counting
from ballots.counting import Outcome, StationCount, Totals, add_up, decide, percent, rank, reaches

SEED = "5eed" * 16  # as committed to the audit log before the count
OTHER_SEED = "c0ffee" * 8


def two_round(threshold="40", base="valid", quorum=None, advance=2, tie_break="lot") -> dict:
    return {
        "method": "two_round",
        "threshold_percent": threshold,
        "threshold_base": base,
        "quorum_percent": quorum,
        "advance": advance,
        "tie_break": tie_break,
    }


def plurality(quorum=None, tie_break="lot") -> dict:
    return {"method": "plurality", "quorum_percent": quorum, "tie_break": tie_break}


def count(rule, votes, *, blank=0, invalid=0, electorate=None, runoff=False, complete=True, seed=SEED) -> Outcome:
    """Decide a round whose ballot lists the candidates in the order of `votes`."""
    totals = Totals(dict(votes), blank, invalid)
    if electorate is None:
        electorate = totals.cast * 2
    return decide(
        rule, totals, candidates=list(votes), electorate=electorate, runoff=runoff, complete=complete, seed=seed
    )


def redraw(seed: str, codes) -> list[str]:
    """The lot as anyone re-draws it from the audit log, with hashlib alone."""
    key = {code: hashlib.sha256(bytes.fromhex(seed) + b"\n" + code.encode()).hexdigest() for code in codes}
    return sorted(codes, key=lambda code: key[code])


# The motivating case: the 2011 Labor leadership primary.

LABOR_2011 = {"yachimovich": 14_098, "peretz": 13_529, "herzog": 10_771, "mitzna": 5_210}


def test_the_2011_labor_primary_goes_to_a_runoff_between_yachimovich_and_peretz():
    stations = [
        StationCount("tlv-01", {"yachimovich": 9_000, "peretz": 4_000, "herzog": 6_000, "mitzna": 1_210}, 300, 26),
        StationCount("sderot", {"peretz": 9_000, "yachimovich": 98}, 50, 0),
        StationCount("hfa-01", {"yachimovich": 5_000, "peretz": 529, "herzog": 4_771, "mitzna": 4_000}, 100, 100),
    ]
    totals = add_up(stations, list(LABOR_2011))
    assert totals == Totals(LABOR_2011, 450, 126)
    assert (totals.valid, totals.cast) == (43_608, 44_184)

    outcome = decide(
        two_round(), totals, candidates=list(LABOR_2011), electorate=66_000, runoff=False, complete=True, seed=SEED
    )

    assert outcome == Outcome("runoff", None, ["yachimovich", "peretz"], ["yachimovich", "peretz", "herzog", "mitzna"])
    assert outcome.as_dict() == {"decision": "runoff", "winner": None, "advancing": ["yachimovich", "peretz"]}
    # Shares of the valid votes. (The press gave 32.2, 30.9, 24.6 and 11.9 from the final official count;
    # these are the shares of the figures above, exactly.)
    assert [percent(LABOR_2011[code], totals.valid) for code in outcome.ranking] == ["32.33", "31.02", "24.70", "11.95"]
    assert percent(totals.cast, 66_000) == "66.95"


def test_in_the_2011_runoff_the_most_votes_wins_though_nobody_needs_40_percent():
    outcome = count(two_round(), {"yachimovich": 30, "peretz": 29}, blank=41, runoff=True)
    assert (outcome.decision, outcome.winner, outcome.advancing) == ("winner", "yachimovich", [])


# The threshold: an integer comparison, never a rounded percentage.


@pytest.mark.parametrize(
    ("rule", "votes", "blank", "invalid", "decision", "winner", "advancing"),
    [
        pytest.param(two_round(), {"a": 400, "b": 350, "c": 250}, 0, 0, "winner", "a", [], id="exactly-40-wins"),
        pytest.param(
            two_round(), {"a": 39_996, "b": 35_000, "c": 25_004}, 0, 0, "runoff", None, ["a", "b"], id="39.996-does-not"
        ),
        pytest.param(
            two_round(), {"a": 39_999, "b": 35_000, "c": 25_001}, 0, 0, "runoff", None, ["a", "b"], id="39.999-does-not"
        ),
        pytest.param(
            two_round("33.33"), {"a": 3_333, "b": 3_000, "c": 2_000, "d": 1_667}, 0, 0, "winner", "a", [], id="33.33"
        ),
        pytest.param(
            two_round("33.33"),
            {"a": 3_332, "b": 3_000, "c": 2_001, "d": 1_667},
            0,
            0,
            "runoff",
            None,
            ["a", "b"],
            id="33.32-below-33.33",
        ),
        pytest.param(two_round("50"), {"a": 500, "b": 300, "c": 200}, 0, 0, "winner", "a", [], id="exactly-half-of-50"),
        pytest.param(
            two_round("50"), {"a": 499, "b": 301, "c": 200}, 0, 0, "runoff", None, ["a", "b"], id="just-below-half"
        ),
        pytest.param(
            two_round(base="valid"), {"a": 420, "b": 380, "c": 200}, 40, 11, "winner", "a", [], id="42-of-valid"
        ),
        pytest.param(
            two_round(base="cast"),
            {"a": 420, "b": 380, "c": 200},
            40,
            11,
            "runoff",
            None,
            ["a", "b"],
            id="39.96-of-cast",
        ),
        pytest.param(
            two_round(base="cast"), {"a": 420, "b": 380, "c": 200}, 0, 50, "winner", "a", [], id="exactly-40-of-cast"
        ),
        pytest.param(two_round("0"), {"a": 1, "b": 0}, 5, 0, "winner", "a", [], id="a-0-threshold-takes-one-vote"),
        pytest.param(two_round("100"), {"a": 99, "b": 1}, 0, 0, "runoff", None, ["a", "b"], id="100-needs-every-vote"),
        pytest.param(two_round("100"), {"a": 99, "b": 0}, 7, 0, "winner", "a", [], id="100-of-valid-ignores-blank"),
        pytest.param(
            two_round(advance=3), {"a": 30, "b": 25, "c": 25, "d": 20}, 0, 0, "runoff", None, ["a", "b", "c"], id="3-go"
        ),
        pytest.param(
            two_round("60", advance=3),
            {"a": 30, "b": 25},
            0,
            0,
            "runoff",
            None,
            ["a", "b"],
            id="fewer-than-advance-all-go",
        ),
        pytest.param(two_round(), {"a": 10}, 0, 0, "winner", "a", [], id="a-lone-candidate-who-reaches-it-wins"),
        pytest.param(
            two_round(base="cast"), {"a": 10}, 20, 0, "runoff", None, ["a"], id="a-lone-candidate-below-goes-on-alone"
        ),
        pytest.param(
            two_round(), {"a": 35, "b": 35, "c": 30}, 0, 0, "runoff", None, ["a", "b"], id="two-tied-leaders-both-go"
        ),
        pytest.param(plurality(), {"a": 10, "b": 20, "c": 5}, 0, 0, "winner", "b", [], id="plurality"),
        pytest.param(plurality(), {"a": 1, "b": 0, "c": 0}, 900, 0, "winner", "a", [], id="plurality-needs-no-share"),
        pytest.param(plurality(), {"a": 0}, 0, 0, "winner", "a", [], id="plurality-lone-candidate-without-votes"),
    ],
)
def test_it_decides_the_first_round_by_its_rule(rule, votes, blank, invalid, decision, winner, advancing):
    outcome = count(rule, votes, blank=blank, invalid=invalid)
    assert (outcome.decision, outcome.winner, outcome.advancing) == (decision, winner, advancing)
    assert outcome.tied == [] and outcome.draw is None


def test_a_candidate_shown_at_40_00_percent_has_not_reached_40():
    assert percent(39_996, 100_000) == "40.00"
    assert reaches(39_996, 100_000, "40") is False
    outcome = count(two_round(), {"a": 39_996, "b": 35_000, "c": 25_004})
    assert (outcome.decision, outcome.winner, outcome.advancing) == ("runoff", None, ["a", "b"])


def test_the_threshold_base_changes_the_decision():
    votes = {"a": 420, "b": 380, "c": 200}
    assert percent(420, 1_000) == "42.00" and percent(420, 1_051) == "39.96"
    assert count(two_round(base="valid"), votes, blank=40, invalid=11).winner == "a"
    assert count(two_round(base="cast"), votes, blank=40, invalid=11).decision == "runoff"


# The quorum: a share of the electorate, counted on every ballot cast (blank and invalid too).


@pytest.mark.parametrize(
    ("rule", "runoff"),
    [(plurality(quorum="20"), False), (two_round(quorum="20"), False), (two_round(quorum="20"), True)],
    ids=["plurality", "first-round", "runoff"],
)
@pytest.mark.parametrize(
    ("votes", "blank", "invalid", "met"),
    [
        ({"a": 150, "b": 50}, 0, 0, True),
        ({"a": 100, "b": 50}, 40, 10, True),
        ({"a": 149, "b": 50}, 0, 0, False),
        ({"a": 100, "b": 49}, 40, 10, False),
    ],
    ids=["200-of-1000", "200-with-blank-and-invalid", "199-of-1000", "199-with-blank-and-invalid"],
)
def test_the_quorum_is_met_at_exactly_20_percent_of_the_electorate(rule, runoff, votes, blank, invalid, met):
    outcome = count(rule, votes, blank=blank, invalid=invalid, electorate=1_000, runoff=runoff)
    if met:
        assert (outcome.decision, outcome.winner) == ("winner", "a")
    else:
        assert outcome == Outcome("quorum_not_met", None, [], ["a", "b"])
        assert outcome.as_dict() == {"decision": "quorum_not_met", "winner": None, "advancing": []}


def test_an_empty_electorate_never_meets_a_quorum():
    assert count(plurality(quorum="0"), {"a": 0}, electorate=0).decision == "quorum_not_met"


def test_without_a_quorum_rule_turnout_does_not_matter():
    assert count(plurality(), {"a": 1, "b": 0}, electorate=1_000_000).winner == "a"


# Pending: not every station has reported.


def test_an_incomplete_count_is_pending_whatever_the_numbers():
    outcome = count(two_round(), {"a": 90, "b": 10}, complete=False, seed=None)
    assert outcome == Outcome("pending", None, [], ["a", "b"])
    assert outcome.as_dict() == {"decision": "pending", "winner": None, "advancing": []}


def test_a_pending_count_does_not_check_the_quorum():
    assert count(two_round(quorum="50"), {"a": 1}, electorate=100, complete=False).decision == "pending"


# Ties at a decisive place.


def test_a_tie_for_the_win_by_lot_is_decided_by_the_seed_anyone_can_redraw():
    outcome = count(two_round(), {"a": 500, "b": 500, "c": 0})
    order = redraw(SEED, ["a", "b"])
    assert (outcome.decision, outcome.winner, outcome.advancing) == ("winner", order[0], [])
    assert outcome.tied == ["a", "b"]
    assert outcome.ranking == [*order, "c"]
    assert outcome.draw == {
        "seed": SEED,
        "order": order,
        "keys": {code: hashlib.sha256(bytes.fromhex(SEED) + b"\n" + code.encode()).hexdigest() for code in "ab"},
    }
    assert outcome.as_dict() == {
        "decision": "winner",
        "winner": order[0],
        "advancing": [],
        "tied": ["a", "b"],
        "draw": outcome.draw,
    }


def test_a_tie_for_the_win_by_committee_stops_with_the_tied_listed():
    outcome = count(two_round(tie_break="committee"), {"a": 500, "b": 500, "c": 0}, seed=None)
    assert outcome == Outcome("tie", None, [], ["a", "b", "c"], ["a", "b"])
    assert outcome.as_dict() == {"decision": "tie", "winner": None, "advancing": [], "tied": ["a", "b"]}


@pytest.mark.parametrize("rule", [plurality(), two_round()], ids=["plurality", "runoff"])
def test_a_tie_for_first_in_plurality_or_a_runoff_is_a_tie_for_the_win(rule):
    by_lot = count(rule, {"a": 7, "b": 9, "c": 9}, runoff=True)
    assert by_lot.decision == "winner" and by_lot.winner == redraw(SEED, ["b", "c"])[0]
    assert by_lot.tied == ["b", "c"]
    by_committee = count({**rule, "tie_break": "committee"}, {"a": 7, "b": 9, "c": 9}, runoff=True)
    assert by_committee == Outcome("tie", None, [], ["b", "c", "a"], ["b", "c"])


def test_a_tie_at_the_last_advancing_place_is_decided_by_lot():
    votes = {"d": 25, "b": 30, "a": 35, "c": 30}
    outcome = count(two_round(), votes)
    order = redraw(SEED, ["b", "c"])
    assert (outcome.decision, outcome.winner) == ("runoff", None)
    assert outcome.advancing == ["a", order[0]]
    assert outcome.ranking == ["a", *order, "d"]
    assert outcome.tied == ["b", "c"]  # in ballot order; the lot's order is in the draw
    assert outcome.draw["order"] == order


def test_a_tie_at_the_last_advancing_place_by_committee_lists_who_is_already_through():
    outcome = count(two_round(tie_break="committee"), {"a": 35, "b": 30, "c": 30, "d": 25})
    assert outcome == Outcome("tie", None, ["a"], ["a", "b", "c", "d"], ["b", "c"])


def test_a_three_way_tie_for_second_place_sends_one_of_them_to_the_runoff():
    votes = {"a": 39, "b": 20, "c": 20, "d": 20, "e": 1}
    outcome = count(two_round(), votes)
    order = redraw(SEED, ["b", "c", "d"])
    assert outcome.decision == "runoff" and outcome.advancing == ["a", order[0]]
    assert outcome.tied == ["b", "c", "d"] and outcome.ranking == ["a", *order, "e"]
    assert count(two_round(tie_break="committee"), votes) == Outcome(
        "tie", None, ["a"], ["a", "b", "c", "d", "e"], ["b", "c", "d"]
    )


def test_a_three_way_tie_for_first_below_the_threshold_sends_two_of_them_to_the_runoff():
    outcome = count(two_round(), {"a": 30, "b": 30, "c": 30, "d": 10})
    assert outcome.decision == "runoff" and outcome.advancing == redraw(SEED, ["a", "b", "c"])[:2]
    assert outcome.tied == ["a", "b", "c"]


def test_a_tie_behind_the_advancing_places_decides_nothing():
    outcome = count(two_round(), {"a": 35, "b": 30, "c": 20, "d": 20})
    assert outcome == Outcome("runoff", None, ["a", "b"], ["a", "b", "c", "d"])


def test_the_lot_is_reproducible_and_depends_on_the_seed():
    votes = {"a": 5, "b": 5}
    assert count(plurality(), votes, seed=SEED) == count(plurality(), votes, seed=SEED)
    assert count(plurality(), votes, seed=OTHER_SEED).draw["seed"] == OTHER_SEED
    winners = {count(plurality(), votes, seed=f"{n:02x}").winner for n in range(16)}
    assert winners == {"a", "b"}


def test_a_lot_rule_needs_a_seed_committed_before_any_complete_count_tie_or_not():
    with pytest.raises(ValueError, match="seed"):
        count(two_round(), {"a": 60, "b": 40}, seed=None)
    assert count(two_round(tie_break="committee"), {"a": 60, "b": 40}, seed=None).winner == "a"


@pytest.mark.parametrize("seed", ["", "abc", "ABCD", "5eed 5eed", "zz", "0x12", b"\x12"])
def test_it_refuses_a_seed_that_is_not_lower_case_hex(seed):
    with pytest.raises(ValueError, match="seed"):
        count(plurality(), {"a": 1}, seed=seed)


# No votes at all: everyone is tied at 0.


def test_with_no_valid_votes_nobody_wins_the_first_round_outright():
    outcome = count(two_round("0"), {"a": 0, "b": 0, "c": 0}, blank=12)
    assert outcome.decision == "runoff" and outcome.advancing == redraw(SEED, ["a", "b", "c"])[:2]
    assert outcome.tied == ["a", "b", "c"]
    by_committee = count(two_round(tie_break="committee"), {"a": 0, "b": 0, "c": 0}, blank=12)
    assert by_committee == Outcome("tie", None, [], ["a", "b", "c"], ["a", "b", "c"])


def test_with_no_votes_two_candidates_both_go_to_the_runoff_and_one_goes_alone():
    assert count(two_round(), {"a": 0, "b": 0}).advancing == ["a", "b"]
    assert count(two_round(), {"a": 0}) == Outcome("runoff", None, ["a"], ["a"])


def test_with_no_votes_a_plurality_is_a_tie_of_everyone():
    assert count(plurality(tie_break="committee"), {"a": 0, "b": 0}).tied == ["a", "b"]
    assert count(plurality(), {"a": 0, "b": 0}).winner == redraw(SEED, ["a", "b"])[0]


# Percentages, for display only.


@pytest.mark.parametrize(
    ("part", "whole", "shown"),
    [
        (1, 8, "12.50"),
        (1, 3, "33.33"),
        (2, 3, "66.67"),
        (1, 800, "0.12"),  # 0.125: half to even, down
        (3, 800, "0.38"),  # 0.375: half to even, up
        (5, 800, "0.62"),
        (7, 800, "0.88"),
        (39_985, 100_000, "39.98"),  # 39.985: down to the even 8
        (39_995, 100_000, "40.00"),  # 39.995: up to the even 0
        (39_996, 100_000, "40.00"),
        (39_994, 100_000, "39.99"),
        (7, 7, "100.00"),
        (3, 2, "150.00"),
        (0, 7, "0.00"),
        (0, 0, "0.00"),
        (5, 0, "0.00"),
        (10**30, 3 * 10**30, "33.33"),
        # Just below 0.135% with a denominator of 35 digits: dividing Decimals in a 28-digit context
        # would make it 0.135 and round again to "0.14"; the exact rounding says "0.13".
        (4 + 27 * 10**30, (20_000 * (4 + 27 * 10**30) + 1) // 27, "0.13"),
    ],
)
def test_percent_rounds_half_to_even_to_two_places(part, whole, shown):
    assert percent(part, whole) == shown


@pytest.mark.parametrize(("part", "whole"), [(-1, 10), (1, -10), (True, 10), (1.0, 10)])
def test_percent_refuses_what_is_not_a_count(part, whole):
    with pytest.raises(ValueError, match="whole number"):
        percent(part, whole)


@pytest.mark.parametrize(
    ("part", "whole", "threshold", "reached"),
    [
        (40_000, 100_000, "40", True),
        (39_996, 100_000, "40", False),
        (39_999, 100_000, "40.00", False),
        (3_333, 10_000, "33.33", True),
        (3_332, 10_000, "33.33", False),
        (1, 3, "33.33", True),
        (1, 3, "33.34", False),
        (1, 2, "50", True),
        (1, 2, "50.01", False),
        (200, 1_000, "20", True),
        (199, 1_000, "20", False),
        (0, 10, "0", True),
        (0, 10, "0.01", False),
        (10, 10, "100", True),
        (0, 0, "0", False),
        (5, 0, "40", False),
    ],
)
def test_reaches_compares_integers(part, whole, threshold, reached):
    assert reaches(part, whole, threshold) is reached


@pytest.mark.parametrize("threshold", ["40.001", "-1", "1000", "abc", "", "1e2", " 40", "40.", "٤٠", 40, 40.0, None])
def test_reaches_refuses_a_percentage_that_is_not_a_string_with_two_decimals_at_most(threshold):
    with pytest.raises(ValueError, match="percentage"):
        reaches(1, 2, threshold)


# Adding up the stations.


def test_add_up_sums_the_stations_with_every_candidate_in_ballot_order():
    totals = add_up([StationCount("s1", {"b": 3}, 1, 0), StationCount("s2", {"b": 4, "c": 2}, 0, 5)], ["a", "b", "c"])
    assert totals == Totals({"a": 0, "b": 7, "c": 2}, 1, 5)
    assert list(totals.votes) == ["a", "b", "c"]
    assert (totals.valid, totals.cast) == (9, 15)


def test_add_up_of_no_stations_is_zero_for_everyone():
    assert add_up([], ["a", "b"]) == Totals({"a": 0, "b": 0}, 0, 0)


@pytest.mark.parametrize(
    ("stations", "message"),
    [
        ([StationCount("s1", {"a": 1, "blank": 2}, 0, 0)], "not a candidate"),
        ([StationCount("s1", {"a": -1}, 0, 0)], "whole number"),
        ([StationCount("s1", {"a": True}, 0, 0)], "whole number"),
        ([StationCount("s1", {"a": 1}, 0, -2)], "whole number"),
        ([StationCount("s1", {"a": 1}, 0, 0), StationCount("s1", {"a": 1}, 0, 0)], "counted twice"),
    ],
    ids=["stray-code", "negative", "bool", "negative-invalid", "station-twice"],
)
def test_add_up_refuses_a_bad_count(stations, message):
    with pytest.raises(ValueError, match=message):
        add_up(stations, ["a", "b"])


@pytest.mark.parametrize(("candidates", "error"), [([], ValueError), (["a", "a"], ValueError), ("ab", TypeError)])
def test_add_up_refuses_a_bad_ballot(candidates, error):
    with pytest.raises(error):
        add_up([], candidates)


def test_rank_puts_the_most_votes_first_and_equals_in_ballot_order():
    assert rank(Totals({"a": 1, "b": 5, "c": 1, "d": 5}, 0, 0), ["a", "b", "c", "d"]) == ["b", "d", "a", "c"]
    assert rank(Totals({"b": 2}, 0, 0), ["a", "b"]) == ["b", "a"]
    with pytest.raises(ValueError, match="not candidates"):
        rank(Totals({"x": 2}, 0, 0), ["a", "b"])


@pytest.mark.parametrize(
    "rule",
    [
        {**two_round(), "method": "stv"},
        {**two_round(), "tie_break": "coin"},
        {**two_round(), "advance": 1},
        {**two_round(), "advance": True},
        {**two_round(), "threshold_base": "electorate"},
        {**two_round(), "threshold_percent": "33.333"},
        {**two_round(), "threshold_percent": None},
        {**two_round(), "quorum_percent": 20},
        plurality(quorum="abc"),
    ],
    ids=["method", "tie-break", "advance-1", "advance-bool", "base", "threshold", "no-threshold", "quorum", "quorum-p"],
)
def test_decide_refuses_a_malformed_rule(rule):
    with pytest.raises(ValueError, match=r"rule|percentage"):
        count(rule, {"a": 1})


def test_outcome_as_dict_is_canonical_json_without_floats():
    outcome = count(two_round(), {"a": 30, "b": 30, "c": 30, "d": 10})
    text = json.dumps(outcome.as_dict(), sort_keys=True, separators=(",", ":"))
    assert json.loads(text) == outcome.as_dict()
    assert "." not in text
    outcome.as_dict()["draw"]["order"].clear()  # a copy: the outcome itself is untouched
    assert outcome.draw["order"]


def test_counting_imports_nothing_but_the_standard_library():
    tree = ast.parse(Path(counting.__file__).read_text())
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in modules} <= set(sys.stdlib_module_names)


# Properties of random rounds.

codes = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True), min_size=1, max_size=6, unique=True)
percent_texts = st.integers(0, 10_000).flatmap(
    lambda hundredths: st.sampled_from(
        [f"{hundredths // 100}.{hundredths % 100:02d}"]
        + ([f"{hundredths // 100}.{hundredths % 100 // 10}"] if hundredths % 10 == 0 else [])
        + ([f"{hundredths // 100}"] if hundredths % 100 == 0 else [])
    )
)
rules = st.one_of(
    st.builds(
        two_round,
        threshold=percent_texts,
        base=st.sampled_from(counting.BASES),
        quorum=st.none() | percent_texts,
        advance=st.integers(2, 4),
        tie_break=st.sampled_from(counting.TIE_BREAKS),
    ),
    st.builds(plurality, quorum=st.none() | percent_texts, tie_break=st.sampled_from(counting.TIE_BREAKS)),
)
seeds = st.binary(min_size=1, max_size=32).map(bytes.hex)
small = st.integers(0, 12)  # small counts, so that ties are common


@st.composite
def rounds(draw):
    """(candidates, stations): a ballot and the counts of a few stations."""
    candidates = draw(codes)
    stations = [
        StationCount(
            f"s{n}",
            draw(st.dictionaries(st.sampled_from(candidates), small)),
            draw(small),
            draw(small),
        )
        for n in range(draw(st.integers(0, 5)))
    ]
    return candidates, stations


def split(draw, totals: Totals, parts: int) -> list[StationCount]:
    """The same ballots, dealt out at random among `parts` stations."""

    def deal(total: int) -> list[int]:
        cuts = sorted(draw(st.lists(st.integers(0, total), min_size=parts - 1, max_size=parts - 1)))
        return [b - a for a, b in zip([0, *cuts], [*cuts, total], strict=True)]

    votes = {code: deal(n) for code, n in totals.votes.items()}
    blank, invalid = deal(totals.blank), deal(totals.invalid)
    return [
        StationCount(f"s{i}", {code: shares[i] for code, shares in votes.items()}, blank[i], invalid[i])
        for i in range(parts)
    ]


def decide_all(rule, totals, candidates, electorate, seed) -> list[Outcome]:
    """The decision of the first round and of the runoff, complete and pending."""
    return [
        decide(rule, totals, candidates=candidates, electorate=electorate, runoff=r, complete=c, seed=seed)
        for r in (False, True)
        for c in (True, False)
    ]


@settings(deadline=None)
@given(rounds(), rules, st.integers(0, 400), seeds, st.data())
def test_permuting_the_stations_never_changes_the_totals_or_the_outcome(round_, rule, electorate, seed, data):
    candidates, stations = round_
    shuffled = data.draw(st.permutations(stations))
    totals = add_up(stations, candidates)
    assert add_up(shuffled, candidates) == totals
    assert decide_all(rule, add_up(shuffled, candidates), candidates, electorate, seed) == decide_all(
        rule, totals, candidates, electorate, seed
    )


@settings(deadline=None)
@given(rounds(), rules, st.integers(0, 400), seeds, st.integers(1, 5), st.integers(1, 5), st.data())
def test_dealing_the_ballots_differently_among_stations_never_changes_the_outcome(
    round_, rule, electorate, seed, parts, other_parts, data
):
    candidates, stations = round_
    totals = add_up(stations, candidates)
    one_way = add_up(split(data.draw, totals, parts), candidates)
    another = add_up(split(data.draw, totals, other_parts), candidates)
    assert one_way == another == totals
    assert decide_all(rule, one_way, candidates, electorate, seed) == decide_all(
        rule, another, candidates, electorate, seed
    )


@given(rounds(), st.data())
def test_one_more_vote_never_moves_a_candidate_down_the_ranking(round_, data):
    candidates, stations = round_
    totals = add_up(stations, candidates)
    code = data.draw(st.sampled_from(candidates))
    more = Totals({**totals.votes, code: totals.votes[code] + 1}, totals.blank, totals.invalid)
    assert rank(more, candidates).index(code) <= rank(totals, candidates).index(code)


@settings(deadline=None)
@given(rounds(), rules, st.integers(0, 400), seeds, st.booleans())
def test_one_more_vote_for_the_winner_keeps_them_the_winner(round_, rule, electorate, seed, runoff):
    candidates, stations = round_
    totals = add_up(stations, candidates)
    before = decide(rule, totals, candidates=candidates, electorate=electorate, runoff=runoff, complete=True, seed=seed)
    if before.winner is None:
        return
    more = Totals({**totals.votes, before.winner: totals.votes[before.winner] + 1}, totals.blank, totals.invalid)
    after = decide(rule, more, candidates=candidates, electorate=electorate, runoff=runoff, complete=True, seed=seed)
    assert after.winner == before.winner


@given(st.integers(0, 10**12), st.integers(0, 10**12), percent_texts)
def test_reaches_agrees_with_exact_fractions(part, whole, threshold):
    assert reaches(part, whole, threshold) is (whole > 0 and Fraction(part, whole) * 100 >= Fraction(threshold))


@given(st.integers(0, 10**40), st.integers(1, 10**40))
def test_percent_agrees_with_exact_fractions_rounded_half_to_even(part, whole):
    hundredths = round(Fraction(part * 10_000, whole))  # Fraction rounds half to even
    assert percent(part, whole) == f"{hundredths // 100}.{hundredths % 100:02d}"


@settings(deadline=None)
@given(rounds(), rules, st.integers(0, 400), seeds, st.booleans())
def test_the_outcome_follows_the_votes(round_, rule, electorate, seed, runoff):
    """The winner has the most votes, those advancing have at least as many as anyone left behind, and a
    first-round winner reaches the threshold by an independent exact check while a runoff means the leader
    did not."""
    candidates, stations = round_
    totals = add_up(stations, candidates)
    votes = totals.votes
    outcome = decide(
        rule, totals, candidates=candidates, electorate=electorate, runoff=runoff, complete=True, seed=seed
    )
    assert sorted(outcome.ranking) == sorted(candidates)
    assert [votes[code] for code in outcome.ranking] == sorted(votes.values(), reverse=True)
    if outcome.winner is not None:
        assert votes[outcome.winner] == max(votes.values())
    behind = [votes[code] for code in candidates if code not in outcome.advancing]
    assert all(votes[code] >= max(behind, default=0) for code in outcome.advancing)
    if outcome.draw is not None:
        assert outcome.draw["order"] == redraw(seed, outcome.tied)
    first_round = rule["method"] == "two_round" and not runoff
    if not first_round or outcome.decision == "quorum_not_met":
        return
    base = totals.valid if rule["threshold_base"] == "valid" else totals.cast
    leader = max(votes.values())
    leader_reaches = leader > 0 and Fraction(leader * 100, base) >= Fraction(rule["threshold_percent"])
    if outcome.decision == "winner":
        assert leader_reaches
    if outcome.decision == "runoff":
        assert not leader_reaches
        assert len(outcome.advancing) == min(rule["advance"], len(candidates))


@settings(deadline=None)
@given(rounds(), rules, st.integers(0, 400), seeds)
def test_with_a_fixed_seed_decide_is_deterministic_whatever_the_order_of_the_totals(round_, rule, electorate, seed):
    candidates, stations = round_
    totals = add_up(stations, candidates)
    reversed_keys = Totals(dict(reversed(totals.votes.items())), totals.blank, totals.invalid)
    first = decide_all(rule, totals, candidates, electorate, seed)
    assert decide_all(rule, totals, candidates, electorate, seed) == first
    assert decide_all(rule, reversed_keys, candidates, electorate, seed) == first
    assert [outcome.as_dict() for outcome in first] == [
        outcome.as_dict() for outcome in decide_all(rule, totals, candidates, electorate, seed)
    ]
