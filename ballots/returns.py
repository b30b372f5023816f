"""Validation of a paper station's return: numbered results, F… block the entry, W… warn.

Pure logic over plain numbers (in the manner of Kiesraad's Abacus): every comparison is on integers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    field: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "field": self.field}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_return(
    *,
    counts: dict[str, Any],
    blank: Any,
    invalid: Any,
    total: Any,
    candidates: list[str],
    checkins: int,
    electorate: int,
) -> tuple[list[Finding], list[Finding]]:
    """Check one entry of a station's return. Returns (errors, warnings).

    F101 a number is not a whole number or is negative; F102 a count for someone not on the ballot;
    F103 a candidate of the round is missing; F201 candidates + blank + invalid differ from the total;
    F202 the total is above the station's check-ins. W201 the total is below the check-ins; W202
    turnout above 95% of the station's electorate; W203 one candidate above 90% of the station's votes.
    """
    errors: list[Finding] = []
    warnings: list[Finding] = []
    numbers = {"blank": blank, "invalid": invalid, "total": total, **{f"counts.{c}": n for c, n in counts.items()}}
    for field, value in numbers.items():
        if not _is_count(value) or value < 0:
            errors.append(Finding("F101", f"{field} must be a whole number, 0 or more; got {value!r}", field))
    for code in counts:
        if code not in candidates:
            errors.append(Finding("F102", f"{code!r} is not a candidate of this round", f"counts.{code}"))
    for code in candidates:
        if code not in counts:
            errors.append(Finding("F103", f"the count for {code!r} is missing", f"counts.{code}"))
    if errors:
        return errors, warnings

    votes = sum(counts.values())
    if votes + blank + invalid != total:
        errors.append(
            Finding(
                "F201", f"candidate votes {votes} + blank {blank} + invalid {invalid} is not the total {total}", "total"
            )
        )
    if total > checkins:
        errors.append(Finding("F202", f"the total {total} is above the station's {checkins} check-ins", "total"))
    if errors:
        return errors, warnings

    if total < checkins:
        warnings.append(Finding("W201", f"the total {total} is below the station's {checkins} check-ins", "total"))
    if electorate and total * 100 > electorate * 95:
        warnings.append(Finding("W202", f"turnout above 95%: {total} of {electorate} electors", "total"))
    for code, n in counts.items():
        if total and n * 100 > total * 90:
            warnings.append(
                Finding("W203", f"{code!r} has above 90% of the station's votes ({n} of {total})", f"counts.{code}")
            )
    return errors, warnings
