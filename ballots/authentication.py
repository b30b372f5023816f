"""Station devices authenticate with `Authorization: Token <key>`; a token acts only for its station."""

from __future__ import annotations

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from ballots.models import Station, StationToken
from ballots.services.setup import hash_key


@dataclass(frozen=True)
class StationDevice:
    """request.user for a station's device."""

    station: Station
    token_id: int
    is_authenticated: bool = True
    is_anonymous: bool = False

    def get_username(self) -> str:
        return self.station.code


class StationTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be: Token <key>.")
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token is not valid.") from None
        # Only the hash is stored; a revoked token is refused on its very next request.
        token = (
            StationToken.objects.select_related("station__election")
            .filter(key_hash=hash_key(key), revoked_at__isnull=True)
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed("The token is not valid or has been revoked.")
        return StationDevice(station=token.station, token_id=token.id), token

    def authenticate_header(self, request) -> str:
        return self.keyword


class IsStationDevice(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, StationDevice)


class StationTokenScheme(OpenApiAuthenticationExtension):
    """Documents the device token in the OpenAPI schema."""

    target_class = StationTokenAuthentication
    name = "stationToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <key>`: the station device's token, from `manage.py issue_station_token`.",
        }
