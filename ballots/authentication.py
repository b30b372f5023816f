"""Station devices authenticate with `Authorization: Token <key>`; a token acts only for its station."""

from __future__ import annotations

from django.db import connection
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from ballots.models import Election, Station, StationToken
from ballots.services.setup import hash_key
from config.db import prepared_cursor


class StationDevice:
    """request.user for a station's device: its token's hash, and its station once looked up."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, key_hash: str, station: Station | None = None, token_id: int | None = None) -> None:
        self.key_hash, self._station, self.token_id = key_hash, station, token_id

    @property
    def station(self) -> Station:
        """The device's station, looked up now if it has not been in this request; a token that is no
        longer live is refused here (AuthenticationFailed: a 401)."""
        if self._station is None:
            found = _live_device(self.key_hash)
            self._station, self.token_id = found._station, found.token_id
        return self._station

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
    return StationDevice(key_hash, station=station, token_id=row[0])


def _live_device(key_hash: str) -> StationDevice:
    """The device of a live token; AuthenticationFailed (401) otherwise, and the hash is no longer
    taken for live."""
    found = device(key_hash)
    if found is None:
        _seen_live.discard(key_hash)
        raise exceptions.AuthenticationFailed(_REFUSED)
    return found


_REFUSED = "The token is not valid or has been revoked."
# Hashes of tokens this process has found live (a few per station); see StationTokenAuthentication.
_seen_live: set[str] = set()
_SEEN_LIVE_MAX = 100_000


class StationTokenAuthentication(authentication.BaseAuthentication):
    """The device's token, looked up before the view: a revoked token gets 401 on its very next request.

    Except for the views whose write checks the token itself (`token_checked_by_write`: a check-in
    and a ballot): a token this process has already found live is not looked up again before them.
    Their one statement admits it only while it is still live (`check_in_by_token`,
    `record_ballot_by_token`), and for anything else, that statement refused included, the view looks
    the token up (`StationDevice.station`) before answering: a revoked token still gets its 401, on
    its very next request, before any other answer. This saves each vote a round trip to the database
    (docs/benchmarks.md).
    """

    keyword = "Token"

    def authenticate(self, request):
        key_hash = self.key_hash(request)
        if key_hash is None:
            return None
        view = request.parser_context.get("view") if request.parser_context else None
        if key_hash in _seen_live and getattr(view, "token_checked_by_write", False):
            return StationDevice(key_hash), None
        found = _live_device(key_hash)
        if len(_seen_live) >= _SEEN_LIVE_MAX:
            _seen_live.clear()
        _seen_live.add(key_hash)
        return found, found.token_id

    def key_hash(self, request) -> str | None:
        """The hash of the request's token (only hashes are stored), or None without a token header."""
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("The Authorization header must be: Token <key>.")
        try:
            return hash_key(header[1].decode("ascii"))
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The token is not valid.") from None

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
