"""The election file (JSON): strict validation, every problem named by its path. Pure, no ORM."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ballots.models import SPECIAL_CHOICES

_CODE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_PERCENT = re.compile(r"\d{1,3}(\.\d{1,2})?")
METHODS = ("two_round", "plurality")
BASES = ("valid", "cast")
TIE_BREAKS = ("lot", "committee")
_TOP_LEVEL = {
    "slug", "name", "roster_cutoff", "require_dues", "candidates", "stations", "rule", "rounds",
    "runoff_after_days", "certifications_required",
}  # fmt: skip
_RULE_KEYS = {"method", "threshold_percent", "threshold_base", "quorum_percent", "advance", "tie_break"}


class ElectionFileError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class RoundSpec:
    number: int
    opens_at: datetime
    closes_at: datetime


@dataclass(frozen=True)
class ElectionSpec:
    slug: str
    name: str
    roster_cutoff: date
    require_dues: bool
    candidates: list[dict[str, str]]
    stations: list[dict[str, Any]]
    rule: dict[str, Any]
    rounds: list[RoundSpec]
    runoff_after_days: int
    certifications_required: int


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def string(self, data: dict, key: str, path: str, *, pattern: re.Pattern | None = None, max_length: int = 200):
        value = data.get(key)
        where = f"{path}.{key}" if path else key
        if not isinstance(value, str) or not value.strip():
            self.fail(where, "required, a non-empty string")
            return None
        if len(value) > max_length:
            self.fail(where, f"at most {max_length} characters")
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(where, f"{value!r} must be lower-case letters, digits and hyphens")
        return value

    def integer(self, data: dict, key: str, *, minimum: int, default: int | None = None):
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(key, f"must be a whole number, at least {minimum}")
            return None
        return value

    def unknown_keys(self, data: dict, allowed: set[str], path: str) -> None:
        for key in sorted(set(data) - allowed):
            self.fail(f"{path}.{key}" if path else key, "unknown field")


def _percent(checker: _Checker, value: Any, where: str, *, optional: bool) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _PERCENT.fullmatch(value):
        checker.fail(where, 'a percentage as a string, like "40" or "33.33"' + (", or null" if optional else ""))
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:  # pragma: no cover (the pattern already refuses it)
        number = Decimal(-1)
    if not Decimal(0) <= number <= Decimal(100):
        checker.fail(where, "between 0 and 100")
        return None
    return value


def _datetime(checker: _Checker, value: Any, where: str) -> datetime | None:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    checker.fail(where, "a date and time with its UTC offset, like 2011-09-12T07:00:00+03:00")
    return None


# Paths under /results/ that are pages of their own, not elections.
RESERVED_SLUGS = frozenset({"verify"})


def parse_election_file(data: Any) -> ElectionSpec:
    """Validate a parsed election file; raise ElectionFileError listing every problem."""
    checker = _Checker()
    if not isinstance(data, dict):
        raise ElectionFileError(["the file must hold one JSON object"])
    checker.unknown_keys(data, _TOP_LEVEL, "")
    slug = checker.string(data, "slug", "", pattern=_SLUG, max_length=64)
    if slug in RESERVED_SLUGS:
        checker.fail("slug", f"{slug!r} is taken by a public page (/results/{slug}/); choose another")
    name = checker.string(data, "name", "")
    cutoff = None
    if isinstance(data.get("roster_cutoff"), str) and len(data["roster_cutoff"]) == 10:
        with contextlib.suppress(ValueError):
            cutoff = date.fromisoformat(data["roster_cutoff"])
    if cutoff is None:
        checker.fail("roster_cutoff", "a date, YYYY-MM-DD")
    require_dues = data.get("require_dues", False)
    if not isinstance(require_dues, bool):
        checker.fail("require_dues", "true or false")

    candidates = _candidates(checker, data.get("candidates"))
    stations = _stations(checker, data.get("stations"))
    rule = _rule(checker, data.get("rule"), len(candidates))
    rounds = _rounds(checker, data.get("rounds"))
    runoff_after_days = checker.integer(data, "runoff_after_days", minimum=0, default=7)
    certifications = checker.integer(data, "certifications_required", minimum=1, default=2)
    if checker.problems:
        raise ElectionFileError(checker.problems)
    return ElectionSpec(
        slug, name, cutoff, require_dues, candidates, stations, rule, rounds, runoff_after_days, certifications
    )


def _candidates(checker: _Checker, value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list) or not value:
        checker.fail("candidates", "a non-empty list")
        return []
    seen: set[str] = set()
    result = []
    for i, item in enumerate(value):
        path = f"candidates[{i}]"
        if not isinstance(item, dict):
            checker.fail(path, "an object with code and name")
            continue
        checker.unknown_keys(item, {"code", "name"}, path)
        code = checker.string(item, "code", path, pattern=_CODE, max_length=64)
        name = checker.string(item, "name", path)
        if code in SPECIAL_CHOICES:
            checker.fail(f"{path}.code", f"{code!r} is reserved for {code} ballots")
        elif code in seen:
            checker.fail(f"{path}.code", f"{code!r} appears twice")
        if code:
            seen.add(code)
        result.append({"code": code, "name": name})
    return result


def _stations(checker: _Checker, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        checker.fail("stations", "a non-empty list")
        return []
    seen: set[str] = set()
    result = []
    for i, item in enumerate(value):
        path = f"stations[{i}]"
        if not isinstance(item, dict):
            checker.fail(path, "an object with code, name, mode and branches")
            continue
        checker.unknown_keys(item, {"code", "name", "mode", "branches"}, path)
        code = checker.string(item, "code", path, pattern=_CODE, max_length=64)
        name = checker.string(item, "name", path)
        mode = item.get("mode")
        if mode not in ("electronic", "paper"):
            checker.fail(f"{path}.mode", '"electronic" or "paper"')
        branches = item.get("branches", [])
        if not isinstance(branches, list) or not all(isinstance(b, str) and b.strip() for b in branches):
            checker.fail(f"{path}.branches", "a list of branch codes ([] serves every branch)")
            branches = []
        if code in seen:
            checker.fail(f"{path}.code", f"{code!r} appears twice")
        if code:
            seen.add(code)
        result.append({"code": code, "name": name, "mode": mode, "branches": [b.strip() for b in branches]})
    return result


def _rule(checker: _Checker, value: Any, candidate_count: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        checker.fail("rule", "an object")
        return {}
    checker.unknown_keys(value, _RULE_KEYS, "rule")
    method = value.get("method")
    if method not in METHODS:
        checker.fail("rule.method", f"one of {', '.join(METHODS)}")
    rule: dict[str, Any] = {"method": method}
    if method == "two_round":
        rule["threshold_percent"] = _percent(
            checker, value.get("threshold_percent"), "rule.threshold_percent", optional=False
        )
        base = value.get("threshold_base", "valid")
        if base not in BASES:
            checker.fail("rule.threshold_base", f"one of {', '.join(BASES)}")
        rule["threshold_base"] = base
        advance = value.get("advance", 2)
        if isinstance(advance, bool) or not isinstance(advance, int) or advance < 2:
            checker.fail("rule.advance", "a whole number, at least 2")
        rule["advance"] = advance
    rule["quorum_percent"] = _percent(checker, value.get("quorum_percent"), "rule.quorum_percent", optional=True)
    tie_break = value.get("tie_break", "lot")
    if tie_break not in TIE_BREAKS:
        checker.fail("rule.tie_break", f"one of {', '.join(TIE_BREAKS)}")
    rule["tie_break"] = tie_break
    return rule


def _rounds(checker: _Checker, value: Any) -> list[RoundSpec]:
    if not isinstance(value, list) or not value:
        checker.fail("rounds", "a non-empty list")
        return []
    result = []
    for i, item in enumerate(value):
        path = f"rounds[{i}]"
        if not isinstance(item, dict):
            checker.fail(path, "an object with number, opens_at and closes_at")
            continue
        checker.unknown_keys(item, {"number", "opens_at", "closes_at"}, path)
        number = item.get("number")
        if number != i + 1 or isinstance(number, bool):
            checker.fail(f"{path}.number", f"must be {i + 1} (rounds are numbered 1, 2, … in order)")
        opens = _datetime(checker, item.get("opens_at"), f"{path}.opens_at")
        closes = _datetime(checker, item.get("closes_at"), f"{path}.closes_at")
        if opens and closes and closes <= opens:
            checker.fail(f"{path}.closes_at", "must be after opens_at")
        if opens and closes:
            result.append(RoundSpec(i + 1, opens, closes))
    return result
