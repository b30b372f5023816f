"""Publication: a round's tally becomes an immutable, signed version of its results.

A version is the results document (DESIGN.md "Public API and pages"), its CSV and its rendered page,
written in one transaction with its audit entry: a crash leaves no version or one whole version. The
same tally is published at most once per status, so running a publication again writes nothing new.
Provisional versions follow the count on the night; the official one exists only for a certified
round (invariant 7).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
from datetime import UTC, datetime
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from audit import keys
from audit import services as audit
from audit.canonical import canonical_bytes
from audit.models import Action, Checkpoint
from audit.recount import signature_problem
from ballots import versions
from ballots.errors import RoundStateError
from ballots.models import Publication, Round, Tally
from ballots.services import count
from config.errors import NotFound
from config.transactions import on_commit_once

# A burst of station closes within this window makes one publication, not one per station.
COALESCE_SECONDS = 1.0
_PENDING_KEY = "kalpi:publish:pending:{}"


def publish_provisional(*, round_id: int, actor: str = "kalpi") -> Publication | None:
    """Tally the round as it stands and publish the tally if it is new. None when the round is
    certified (its results are official from then on) or has not opened."""
    round_ = Round.objects.select_related("election").filter(pk=round_id).first()
    if round_ is None:
        raise NotFound(f"There is no round {round_id}.")
    if round_.certified_tally_id is not None or round_.status == Round.Status.SCHEDULED:
        return None
    try:
        tally = count.tally_round(election=round_.election, number=round_.number, actor=actor)
    except RoundStateError:
        return None  # certified or not open in the meantime: nothing provisional to say
    return _publish(round_id, tally.pk, Publication.Status.PROVISIONAL, actor)


def publish_official(*, round_id: int, actor: str = "kalpi") -> Publication:
    """Publish the certified tally of the round as its official results (once)."""
    round_ = Round.objects.filter(pk=round_id).first()
    if round_ is None:
        raise NotFound(f"There is no round {round_id}.")
    if round_.certified_tally_id is None:
        raise RoundStateError(
            f"Round {round_.number} is not certified: official results exist only after certification."
        )
    return _publish(round_id, round_.certified_tally_id, Publication.Status.OFFICIAL, actor)


@transaction.atomic
def _publish(round_id: int, tally_id: int, status: str, actor: str) -> Publication:
    # The round's row lock orders publications of one round: versions are dense, and two workers
    # publishing the same tally write it once.
    round_ = Round.objects.select_for_update(no_key=True).select_related("election").get(pk=round_id)
    existing = Publication.objects.filter(tally_id=tally_id, status=status).first()
    if existing is not None:
        return existing
    latest = round_.publications.order_by("-version").select_related("tally").first()
    tally = Tally.objects.get(pk=tally_id)
    if status == Publication.Status.PROVISIONAL:
        if round_.certified_tally_id is not None:
            raise RoundStateError(f"Round {round_.number} is certified: only its official results are published.")
        if latest is not None and latest.tally.number >= tally.number:
            return latest  # an older tally than the one already out: never step back
    version = latest.version + 1 if latest else 1
    published_at = timezone.now().replace(microsecond=0)
    document = results_document(tally, status=status, version=version, published_at=published_at)
    point = tally.document["audit"]  # the signed checkpoint the tally was computed from
    checkpoint = Checkpoint.objects.filter(tree_size=point["tree_size"], root=bytes.fromhex(point["root"])).earliest(
        "id"
    )
    publication = Publication(
        round=round_, version=version, status=status, tally=tally,
        document=canonical_bytes(document).decode("utf-8"), csv=results_csv(document),
        page=render_page(round_, document), sha256=document["sha256"], signature=document["signature"],
        checkpoint=checkpoint, published_at=published_at, published_by=actor,
    )  # fmt: skip
    audit.save_with_entry(
        publication,
        entry_field="entry",
        action=Action.RESULTS_PUBLISHED,
        actor=actor,
        payload={
            "election": round_.election.slug, "round": round_.number, "version": version, "status": status,
            "tally": tally.number, "sha256": document["sha256"],
        },
    )  # fmt: skip
    audit.request_checkpoint()
    latest = versions.Latest(publication.id, version, publication.sha256, published_at)
    slug, number = round_.election.slug, round_.number
    transaction.on_commit(lambda: versions.remember_latest(slug, number, latest), robust=True)
    return publication


def results_document(tally: Tally, *, status: str, version: int, published_at: datetime) -> dict[str, Any]:
    """The tally's document with the publication's fields, its SHA-256 and the service's signature.

    Both cover the canonical bytes of the document without `sha256` and `signature` (DESIGN.md).
    """
    body = {
        **tally.document,
        "status": status,
        "version": version,
        "published_at": published_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    signed = canonical_bytes(body)
    return {
        **body,
        "sha256": hashlib.sha256(signed).hexdigest(),
        "signature": base64.b64encode(keys.signer().sign(signed)).decode("ascii"),
    }


def verify_document(document: dict[str, Any]) -> bool:
    """Whether a results document's sha256 and signature hold under the service's key."""
    return signature_problem(document, keys.verifier()) is None


def results_csv(document: dict[str, Any]) -> str:
    """One row per station, then the round's total, a column per candidate in ballot-paper order of
    the document (most votes first). A station not yet reported has empty counts, never zeros."""
    codes = [c["code"] for c in document["candidates"]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["station", "name", "mode", "reported", "checked_in", "cast", "blank", "invalid", *codes])
    for row in document["by_station"]:
        if row["reported"]:
            counts = [row["cast"], row["blank"], row["invalid"], *(row["votes"][code] for code in codes)]
        else:
            counts = [""] * (3 + len(codes))
        reported = "true" if row["reported"] else "false"
        writer.writerow([row["station"], row["name"], row["mode"], reported, row["checked_in"], *counts])
    stations = document["stations"]
    writer.writerow([
        "total", f"{stations['reported']} of {stations['total']} stations reported", "", "", document["checked_in"],
        document["cast"], document["blank"], document["invalid"], *(c["votes"] for c in document["candidates"]),
    ])  # fmt: skip
    return out.getvalue()


def render_page(round_: Round, document: dict[str, Any]) -> str:
    """The round's public page for this version: self-contained HTML (styles inline), no script."""
    from ballots.pages import round_context  # the page's wording lives with the other pages

    return render_to_string("results/round.html", round_context(round_, document))


# Scheduling: used by the services after their commit, and by the periodic task.


def provisional_after_commit(round_id: int) -> None:
    """After this transaction commits, publish the round's provisional results, coalesced.

    With a broker, the first call in a window enqueues one delayed task and later ones within the window
    ride on it (a shared cache key marks it pending), so a hundred stations closing at 22:00 make a
    handful of publications. Eager (the embedded default), it runs at once after the commit.
    """

    def schedule() -> None:
        from ballots.tasks import publish_provisional as task

        if _eager():
            task.delay(round_id)
        elif cache.add(_PENDING_KEY.format(round_id), 1, timeout=int(COALESCE_SECONDS * 30)):
            task.apply_async((round_id,), countdown=COALESCE_SECONDS)

    on_commit_once(("ballots.publish", round_id), schedule)  # one per round, however many stations it seals


def _eager() -> bool:
    from config.celery import app

    return bool(app.conf.task_always_eager)


def official_after_commit(round_id: int) -> None:
    """After the certification commits, publish the official results at once."""

    def schedule() -> None:
        from ballots.tasks import publish_official as task

        task.delay(round_id)

    transaction.on_commit(schedule, robust=True)


def clear_pending(round_id: int) -> None:
    """The coalesced task has started: a commit from now on needs a run of its own."""
    cache.delete(_PENDING_KEY.format(round_id))


def rounds_to_publish() -> tuple[list[int], list[int]]:
    """(rounds being counted, certified rounds whose official version is missing), for the periodic task."""
    counting = list(
        Round.objects.filter(status__in=[Round.Status.OPEN, Round.Status.CLOSED], certified_tally__isnull=True)
        .values_list("id", flat=True)
    )  # fmt: skip
    unpublished = list(
        Round.objects.filter(certified_tally__isnull=False)
        .exclude(publications__status=Publication.Status.OFFICIAL)
        .values_list("id", flat=True)
    )  # fmt: skip
    return counting, unpublished
