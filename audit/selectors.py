"""Reads of the audit log: tree size, stored subtree hashes, roots and proofs."""

from __future__ import annotations

from django.db.models import Max, Q

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

    def prefetch(self, coordinates: list[tuple[int, int]]) -> NodeReader:
        """Read these (level, index) subtrees in at most two queries, leaves and interior nodes."""
        leaves = [index for level, index in coordinates if level == 0 and (0, index) not in self._cache]
        interior = [(level, index) for level, index in coordinates if level > 0 and (level, index) not in self._cache]
        if leaves:
            for index, value in Leaf.objects.filter(index__in=leaves).values_list("index", "hash"):
                self._cache[(0, index)] = bytes(value)
        if interior:
            wanted = Q()
            for level, index in interior:
                wanted |= Q(level=level, index=index)
            for level, index, value in Node.objects.filter(wanted).values_list("level", "index", "hash"):
                self._cache[(level, index)] = bytes(value)
        return self

    def root(self, size: int) -> bytes:
        if not size:
            return merkle.EMPTY_ROOT
        self.prefetch(merkle.border_coordinates(size))
        return merkle.subtree_root(0, size, self)


def latest_checkpoint() -> Checkpoint | None:
    return Checkpoint.objects.order_by("-id").first()


def entries_in_range(start: int, end: int) -> list[tuple[int, dict]]:
    """The integrated entries with leaf indices start <= i < end, as (index, document)."""
    leaves = Leaf.objects.filter(index__gte=start, index__lt=end).select_related("entry").order_by("index")
    return [(leaf.index, leaf.entry.document()) for leaf in leaves]
