"""Recount every published result from the audit log alone (stdlib, `cryptography` and the counting rules).

A LogCheck for the verifier (audit/verify.py). Fed every entry of the log in order, it rebuilds each
published round's tally document from what the log recorded — the election's definition, the
electorate frozen and changed, the stations' seals (their counts per choice), the round's close and
its tie-break seed — with the very rules the service counts by (ballots/counting.py, pure), and
checks, for every results document the service published:

- its `sha256` is that of its canonical bytes without `sha256` and `signature`, and the signature is
  the log's key's;
- the log records its publication (`results.published`: same election, round, version, status and
  SHA-256), and an official one only after the round's certification of that very tally;
- the tally it publishes is in the log (`round.tallied`, same SHA-256), and recounting the log gives
  the same document, byte for byte; its `audit` field is a checkpoint of this log.

One number cannot come from the log: the check-ins of a station still open when the tally ran (a
check-in's entry says who came, but a provisional tally reads the live counter). Those are taken from
the document and counted in `Recount.unverifiable`; every other number is recomputed.

Nothing here imports Django: an observer runs it on an export (`python -m audit.verify DIR`).
"""

from __future__ import annotations

import base64
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from audit.canonical import canonical_bytes
from audit.note import Verifier
from audit.verify import Problem
from ballots import counting

PUBLICATION_FIELDS = ("status", "version", "published_at", "sha256", "signature")


def tally_sha256(document: dict[str, Any]) -> str:
    """The SHA-256 of the tally a results document publishes: the document without the publication's fields."""
    return hashlib.sha256(canonical_bytes(_tally_part(document))).hexdigest()


def _tally_part(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in PUBLICATION_FIELDS}


@dataclass
class _Round:
    candidates: list[str] = field(default_factory=list)
    stations: int = 0
    seals: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (index, payload)
    closes: dict[str, tuple[int, int]] = field(default_factory=dict)  # station -> (index, checkins)
    closed: tuple[int, str] | None = None  # (index, tie-break seed) of round.closed
    tallies: dict[int, tuple[int, dict[str, Any]]] = field(default_factory=dict)  # number -> (index, payload)
    certified: set[str] = field(default_factory=set)  # tally SHA-256s certified


@dataclass
class _Election:
    definition: dict[str, Any] | None = None
    electorate: list[tuple[int, int]] = field(default_factory=list)  # (index, +size / ±1)
    rounds: dict[int, _Round] = field(default_factory=lambda: defaultdict(_Round))


class Recount:
    """LogCheck: each published results document follows from the log (see the module docstring)."""

    def __init__(self, documents: Iterable[dict[str, Any]], verifier: Verifier, checkpoints: Mapping[int, bytes]):
        self.verifier = verifier
        self.checkpoints = dict(checkpoints)  # tree size -> root, of the log's signed checkpoints
        self.documents: dict[str, dict[str, Any]] = {}
        self.by_tally: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for document in documents:
            self._check_signed(document)
            self.documents[document["sha256"]] = document
            self.by_tally[tally_sha256(document)].append(document)
        self.elections: dict[str, _Election] = defaultdict(_Election)
        self.recounted: set[str] = set()  # tally SHA-256s recounted
        self.published: set[str] = set()  # document SHA-256s the log records
        self.unverifiable = 0

    # The LogCheck protocol.

    def entry(self, index: int, entry: dict[str, Any]) -> None:
        handler = getattr(self, "_" + str(entry.get("action", "")).replace(".", "_"), None)
        if handler is not None:
            payload = entry.get("payload")
            if type(payload) is not dict:
                raise Problem(f"entry {index}: {entry.get('action')} without a payload object", index=index)
            try:
                handler(index, payload)
            except (KeyError, TypeError, ValueError) as error:
                raise Problem(
                    f"entry {index}: {entry.get('action')} payload is malformed ({error!r})", index=index
                ) from error

    def finish(self) -> None:
        for sha, document in self.documents.items():
            if sha not in self.published:
                raise Problem(
                    f"results document {_name(document)} (sha256 {sha}) is not recorded in the log as published"
                )

    def summary(self) -> str:
        if not self.documents:
            return ""
        line = f"{len(self.documents)} published results documents recounted from the log"
        if self.unverifiable:
            line += f" ({self.unverifiable} check-in counts of stations open at the time taken as published)"
        return line

    # Entries.

    def _election_loaded(self, index: int, payload: dict[str, Any]) -> None:
        self.elections[payload["election"]].definition = payload["definition"]

    def _electorate_frozen(self, index: int, payload: dict[str, Any]) -> None:
        self.elections[payload["election"]].electorate.append((index, int(payload["size"])))

    def _electorate_changed(self, index: int, payload: dict[str, Any]) -> None:
        delta = {"added": 1, "removed": -1}[payload["change"]]
        self.elections[payload["election"]].electorate.append((index, delta))

    def _round_opened(self, index: int, payload: dict[str, Any]) -> None:
        round_ = self._round(payload)
        round_.candidates = list(payload["candidates"])
        round_.stations = int(payload["stations"])

    def _station_closed(self, index: int, payload: dict[str, Any]) -> None:
        self._round(payload).closes[payload["station"]] = (index, int(payload["checkins"]))

    def _station_sealed(self, index: int, payload: dict[str, Any]) -> None:
        self._round(payload).seals.append((index, payload))

    def _round_closed(self, index: int, payload: dict[str, Any]) -> None:
        self._round(payload).closed = (index, payload["tie_break_seed"])

    def _round_certified(self, index: int, payload: dict[str, Any]) -> None:
        self._round(payload).certified.add(payload["sha256"])

    def _round_tallied(self, index: int, payload: dict[str, Any]) -> None:
        round_ = self._round(payload)
        round_.tallies[int(payload["tally"])] = (index, payload)
        documents = self.by_tally.get(payload["sha256"])
        if documents and payload["sha256"] not in self.recounted:
            self._recount(index, payload, documents[0])
            self.recounted.add(payload["sha256"])

    def _results_published(self, index: int, payload: dict[str, Any]) -> None:
        where = f"entry {index} (results.published, {payload['election']} round {payload['round']})"
        document = self.documents.get(payload["sha256"])
        if document is None:
            raise Problem(
                f"{where}: the published document (version {payload['version']}, sha256 {payload['sha256']}) "
                "is not in the export",
                index=index,
            )
        for key in ("election", "round", "version", "status"):
            if document[key] != payload[key]:
                raise Problem(
                    f"{where}: the document's {key} is {document[key]!r}, the log's {payload[key]!r}", index=index
                )
        sha = tally_sha256(document)
        round_ = self._round(payload)
        tally = round_.tallies.get(int(payload["tally"]))
        if tally is None or tally[1]["sha256"] != sha:
            raise Problem(f"{where}: the tally it publishes is not tally {payload['tally']} of the log", index=index)
        if sha not in self.recounted:
            raise Problem(f"{where}: its tally was not recounted", index=index)
        if document["status"] == "official" and sha not in round_.certified:
            raise Problem(f"{where}: official results of a tally the committee had not certified", index=index)
        self.published.add(payload["sha256"])

    # The recount.

    def _recount(self, index: int, tallied: dict[str, Any], document: dict[str, Any]) -> None:
        """Rebuild the tally's document from the log as it stood, and compare it byte for byte."""
        slug, number = tallied["election"], int(tallied["round"])
        where = f"entry {index} (round.tallied, {slug} round {number} tally {tallied['tally']})"
        audit = document.get("audit") or {}
        size = audit.get("tree_size")
        if size not in self.checkpoints or self.checkpoints[size].hex() != audit.get("root"):
            raise Problem(f"{where}: the document's audit point {audit} is not a checkpoint of this log", index=index)
        election = self.elections[slug]
        round_ = self._round(tallied)
        if election.definition is None:
            raise Problem(f"{where}: no election.loaded for {slug} before it", index=index)
        rebuilt = self._rebuild(election, round_, number, size, index, bool(tallied["complete"]), document)
        rebuilt["audit"] = {"tree_size": size, "root": audit["root"]}
        if hashlib.sha256(canonical_bytes(rebuilt)).hexdigest() != tallied["sha256"]:
            difference = _first_difference(rebuilt, _tally_part(document), "$")
            raise Problem(f"{where}: recounting the log does not give the published results: {difference}", index=index)

    def _rebuild(
        self, election: _Election, round_: _Round, number: int, size: int, index: int, complete: bool,
        document: dict[str, Any],
    ) -> dict[str, Any]:  # fmt: skip
        definition = election.definition
        rule = definition["rule"]
        names = {c["code"]: c["name"] for c in definition["candidates"]}
        order = [c["code"] for c in definition["candidates"] if c["code"] in set(round_.candidates)]
        seals = {payload["station"]: payload for i, payload in round_.seals if i < size}
        published_rows = {row.get("station"): row for row in document.get("by_station", [])}
        by_station, reported = [], []
        for station in definition["stations"][: round_.stations or None]:
            code = station["code"]
            seal = seals.get(code)
            row: dict[str, Any] = {"station": code, "name": station["name"], "mode": station["mode"]}
            if seal is not None:
                counts = seal["counts"]
                votes = {c: counts.get(c, 0) for c in order}
                row.update(checked_in=int(seal["checkins"]), reported=True, votes=votes,
                           blank=counts.get("blank", 0), invalid=counts.get("invalid", 0), cast=seal["ballots"],
                           source=seal["source"], ballots_root=seal["ballots_root"])  # fmt: skip
                reported.append(counting.StationCount(code, votes, row["blank"], row["invalid"]))
            elif code in round_.closes and round_.closes[code][0] < index:
                row.update(checked_in=round_.closes[code][1], reported=False)
            else:  # open when the tally ran: its live counter is not in the log
                row.update(checked_in=published_rows.get(code, {}).get("checked_in"), reported=False)
                self.unverifiable += 1
            by_station.append(row)
        return counting.results_document(
            election=definition["slug"], number=number, rule=rule, names=names, candidates=order,
            by_station=by_station, reported=reported,
            electorate=sum(delta for i, delta in election.electorate if i < size), complete=complete,
            seed=round_.closed[1] if round_.closed and round_.closed[0] < index else None,
        )  # fmt: skip

    # Helpers.

    def _round(self, payload: dict[str, Any]) -> _Round:
        return self.elections[payload["election"]].rounds[int(payload["round"])]

    def _check_signed(self, document: dict[str, Any]) -> None:
        if type(document) is not dict or not isinstance(document.get("sha256"), str):
            raise Problem("a results document is not a JSON object with a sha256")
        problem = signature_problem(document, self.verifier)
        if problem is not None:
            raise Problem(f"results document {_name(document)}: {problem}")


def signature_problem(document: dict[str, Any], verifier: Verifier) -> str | None:
    """What is wrong with a results document's `sha256` or `signature` under `verifier`, or None."""
    body = canonical_bytes({k: v for k, v in document.items() if k not in ("sha256", "signature")})
    if hashlib.sha256(body).hexdigest() != document.get("sha256"):
        return "its sha256 is not that of its contents"
    try:
        signature = base64.b64decode(document.get("signature", ""), validate=True)
    except ValueError:
        signature = b""
    if not verifier.verify(body, signature):
        return "the signature is not the log's key's"
    return None


def _name(document: dict[str, Any]) -> str:
    return f"{document.get('election')} round {document.get('round')} version {document.get('version')}"


def _first_difference(rebuilt: Any, published: Any, path: str) -> str:
    """Where two JSON values first differ, as `$.candidates[0].votes: log gives 7, published 8`."""
    if type(rebuilt) is dict and type(published) is dict:
        for key in sorted(set(rebuilt) | set(published)):
            if key not in rebuilt or key not in published:
                return f"{path}.{key}: {'only in the published document' if key in published else 'missing from it'}"
            if rebuilt[key] != published[key]:
                return _first_difference(rebuilt[key], published[key], f"{path}.{key}")
    elif type(rebuilt) is list and type(published) is list:
        for i, (a, b) in enumerate(zip(rebuilt, published, strict=False)):
            if a != b:
                return _first_difference(a, b, f"{path}[{i}]")
        if len(rebuilt) != len(published):
            return f"{path}: the log gives {len(rebuilt)} items, the document {len(published)}"
    return f"{path}: the log gives {rebuilt!r}, the document {published!r}"
