"""The station API's refusals: one class per stable code of the contract (DESIGN.md, error envelope)."""

from __future__ import annotations

from config.errors import DomainError


class RoundNotOpen(DomainError):
    code, http_status = "round_not_open", 409
    default_message = "No round of this election is open."


class StationClosed(DomainError):
    code, http_status = "station_closed", 409
    default_message = "This station is closed for the round."


class StationOpen(DomainError):
    code, http_status = "station_open", 409
    default_message = "Close the station before entering its return."


class NotInElectorate(DomainError):
    code, http_status = "not_in_electorate", 403
    default_message = "This member is not in the electorate of this election."


class WrongStation(DomainError):
    code, http_status = "wrong_station", 403
    default_message = "This member votes at another station."


class AlreadyVoted(DomainError):
    code, http_status = "already_voted", 409
    default_message = "This member has already checked in to vote in this round."


class NoVoterForBallot(DomainError):
    code, http_status = "no_voter_for_ballot", 409
    default_message = "The station would hold more ballots than check-ins."


class IdempotencyConflict(DomainError):
    code, http_status = "idempotency_conflict", 409
    default_message = "A ballot with this id was already recorded with another choice or at another station."


class UnknownChoice(DomainError):
    code, http_status = "unknown_choice", 400
    default_message = "The choice is not a candidate of this round, blank or invalid."


class BatchTooLarge(DomainError):
    code, http_status = "batch_too_large", 400
    default_message = "A batch holds at most 1000 ballots."


class WrongMode(DomainError):
    code, http_status = "wrong_mode", 409
    default_message = "This operation is not for this station's mode."


class ReturnInvalid(DomainError):
    code, http_status = "return_invalid", 400
    default_message = "The return has blocking errors and was not recorded."


class ReturnAlreadyEntered(DomainError):
    code, http_status = "return_already_entered", 409
    default_message = "This entry of the station's return was already made."


class ElectionFrozen(DomainError):
    code, http_status = "election_frozen", 409
    default_message = "The electorate of this election is frozen; its definition can no longer change."


class RoundStateError(DomainError):
    code, http_status = "round_state", 409
    default_message = "The round is not in a state that allows this."


# Every code the station API can answer, for the OpenAPI documentation and the tests.
STATION_ERRORS: list[type[DomainError]] = [
    RoundNotOpen, StationClosed, StationOpen, NotInElectorate, WrongStation, AlreadyVoted, NoVoterForBallot,
    IdempotencyConflict, UnknownChoice, BatchTooLarge, WrongMode, ReturnInvalid, ReturnAlreadyEntered,
]  # fmt: skip
