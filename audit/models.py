"""The audit log: entries, their leaves in the Merkle tree, interior nodes, and signed checkpoints.

Entries, leaves, nodes and checkpoints are append-only (database triggers, see immutability.py).
`PendingEntry` is the one mutable table: the queue of committed entries the integrator has not yet
given a leaf (Trillian's "unsequenced" table). It is written with its entry and emptied as they are
integrated, so an entry is integrated once, whatever order the transactions committed in.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import models


class Action(models.TextChoices):
    """The fixed vocabulary of audited changes. DESIGN.md documents each payload."""

    ROSTER_IMPORTED = "roster.imported"
    MEMBER_ADDED = "member.added"
    MEMBER_CHANGED = "member.changed"
    ELECTION_LOADED = "election.loaded"
    ELECTORATE_FROZEN = "electorate.frozen"
    ELECTORATE_CHANGED = "electorate.changed"
    STATION_TOKEN_ISSUED = "station.token_issued"
    STATION_TOKEN_REVOKED = "station.token_revoked"
    OFFICIAL_ADDED = "official.added"
    ROUND_OPENED = "round.opened"
    VOTER_CHECKED_IN = "voter.checked_in"
    BALLOT_RECORDED = "ballot.recorded"
    STATION_CLOSED = "station.closed"
    STATION_SEALED = "station.sealed"
    RETURN_ENTERED = "return.entered"
    RETURN_RESOLVED = "return.resolved"
    ROUND_CLOSED = "round.closed"
    ROUND_TALLIED = "round.tallied"
    ROUND_APPROVED = "round.approved"
    ROUND_CERTIFIED = "round.certified"
    ROUND_SCHEDULED = "round.scheduled"
    RESULTS_PUBLISHED = "results.published"


class Entry(models.Model):
    id = models.BigAutoField(primary_key=True)
    action = models.CharField(max_length=40, choices=Action.choices)
    # An official's username, a station code, or "system"; never a member.
    actor = models.CharField(max_length=150)
    payload = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "entries"
        ordering = ["id"]
        permissions = [("verify_log", "Can verify the audit log")]
        indexes = [models.Index(fields=["action", "id"], name="entry_action_idx")]

    def __str__(self) -> str:
        return f"#{self.id} {self.action} by {self.actor}"

    def document(self) -> dict:
        """The entry as the log publishes it; its canonical bytes are the leaf's input."""
        return entry_document(self.id, self.action, self.actor, self.payload, self.created_at)


def entry_document(id: int, action: str, actor: str, payload: dict, created_at: datetime) -> dict:
    """The published form of an entry, built from its columns (the verifier streams columns)."""
    return {
        "id": id,
        "action": action,
        "actor": actor,
        "payload": payload,
        "created_at": created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }


class PendingEntry(models.Model):
    """A committed entry waiting for its leaf. Deleted by the integrator when the leaf is written."""

    # No foreign key in the database: a pending row is only ever written by the same statement as its
    # entry (`services.record`), and entries are never deleted. The key's check ran on every audited
    # write, at commit, and locked the entry row; worse, a long-lived connection keeps the check's plan
    # from when the log was small, a sequential scan of audit_entry per check: measured, one batch of
    # ballots spent 87% of the server's CPU there. The integrator skips an id with no entry.
    entry = models.OneToOneField(
        Entry, primary_key=True, on_delete=models.PROTECT, related_name="+", db_constraint=False
    )

    def __str__(self) -> str:
        return f"pending entry #{self.entry_id}"


class Leaf(models.Model):
    """Leaf `index` of the tree: SHA-256(0x00 ‖ canonical bytes of the entry)."""

    index = models.BigIntegerField(primary_key=True)
    entry = models.OneToOneField(Entry, on_delete=models.PROTECT, related_name="leaf")
    hash = models.BinaryField(max_length=32)

    class Meta:
        ordering = ["index"]

    def __str__(self) -> str:
        return f"leaf {self.index}"


class Node(models.Model):
    """A complete interior subtree: level L, index i covers leaves [i·2^L, (i+1)·2^L).

    Keeping them is what lets proofs and roots of a large tree be computed from O(log n) rows.
    """

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["level", "index"], name="node_position_unique"),
            models.CheckConstraint(condition=models.Q(level__gte=1), name="node_level_above_leaves"),
        ]

    def __str__(self) -> str:
        return f"node {self.level}/{self.index}"


class Checkpoint(models.Model):
    """A signed statement of the tree's size and root (C2SP tlog-checkpoint, signed note)."""

    tree_size = models.BigIntegerField()
    root = models.BinaryField(max_length=32)
    note = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        get_latest_by = "id"

    def __str__(self) -> str:
        return f"checkpoint {self.id}: size {self.tree_size}"
