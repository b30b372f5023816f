"""The station API (DESIGN.md, "Station API"): one view per operation, each a thin door onto a service."""

from __future__ import annotations

import functools

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ballots import errors
from ballots.authentication import IsStationDevice, StationTokenAuthentication
from ballots.services import station as services
from config.errors import envelope

ERROR_ENVELOPE = inline_serializer(
    "Error",
    {"code": serializers.CharField(), "message": serializers.CharField(), "extra": serializers.DictField()},
)
AUTH_ERRORS = {
    401: OpenApiResponse(ERROR_ENVELOPE, description="`not_authenticated`: no token, a wrong one, or a revoked one"),
}


def documented(*codes: type[errors.DomainError], invalid: bool = False) -> dict:
    """OpenAPI responses naming each error code an operation can answer."""
    by_status: dict[int, list[type[errors.DomainError]]] = {}
    for error in codes:
        by_status.setdefault(error.http_status, []).append(error)
    responses = dict(AUTH_ERRORS)
    if invalid:
        by_status.setdefault(400, [])
    for http_status, group in by_status.items():
        names = [f"`{e.code}`: {e.default_message}" for e in group]
        if http_status == 400 and invalid:
            names.append("`invalid`: field errors in `extra.fields`")
        examples = [
            OpenApiExample(
                e.code, value=envelope(e.code, e.default_message), response_only=True, status_codes=[str(http_status)]
            )
            for e in group
        ]
        responses[http_status] = OpenApiResponse(ERROR_ENVELOPE, description="; ".join(names), examples=examples)
    return responses


class StationView(APIView):
    authentication_classes = [StationTokenAuthentication]
    permission_classes = [IsStationDevice]

    @property
    def station(self):
        return self.request.user.station


class StationInfoView(StationView):
    class OutputSerializer(serializers.Serializer):
        election = serializers.CharField()
        station = serializers.CharField()
        name = serializers.CharField()
        mode = serializers.ChoiceField(choices=["electronic", "paper"])
        round = inline_serializer(
            "StationRoundInfo",
            {"number": serializers.IntegerField(), "status": serializers.CharField()},
            allow_null=True,
        )

    @extend_schema(
        responses={200: OutputSerializer, **AUTH_ERRORS}, summary="This device's station and the current round"
    )
    def get(self, request: Request) -> Response:
        station = self.station
        round_ = services.current_round(station)
        return Response(
            {
                "election": station.election.slug,
                "station": station.code,
                "name": station.name,
                "mode": station.mode,
                "round": None if round_ is None else {"number": round_.number, "status": round_.status},
            }
        )


class VoterView(StationView):
    class OutputSerializer(serializers.Serializer):
        member_no = serializers.CharField()
        in_electorate = serializers.BooleanField()
        station = serializers.CharField(allow_null=True)
        voted = serializers.BooleanField()

    @extend_schema(responses={200: OutputSerializer, **AUTH_ERRORS}, summary="Look a member up")
    def get(self, request: Request, member_no: str) -> Response:
        return Response(services.lookup_voter(station=self.station, member_no=member_no))


class CheckInView(StationView):
    token_checked_by_write = True  # see StationTokenAuthentication
    class InputSerializer(serializers.Serializer):
        member_no = serializers.CharField(max_length=32)

    class OutputSerializer(serializers.Serializer):
        member_no = serializers.CharField()
        round = serializers.IntegerField()

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            **documented(
                errors.RoundNotOpen,
                errors.StationClosed,
                errors.NotInElectorate,
                errors.WrongStation,
                errors.AlreadyVoted,
                invalid=True,
            ),
        },
        summary="Check a member in to vote in the open round",
    )
    def post(self, request: Request) -> Response:
        plain = _plain(request.data, self.InputSerializer)
        if plain is not None:
            number = services.check_in_by_token(key_hash=request.user.key_hash, member_no=plain["member_no"])
            if number is not None:
                return Response({"member_no": plain["member_no"], "round": number}, status=status.HTTP_201_CREATED)
        station = self.station  # looks the token up: a revoked one gets its 401 before any other answer
        data = plain or _valid(self.InputSerializer, request)
        _, round_ = services.check_in_voter(station=station, member_no=data["member_no"], at_once=plain is None)
        return Response({"member_no": data["member_no"], "round": round_.number}, status=status.HTTP_201_CREATED)


class BallotInput(serializers.Serializer):
    id = serializers.CharField(max_length=64)
    choice = serializers.CharField(max_length=64)


class BallotView(StationView):
    token_checked_by_write = True
    class OutputSerializer(serializers.Serializer):
        id = serializers.CharField()
        recorded = serializers.BooleanField(help_text="true the first time; false for an identical replay")

    @extend_schema(
        request=BallotInput,
        responses={
            201: OutputSerializer,
            200: OpenApiResponse(OutputSerializer, description="An identical replay: counted once"),
            **documented(
                errors.RoundNotOpen,
                errors.StationClosed,
                errors.WrongMode,
                errors.UnknownChoice,
                errors.IdempotencyConflict,
                errors.NoVoterForBallot,
                invalid=True,
            ),
        },
        summary="Record one secret ballot (idempotent by its UUIDv4)",
    )
    def post(self, request: Request) -> Response:
        plain = _plain(request.data, BallotInput)
        if plain is not None and services.record_ballot_by_token(
            key_hash=request.user.key_hash, ballot_id=plain["id"], choice=plain["choice"]
        ):
            return Response({"id": plain["id"], "recorded": True}, status=status.HTTP_201_CREATED)
        station = self.station  # looks the token up: a revoked one gets its 401 before any other answer
        data = plain or _valid(BallotInput, request)
        created = services.record_ballot(
            station=station, ballot_id=data["id"], choice=data["choice"], at_once=plain is None
        )
        return Response(
            {"id": data["id"], "recorded": created}, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class BallotBatchView(StationView):
    class InputSerializer(serializers.Serializer):
        ballots = BallotInput(many=True, allow_empty=False)

    class OutputSerializer(serializers.Serializer):
        accepted = serializers.IntegerField()
        duplicates = serializers.IntegerField()

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            **documented(
                errors.BatchTooLarge,
                errors.RoundNotOpen,
                errors.StationClosed,
                errors.WrongMode,
                errors.UnknownChoice,
                errors.IdempotencyConflict,
                errors.NoVoterForBallot,
                invalid=True,
            ),
        },
        summary=f"Record up to {services.MAX_BATCH} ballots, all or nothing",
    )
    def post(self, request: Request) -> Response:
        raw = request.data.get("ballots") if isinstance(request.data, dict) else None
        # Refuse an oversized batch before validating a thousand items of it.
        if isinstance(raw, list) and len(raw) > services.MAX_BATCH:
            raise errors.BatchTooLarge(size=len(raw))
        # A well-formed batch skips the serializer: a thousand nested serializers cost more than
        # recording the ballots. Anything else goes through it, for the contract's field errors.
        ballots = raw if _plain_ballots(raw) else _valid(self.InputSerializer, request)["ballots"]
        accepted, duplicates = services.record_ballots(station=self.station, ballots=ballots)
        return Response({"accepted": accepted, "duplicates": duplicates})


class ReturnView(StationView):
    class InputSerializer(serializers.Serializer):
        entry = serializers.ChoiceField(choices=[1, 2])
        counts = serializers.DictField(child=serializers.JSONField())
        blank = serializers.JSONField()
        invalid = serializers.JSONField()
        total = serializers.JSONField()

    class OutputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=["awaiting_second_entry", "accepted", "entries_differ"])
        warnings = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            **documented(
                errors.ReturnInvalid,
                errors.ReturnAlreadyEntered,
                errors.WrongMode,
                errors.StationOpen,
                errors.RoundNotOpen,
                invalid=True,
            ),
        },
        summary="One entry of a paper station's return (double entry)",
        description=(
            "Blocking results (`return_invalid`, in `extra.errors`): F101 a number is not a whole number 0 or more; "
            "F102 a count for someone not on the ballot; F103 a candidate's count missing; F201 candidate votes + "
            "blank + invalid differ from the total; F202 the total is above the station's check-ins. Warnings: W201 "
            "total below check-ins; W202 turnout above 95%; W203 one candidate above 90% of the station."
        ),
    )
    def post(self, request: Request) -> Response:
        data = _valid(self.InputSerializer, request)
        status_, warnings = services.enter_return(
            station=self.station, entry=data["entry"], counts=data["counts"], blank=data["blank"],
            invalid=data["invalid"], total=data["total"], actor=self.station.code,
        )  # fmt: skip
        return Response({"status": status_, "warnings": warnings}, status=status.HTTP_201_CREATED)


class CloseView(StationView):
    class OutputSerializer(serializers.Serializer):
        checkins = serializers.IntegerField()
        ballots = serializers.IntegerField()
        seal = serializers.DictField(allow_null=True)

    @extend_schema(
        request=None, responses={200: OutputSerializer, **documented(errors.RoundNotOpen)}, summary="Close the station"
    )
    def post(self, request: Request) -> Response:
        return Response(services.close_station(station=self.station, actor=self.station.code))


def _plain_ballots(raw) -> bool:
    """A non-empty list of ballots that `BallotInput` would each return unchanged."""
    return isinstance(raw, list) and bool(raw) and all(_plain(item, BallotInput) is not None for item in raw)


def _plain(data, serializer_class) -> dict | None:
    """The validated data, when the serializer has only strings and the body holds each as its
    CharField would return it unchanged (ASCII, non-empty, trimmed, within length, no NUL); else None,
    and the serializer itself names what is wrong. The station API's bodies are member numbers, UUIDs
    and candidate codes: running a serializer cost more than the rest of the request's Python."""
    fields = _string_fields(serializer_class)
    if fields is None or type(data) is not dict:
        return None
    plain = {}
    for name, max_length in fields:
        value = data.get(name)
        if type(value) is not str or not 0 < len(value) <= max_length or not value.isascii():
            return None
        if value != value.strip() or "\x00" in value:
            return None
        plain[name] = value
    return plain


@functools.cache
def _string_fields(serializer_class) -> tuple[tuple[str, int], ...] | None:
    """(name, max length) of each field, if every one is a required, trimmed, non-blank CharField."""
    fields = serializer_class._declared_fields
    if not all(
        type(f) is serializers.CharField and f.required and f.trim_whitespace and not f.allow_blank
        and not f.allow_null and f.max_length
        for f in fields.values()
    ):  # fmt: skip
        return None
    return tuple((name, field.max_length) for name, field in fields.items())


def _valid(serializer_class, request: Request) -> dict:
    plain = _plain(request.data, serializer_class)
    if plain is not None:
        return plain
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
