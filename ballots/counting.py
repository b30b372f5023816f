"""The counting rules: who wins a round, or who goes on to the runoff. Pure functions over plain data.

Nothing here imports Django or anything outside the standard library, so the tally, the published
results and the standalone verifier can all run the very same rules. Every decision compares integers
(invariant 5): percentages are `Decimal` strings for display only. The same inputs give the same
outcome (invariant 6): no result depends on the order of the stations, the order of a dict's keys, the
clock or a random source other than the seed recorded in the audit log.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

METHODS = ("two_round", "plurality")
BASES = ("valid", "cast")
TIE_BREAKS = ("lot", "committee")
DECISIONS = ("winner", "runoff", "pending", "tie", "quorum_not_met")

# The election file's own pattern (ASCII digits only: Decimal would also read "٤٠" as 40). At most five
# significant digits, so scaling by 100 in Decimal is exact in any context.
_PERCENT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,2})?")
# Lower-case hex, whole bytes: one spelling per seed, so the seed in the audit log is the one drawn from.
_SEED = re.compile(r"(?:[0-9a-f]{2})+")


@dataclass(frozen=True)
class StationCount:
    """One station's count for a round."""

    station: str
    counts: dict[str, int]  # candidate code -> votes; a candidate left out had none
    blank: int
    invalid: int


@dataclass(frozen=True)
class Totals:
    """A round's totals over all the stations that reported."""

    votes: dict[str, int]  # candidate code -> votes, in ballot order
    blank: int
    invalid: int

    @property
    def valid(self) -> int:
        """Votes for a candidate: the ballots that are neither blank nor invalid."""
        return sum(self.votes.values())

    @property
    def cast(self) -> int:
        """Every ballot in the boxes: valid + blank + invalid."""
        return self.valid + self.blank + self.invalid


@dataclass(frozen=True)
class Outcome:
    """What a round decided (see `decide`)."""

    decision: str  # one of DECISIONS
    winner: str | None
    advancing: list[str]  # to the runoff, most votes first; [] unless decision is "runoff" or "tie"
    ranking: list[str]  # candidate codes, most votes first, ties ordered as decided (lot) or in ballot order
    tied: list[str] = field(default_factory=list)  # the candidates tied at the decisive place, in ballot order
    draw: dict[str, Any] | None = None  # the lot, {"seed", "order", "keys"}, when a lot decided

    def as_dict(self) -> dict[str, Any]:
        """The `outcome` object of the results document: "tied" and "draw" appear only when set."""
        result: dict[str, Any] = {"decision": self.decision, "winner": self.winner, "advancing": list(self.advancing)}
        if self.tied:
            result["tied"] = list(self.tied)
        if self.draw is not None:
            result["draw"] = {
                "seed": self.draw["seed"],
                "order": list(self.draw["order"]),
                "keys": dict(self.draw["keys"]),
            }
        return result


def add_up(stations: Iterable[StationCount], candidates: Sequence[str]) -> Totals:
    """Add the stations' counts into the round's totals.

    Every candidate of the round appears in the totals, in ballot order (the order of `candidates`), with
    0 when no station counted a vote for them. Raises ValueError for a vote counted for a code that is not
    a candidate of the round, for a count that is not a whole number 0 or more, and for a station given
    twice (it would silently be counted twice).
    """
    votes = dict.fromkeys(_ballot(candidates), 0)
    blank = invalid = 0
    seen: set[str] = set()
    for station in stations:
        if station.station in seen:
            raise ValueError(f"station {station.station!r} is counted twice")
        seen.add(station.station)
        for code, count in station.counts.items():
            if code not in votes:
                raise ValueError(f"station {station.station!r} counts votes for {code!r}, not a candidate of the round")
            votes[code] += _count(count, f"station {station.station!r}: the votes for {code!r}")
        blank += _count(station.blank, f"station {station.station!r}: blank")
        invalid += _count(station.invalid, f"station {station.station!r}: invalid")
    return Totals(votes, blank, invalid)


def percent(part: int, whole: int) -> str:
    """`part` as a percentage of `whole`, for display only: two decimals, rounded half to even, a string.

    "0.00" when `whole` is 0. Never decide anything with it: 39,996 of 100,000 shows as "40.00" yet does
    not reach 40% (`reaches` decides). Examples: percent(1, 3) == "33.33"; percent(1, 800) == "0.12"
    (0.125 rounds to the even 0.12); percent(3, 800) == "0.38" (0.375 rounds to the even 0.38).
    """
    _count(part, "the part")
    _count(whole, "the whole")
    if whole == 0:
        return "0.00"
    # ROUND_HALF_EVEN on the exact rational part * 10,000 / whole, in integers. Dividing two Decimals
    # would first round the quotient to the context's 28 digits and then round again to two places;
    # this rounds once, exactly, however large the numbers.
    hundredths, remainder = divmod(part * 10_000, whole)
    if remainder * 2 > whole or (remainder * 2 == whole and hundredths % 2 == 1):
        hundredths += 1
    # Built from its digits: Decimal arithmetic (scaleb, division) would round to the context's 28 digits.
    return str(Decimal(f"{hundredths}e-2"))


def reaches(part: int, whole: int, percent_text: str) -> bool:
    """Whether `part` is at least `percent_text` percent of `whole`, decided in integers alone.

    The percentage is a string with at most two decimals, as the election file gives it ("40", "33.33").
    It is first scaled, exactly, to an integer number of hundredths of a percent, h = Decimal(text) * 100
    (never through a float); then the rule is

        part * 100 * 100 >= h * whole

    with no division and no rounding, so 39,996 of 100,000 (39.996%) does not reach "40" although
    `percent` shows "40.00", and exactly 40,000 of 100,000 does.

    A share of nothing is nothing: when `whole` is 0, no percentage is reached (no threshold on zero
    votes, no quorum of an empty electorate), even "0".
    Raises ValueError for a count below 0 or a percentage that is not 0-999 with at most two decimals.
    """
    _count(part, "the part")
    _count(whole, "the whole")
    hundredths = _hundredths(percent_text)
    if whole == 0:
        return False
    return part * 100 * 100 >= hundredths * whole


def rank(totals: Totals, candidates: Sequence[str]) -> list[str]:
    """The candidates, most votes first; candidates with equal votes keep their ballot order.

    `candidates` is the ballot's order (the election file's). Raises ValueError if the totals hold votes
    for a code that is not among `candidates`.
    """
    votes = _votes(totals, candidates)
    # sorted() is stable and `votes` is in ballot order, so equal votes stay in ballot order.
    return sorted(votes, key=lambda code: -votes[code])


def decide(
    rule: dict[str, Any],
    totals: Totals,
    *,
    candidates: Sequence[str],
    electorate: int,
    runoff: bool,
    complete: bool,
    seed: str | None,
) -> Outcome:
    """Decide a round by its rule, in this order:

    1. Not `complete` (some stations have not reported): "pending", no winner, nobody advancing. The
       ranking is still given, for provisional results. No seed is needed yet.
    2. A rule with tie_break "lot" needs `seed` (lower-case hex, recorded in the audit log before the
       count) for every complete count, tie or no tie: ValueError without it. Asking for it only when a
       tie turns up would let a seed be chosen after seeing the tie.
    3. Quorum, when `quorum_percent` is set, in every round (the runoff too): the round has a result
       only if reaches(cast, electorate, quorum_percent); otherwise "quorum_not_met".
    4. "plurality", or the runoff of "two_round" (`runoff=True`): the most votes wins. A tie for first
       is a tie at the winner's place.
    5. The first round of "two_round": the base is the valid votes or every cast ballot
       (`threshold_base`). The leader wins if reaches(leader's votes, base, threshold_percent) and the
       leader has at least one vote (so zero valid votes never elect anyone, even at a 0% threshold).
       If two or more share the lead and reach it, that is a tie at the winner's place. Otherwise the
       top `advance` go to the runoff ("runoff"); if the candidate at place `advance` has as many votes
       as one after it, that is a tie at the last advancing place: the lot decides which of the tied
       candidates take the places left. With `advance` candidates or fewer, all of them advance and no
       tie matters; so a single candidate below the threshold goes alone to the runoff ("runoff",
       advancing [them]), where they win with any number of votes.
    6. A tie at a decisive place: with "lot", the tied candidates are ordered by SHA-256(seed bytes ‖
       b"\\n" ‖ code in UTF-8), smallest digest first, where the seed bytes are bytes.fromhex(seed); the
       first of that order take the places, `tied` lists the tied candidates and `draw` records the
       seed, each key and the order. With "committee", the decision is "tie": no winner, `tied` lists
       them, and `advancing` holds only those whose place in the runoff is already certain; the
       committee settles the rest by a recorded decision.

    With no valid votes at all every candidate is tied at 0, so rules 4-6 apply as to any tie: a lot or
    a committee "tie" (a lone candidate in plurality or a runoff still wins).

    `candidates` is the ballot's order; it only orders candidates with equal votes when no tie matters
    (and lists the tied). Percentages play no part here. Raises ValueError for a malformed rule, counts
    or seed, or votes for a code not among `candidates`.
    """
    method, threshold, base_name, advance, tie_break, quorum = _rule(rule)
    votes = _votes(totals, candidates)
    _count(totals.blank, "blank")
    _count(totals.invalid, "invalid")
    _count(electorate, "the electorate")
    ranking = rank(totals, candidates)
    if not complete:
        return Outcome("pending", None, [], ranking)
    if tie_break == "lot":
        if seed is None:
            raise ValueError("the rule breaks ties by lot: commit a seed to the audit log before the count")
        if not isinstance(seed, str) or not _SEED.fullmatch(seed):
            raise ValueError(f"the seed must be lower-case hex, whole bytes; got {seed!r}")
    if quorum is not None and not reaches(totals.cast, electorate, quorum):
        return Outcome("quorum_not_met", None, [], ranking)

    groups = _groups(ranking, votes)
    if method == "plurality" or runoff:
        return _the_most_votes_wins(groups[0], ranking, tie_break, seed)

    base = totals.valid if base_name == "valid" else totals.cast
    leaders = groups[0]
    leader_votes = votes[leaders[0]]
    if leader_votes > 0 and reaches(leader_votes, base, threshold):
        return _the_most_votes_wins(leaders, ranking, tie_break, seed)

    if len(ranking) <= advance:
        return Outcome("runoff", None, list(ranking), ranking)
    last_place_votes = votes[ranking[advance - 1]]
    # Both in ballot order among equals, as the ranking is.
    certain = [code for code in ranking if votes[code] > last_place_votes]
    tied = [code for code in ranking if votes[code] == last_place_votes]
    if len(certain) + len(tied) == advance:
        return Outcome("runoff", None, ranking[:advance], ranking)
    if tie_break == "committee":
        return Outcome("tie", None, certain, ranking, tied)
    draw = _draw(seed, tied)
    ranking = _reorder(ranking, draw["order"])
    return Outcome("runoff", None, ranking[:advance], ranking, tied, draw)


def results_document(
    *, election: str, number: int, rule: dict[str, Any], names: dict[str, str], candidates: Sequence[str],
    by_station: list[dict[str, Any]], reported: Sequence[StationCount], electorate: int, complete: bool,
    seed: str | None,
) -> dict[str, Any]:  # fmt: skip
    """The results document of a round (DESIGN.md), without its `audit` point and the publication's
    fields: one definition for the service's tally and the verifier's recount of it from the log.

    `candidates` is the round's ballot order; `by_station` the stations' rows as the document shows
    them (each with its `checked_in`), `reported` the counts of those that reported.
    """
    totals = add_up(reported, candidates)
    checked_in = sum(row["checked_in"] or 0 for row in by_station)
    outcome = decide(
        rule, totals, candidates=candidates, electorate=electorate, runoff=number > 1, complete=complete, seed=seed
    )
    base = totals.cast if rule.get("threshold_base") == "cast" else totals.valid
    return {
        "election": election,
        "round": number,
        "rule": rule,
        "electorate": electorate,
        "checked_in": checked_in,
        "cast": totals.cast,
        "valid": totals.valid,
        "blank": totals.blank,
        "invalid": totals.invalid,
        "turnout_percent": percent(checked_in, electorate),
        "stations": {"reported": len(reported), "total": len(by_station)},
        "candidates": [
            {"code": code, "name": names[code], "votes": votes, "percent": percent(votes, base)}
            for code in outcome.ranking
            for votes in [totals.votes[code]]
        ],
        "outcome": outcome.as_dict(),
        "by_station": by_station,
    }


def _the_most_votes_wins(leaders: list[str], ranking: list[str], tie_break: str, seed: str | None) -> Outcome:
    if len(leaders) == 1:
        return Outcome("winner", leaders[0], [], ranking)
    if tie_break == "committee":
        return Outcome("tie", None, [], ranking, leaders)
    draw = _draw(seed, leaders)
    ranking = _reorder(ranking, draw["order"])
    return Outcome("winner", draw["order"][0], [], ranking, leaders, draw)


def _draw(seed: str | None, tied: Sequence[str]) -> dict[str, Any]:
    """The lot among `tied`: each candidate's key is SHA-256(bytes.fromhex(seed) ‖ b"\\n" ‖ code), smallest first.

    Anyone holding the seed from the audit log re-draws it with hashlib alone. The code breaks a tie
    between two digests, which never happens in practice but keeps the order total.
    """
    assert seed is not None  # decide() refuses a lot rule without a seed before anything is counted
    prefix = bytes.fromhex(seed) + b"\n"
    keys = {code: hashlib.sha256(prefix + code.encode("utf-8")).hexdigest() for code in tied}
    order = sorted(tied, key=lambda code: (keys[code], code))
    return {"seed": seed, "order": order, "keys": {code: keys[code] for code in order}}


def _reorder(ranking: list[str], order: list[str]) -> list[str]:
    """The ranking with the tied candidates (equal votes, so side by side in it) put in the lot's order."""
    start = min(ranking.index(code) for code in order)
    return [*ranking[:start], *order, *ranking[start + len(order) :]]


def _groups(ranking: list[str], votes: dict[str, int]) -> list[list[str]]:
    """The ranking cut into runs of equal votes, most votes first; each run in ballot order, as in `rank`."""
    groups: list[list[str]] = []
    for code in ranking:
        if groups and votes[groups[-1][0]] == votes[code]:
            groups[-1].append(code)
        else:
            groups.append([code])
    return groups


def _ballot(candidates: Sequence[str]) -> list[str]:
    # A bare string is a Sequence[str] too: "abc" must not become three candidates.
    if isinstance(candidates, str):
        raise TypeError("candidates must be a sequence of candidate codes, not one string")
    order = list(candidates)
    if not order:
        raise ValueError("a round has at least one candidate")
    if len(set(order)) != len(order):
        raise ValueError(f"a candidate appears twice on the ballot: {order!r}")
    return order


def _votes(totals: Totals, candidates: Sequence[str]) -> dict[str, int]:
    """The totals' votes in ballot order, 0 for a candidate they leave out."""
    order = _ballot(candidates)
    strays = sorted(set(totals.votes) - set(order))
    if strays:
        raise ValueError(f"votes for codes that are not candidates of the round: {strays!r}")
    return {code: _count(totals.votes.get(code, 0), f"the votes for {code!r}") for code in order}


def _count(value: Any, what: str) -> int:
    # bool is an int to Python; a True among the counts is a bug upstream, not one vote.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number, 0 or more; got {value!r}")
    return value


def _hundredths(percent_text: Any) -> int:
    """A percentage string with at most two decimals as an exact integer of hundredths: "33.33" -> 3333."""
    if not isinstance(percent_text, str) or not _PERCENT.fullmatch(percent_text):
        raise ValueError(
            f'a percentage is a string of 0-999 with at most two decimals, like "40"; got {percent_text!r}'
        )
    return int(Decimal(percent_text) * 100)


def _rule(rule: dict[str, Any]) -> tuple[str, str | None, str | None, int, str, str | None]:
    """(method, threshold_percent, threshold_base, advance, tie_break, quorum_percent), checked."""
    method = rule.get("method")
    if method not in METHODS:
        raise ValueError(f"rule.method must be one of {', '.join(METHODS)}; got {method!r}")
    tie_break = rule.get("tie_break")
    if tie_break not in TIE_BREAKS:
        raise ValueError(f"rule.tie_break must be one of {', '.join(TIE_BREAKS)}; got {tie_break!r}")
    quorum = rule.get("quorum_percent")  # absent or None: no quorum
    if quorum is not None:
        _hundredths(quorum)
    if method == "plurality":
        return method, None, None, 1, tie_break, quorum
    threshold = rule.get("threshold_percent")
    _hundredths(threshold)
    base = rule.get("threshold_base")
    if base not in BASES:
        raise ValueError(f"rule.threshold_base must be one of {', '.join(BASES)}; got {base!r}")
    advance = rule.get("advance")
    if isinstance(advance, bool) or not isinstance(advance, int) or advance < 2:
        raise ValueError(f"rule.advance must be a whole number, at least 2; got {advance!r}")
    return method, threshold, base, advance, tie_break, quorum
