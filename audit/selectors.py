"""Reads of the audit log: tree size, stored subtree hashes, roots and proofs."""

from __future__ import annotations

from django.db.models import Max

from audit import merkle
from audit.models import Checkpoint, Leaf, Node


def tree_size() -> int:
    """How many entries have leaves (the tree's size)."""
    last = Leaf.objects.aggregate(last=Max("index"))["last"]
    return 0 if last is None else last + 1


class NodeReader:
    """Reads stored complete subtrees, each once, for proofs and roots (O(log n) rows each)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int], bytes] = {}

    def __call__(self, level: int, index: int) -> bytes:
        key = (level, index)
        if key not in self._cache:
            if level == 0:
                value = Leaf.objects.values_list("hash", flat=True).get(index=index)
            else:
                value = Node.objects.values_list("hash", flat=True).get(level=level, index=index)
            self._cache[key] = bytes(value)
        return self._cache[key]

    def root(self, size: int) -> bytes:
        return merkle.subtree_root(0, size, self) if size else merkle.EMPTY_ROOT


def latest_checkpoint() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-id").first()


def entries_in_range(start: int, end: int) -> list[tuple[int, dict]]:
    """The integrated entries with leaf indices start <= i < end, as (index, document)."""
    leaves = Leaf.objects.filter(index__gte=start, index__lt=end).select_related("entry").order_by("index")
    return [(leaf.index, leaf.entry.document()) for leaf in leaves]
