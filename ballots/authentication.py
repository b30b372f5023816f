"""Station devices authenticate with `Authorization: Token <key>`; a token acts only for its station."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import connection
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from ballots.models import Election, Station, StationToken
from ballots.services.setup import hash_key
from config.db import prepared_cursor


@dataclass(frozen=True)
class StationDevice:
    """request.user for a station's device."""

    station: Station
    token_id: int
    is_authenticated: bool = True
    is_anonymous: bool = False

    def get_username(self) -> str:
        return self.station.code


# Every station request starts here, so it is one prepared statement and no queryset: the token, its
# station and the election's identity in one row. The election's other fields load when first read.
_STATION_FIELDS = [f.attname for f in Station._meta.concrete_fields]
_ELECTION_FIELDS = ["id", "slug", "name", "status"]
_DEVICE = (
    "SELECT t.id, "
    + ", ".join(f"s.{f}" for f in _STATION_FIELDS)
    + ", "
    + ", ".join(f"e.{f}" for f in _ELECTION_FIELDS)
    + f" FROM {StationToken._meta.db_table} t"
    f" JOIN {Station._meta.db_table} s ON s.id = t.station_id"
    f" JOIN {Election._meta.db_table} e ON e.id = s.election_id"
    " WHERE t.key_hash = %s AND t.revoked_at IS NULL"
)


def device(key_hash: str) -> StationDevice | None:
    """The device whose live token has this hash, with its station and election; None if none."""
    with prepared_cursor() as cursor:
        cursor.execute(_DEVICE, [key_hash])
        row = cursor.fetchone()
    if row is None:
        return None
    n = len(_STATION_FIELDS)
    values = list(row[1 : 1 + n])
    branches = _STATION_FIELDS.index("branches")
    values[branches] = Station._meta.get_field("branches").from_db_value(values[branches], None, connection)
    station = Station.from_db(connection.alias, _STATION_FIELDS, values)
    station.election = Election.from_db(connection.alias, _ELECTION_FIELDS, row[1 + n :])
    return StationDevice(station=station, token_id=row[0])


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
        found = device(hash_key(key))
        if found is None:
            raise exceptions.AuthenticationFailed("The token is not valid or has been revoked.")
        return found, found.token_id

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
