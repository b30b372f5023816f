"""Serving published versions: the page, JSON and CSV of a round's latest version, fast.

On election night every reader reloads the same few URLs. A request costs one small indexed query
(which version is the latest: id, SHA-256, time — never the body); the bodies come from a cache in
the process, keyed by the version's id. A version never changes once written (append-only), so a
cached body is never stale, and a new version is served the moment it commits. Bodies are gzipped
once per process for readers who accept it.

`PublishedResultsMiddleware` answers these URLs right after whitenoise, as whitenoise answers static
files, without the session, CSRF, authentication and message layers a public, cookie-less page does
not use; the views in ballots/pages.py and ballots/public_api.py serve the same responses (and the
404s) when it is not installed.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from functools import lru_cache

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import get_conditional_response, patch_vary_headers
from django.utils.http import http_date

from ballots.models import Election, Publication, Round

# Readers revalidate on every load (a cheap 304); a shared cache never serves a superseded version.
CACHE_CONTROL = "public, no-cache"
# field -> (content type, ETag suffix: each representation of a version has its own tag)
FIELDS = {
    "page": ("text/html; charset=utf-8", ".html"),
    "document": ("application/json", ""),
    "csv": ("text/csv; charset=utf-8", ".csv"),
}
# How long a reader may keep seeing a version after a newer one, should the newer one's write to the
# cache be lost (it is written at every publication, so normally not a moment).
LATEST_SECONDS = 5
SHARED_CACHE = settings.CACHES["default"]["BACKEND"].endswith(".RedisCache")
# Bodies of this many versions per process: a few elections' latest and previous versions.
CACHED_VERSIONS = 48


@dataclass(frozen=True)
class Latest:
    id: int
    version: int
    sha256: str
    published_at: datetime


def latest_version(slug: str, number: int) -> Latest | None:
    """The round's latest published version, without its bodies.

    With Redis as the cache (production) it is read from there: each publication writes it right
    after its commit, so a reload needs no database round trip (two, with the connection's health
    check). A miss reads the database and leaves the answer for `LATEST_SECONDS`, with `add`, so it
    never overwrites a publication's newer one; the expiry bounds how stale a reader could be if a
    publication's write to the cache were lost. The in-process cache of the embedded default is not
    shared with the worker that publishes, so there every request asks the database.
    """
    key = _latest_key(slug, number)
    if SHARED_CACHE:
        hit = cache.get(key)
        if hit is not None:
            return Latest(*hit)
    latest = _latest_in_database(slug, number)
    if SHARED_CACHE and latest is not None:
        cache.add(key, astuple(latest), LATEST_SECONDS)
    return latest


def remember_latest(slug: str, number: int, latest: Latest) -> None:
    """A publication has committed: readers get it from now on (after the commit, never before)."""
    if SHARED_CACHE:
        cache.set(_latest_key(slug, number), astuple(latest), LATEST_SECONDS)


def _latest_key(slug: str, number: int) -> str:
    return f"kalpi:results:latest:{slug}:{number}"


def _latest_in_database(slug: str, number: int) -> Latest | None:
    """One indexed query, in SQL: the ORM's compiling of it cost more than running it (0.80 ms
    against 0.33 ms a call, measured)."""
    with connection.cursor() as cursor:
        cursor.execute(_LATEST_SQL, [slug, number])
        row = cursor.fetchone()
    if row is None:
        return None
    published_at = row[3]
    if isinstance(published_at, str):  # SQLite hands back its text, UTC
        published_at = datetime.fromisoformat(published_at).replace(tzinfo=UTC)
    return Latest(row[0], row[1], row[2], published_at)


def _latest_sql() -> str:
    quote = connection.ops.quote_name
    publication, round_, election = (quote(m._meta.db_table) for m in (Publication, Round, Election))
    return (
        f"SELECT p.id, p.version, p.sha256, p.published_at FROM {publication} p "
        f"JOIN {round_} r ON r.id = p.round_id JOIN {election} e ON e.id = r.election_id "
        "WHERE e.slug = %s AND r.number = %s ORDER BY p.version DESC LIMIT 1"
    )


_LATEST_SQL = _latest_sql()


# Keyed by id and SHA-256 together: even a database restored from a backup, whose ids start again,
# cannot make the cache answer with another version's bytes.
@lru_cache(maxsize=CACHED_VERSIONS * len(FIELDS))
def _body(publication_id: int, sha256: str, field: str) -> bytes:
    return Publication.objects.filter(pk=publication_id).values_list(field, flat=True).get().encode("utf-8")


@lru_cache(maxsize=CACHED_VERSIONS * len(FIELDS))
def _gzipped(publication_id: int, sha256: str, field: str) -> bytes:
    return gzip.compress(_body(publication_id, sha256, field), compresslevel=6, mtime=0)


def serve_latest(request: HttpRequest, slug: str, number: int, field: str) -> HttpResponse | None:
    """The latest version's body, or 304 when the reader has it; None when nothing is published."""
    latest = latest_version(slug, number)
    if latest is None:
        return None
    content_type, suffix = FIELDS[field]
    gzipped = "gzip" in request.headers.get("Accept-Encoding", "")
    etag = f'"{latest.sha256}{suffix}{".gz" if gzipped else ""}"'
    last_modified = int(latest.published_at.timestamp())
    response = get_conditional_response(request, etag=etag, last_modified=last_modified)
    if response is None:
        body = (_gzipped if gzipped else _body)(latest.id, latest.sha256, field)
        response = HttpResponse(body, content_type=content_type)
        if gzipped:
            response["Content-Encoding"] = "gzip"
        if field == "csv":
            name = f"{slug}-round-{number}-v{latest.version}.csv"
            response["Content-Disposition"] = f'inline; filename="{name}"'
    response["ETag"] = etag
    response["Last-Modified"] = http_date(last_modified)
    response["Cache-Control"] = CACHE_CONTROL
    response["X-Frame-Options"] = "DENY"
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


_SLUG = r"[-a-zA-Z0-9_]+"
_ROUTES = re.compile(
    rf"/results/(?P<slug>{_SLUG})/rounds/(?P<number>[0-9]+)/(?P<file>results\.json|results\.csv)?"
    rf"|/api/v1/elections/(?P<api_slug>{_SLUG})/rounds/(?P<api_number>[0-9]+)/results/"
)
_FILES = {None: "page", "results.json": "document", "results.csv": "csv"}


class PublishedResultsMiddleware:
    """Answer the round pages, JSON and CSV from the stored versions before the rest of the stack."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method in ("GET", "HEAD"):
            match = _ROUTES.fullmatch(request.path_info)
            if match is not None:
                if match["api_slug"] is not None:
                    response = serve_latest(request, match["api_slug"], int(match["api_number"]), "document")
                else:
                    response = serve_latest(request, match["slug"], int(match["number"]), _FILES[match["file"]])
                if response is not None:
                    return response
        return self.get_response(request)  # not published yet: the views answer the 404s
