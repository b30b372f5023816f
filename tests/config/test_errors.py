"""The error envelope: every API error is {"code", "message", "extra"} with its stable HTTP status."""

from rest_framework import exceptions as drf

from config.errors import Conflict, DomainError, exception_handler


class AlreadyVoted(DomainError):
    code = "already_voted"
    http_status = 409
    default_message = "This member has already voted in this round."


def handle(exc):
    response = exception_handler(exc, {})
    return response.status_code, response.data


def test_a_domain_error_keeps_its_code_status_and_extra():
    assert handle(AlreadyVoted(station="tlv-01")) == (
        409,
        {
            "code": "already_voted",
            "message": "This member has already voted in this round.",
            "extra": {"station": "tlv-01"},
        },
    )
    assert handle(Conflict("Taken."))[1]["code"] == "conflict"


def test_field_errors_go_under_extra_fields():
    status, body = handle(drf.ValidationError({"member_no": ["This field is required."]}))
    assert status == 400 and body["code"] == "invalid"
    assert body["extra"] == {"fields": {"member_no": ["This field is required."]}}


def test_drf_errors_get_the_contract_codes():
    assert handle(drf.NotAuthenticated())[0:1] == (401,)
    assert handle(drf.NotAuthenticated())[1]["code"] == "not_authenticated"
    assert handle(drf.AuthenticationFailed())[1]["code"] == "not_authenticated"
    assert handle(drf.PermissionDenied()) == (
        403, {"code": "permission_denied", "message": "You do not have permission to perform this action.", "extra": {}}
    )  # fmt: skip
    assert handle(drf.NotFound())[1]["code"] == "not_found"


def test_an_unknown_error_is_left_to_become_a_logged_500():
    assert exception_handler(ValueError("boom"), {}) is None
