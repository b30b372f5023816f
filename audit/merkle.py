"""The RFC 9162 §2.1 Merkle tree: hashes, roots, streaming roots, inclusion and consistency proofs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Node",
    "NodeGetter",
    "ProofError",
    "RootBuilder",
    "TreeAppender",
    "border_coordinates",
    "consistency_proof",
    "consistency_proof_nodes",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "root",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# Returns the hash of the complete aligned subtree at (level, index): leaves [index·2^level, (index+1)·2^level).
# Level 0 is a leaf hash. This is exactly what storage keeps; everything else is computed from it.
NodeGetter = Callable[[int, int], bytes]


class Node(NamedTuple):
    """A complete aligned subtree: level L, index i covers leaves [i·2^L, (i+1)·2^L)."""

    level: int
    index: int
    hash: bytes


class ProofError(ValueError):
    """A proof that does not prove what it claims; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_sha256 = hashlib.sha256


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data): the domain-separation prefix keeps a leaf from passing for a node."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return _sha256(b"\x01" + left + right).digest()


def root(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH of the given leaf hashes (EMPTY_ROOT for none)."""
    builder = RootBuilder()
    for leaf in leaf_hashes:
        builder.append(leaf)
    return builder.root()


def border_coordinates(size: int) -> list[tuple[int, int]]:
    """(level, index) of the complete subtrees along the right edge of a tree of `size`, largest first.

    One per set bit of `size`: together they cover leaves [0, size) and are what RootBuilder and
    TreeAppender hold (a compact range), so storage can resume either from O(log n) rows.
    """
    coordinates, start = [], 0
    for level in reversed(range(size.bit_length())):
        if size >> level & 1:
            coordinates.append((level, start >> level))
            start += 1 << level
    return coordinates


def _fold(hashes: Sequence[bytes]) -> bytes:
    # The RFC splits at the largest power of two below n, so the right edge nests to the right:
    # MTH = h(b0, h(b1, h(b2, ...))) over the border subtrees, largest first.
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = _sha256(b"\x01" + left + result).digest()
    return result


class RootBuilder:
    """The root of a growing tree at any moment, from O(log n) hashes (a compact range).

    `append` costs one hash on average (at most log n), `root()` at most log n; nothing else is kept.
    """

    __slots__ = ("_border", "size")

    def __init__(self, size: int = 0, border: Sequence[bytes] = ()) -> None:
        """Resume from the hashes of `border_coordinates(size)`, in that order (none for an empty tree)."""
        if size < 0 or len(border) != size.bit_count():
            raise ValueError(f"a tree of size {size} has a border of {size.bit_count()} subtrees, not {len(border)}")
        self.size = size
        self._border = list(border)

    def append(self, leaf_hash: bytes) -> None:
        # Adding leaf n merges one complete subtree per trailing 1 bit of n (a binary carry).
        border, size, right = self._border, self.size, leaf_hash
        while size & 1:
            right = _sha256(b"\x01" + border.pop() + right).digest()
            size >>= 1
        border.append(right)
        self.size += 1

    def root(self) -> bytes:
        return _fold(self._border) if self._border else EMPTY_ROOT

    def border(self) -> list[Node]:
        coordinates = border_coordinates(self.size)
        return [Node(level, index, h) for (level, index), h in zip(coordinates, self._border, strict=True)]


class TreeAppender:
    """What the integrator needs to store: the new complete interior nodes each appended leaf completes.

    Start it from the stored right border (`border_coordinates(size)` as (level, index, hash), largest
    first), then `append` each new leaf hash in order: it returns the interior nodes (level ≥ 1) that
    leaf completes, so a whole batch is integrated without reading back anything it wrote.
    """

    __slots__ = ("_border", "size")

    def __init__(self, size: int, border: Iterable[tuple[int, int, bytes]]) -> None:
        nodes = [Node(*node) for node in border]
        expected = border_coordinates(size)
        if [(node.level, node.index) for node in nodes] != expected:
            # A wrong border would silently corrupt every node written after it.
            raise ValueError(f"the border of a tree of size {size} is at {expected}, not the nodes given")
        self.size = size
        self._border = nodes

    @classmethod
    def from_getter(cls, size: int, node: NodeGetter) -> TreeAppender:
        return cls(size, [(level, index, node(level, index)) for level, index in border_coordinates(size)])

    def append(self, leaf_hash: bytes) -> list[Node]:
        border, size = self._border, self.size
        right = Node(0, size, leaf_hash)
        completed = []
        while size & 1:
            left = border.pop()
            # The left sibling is at an even index 2j, so their parent is index j one level up.
            right = Node(left.level + 1, left.index >> 1, _sha256(b"\x01" + left.hash + right.hash).digest())
            completed.append(right)
            size >>= 1
        border.append(right)
        self.size += 1
        return completed

    def root(self) -> bytes:
        return _fold([node.hash for node in self._border]) if self._border else EMPTY_ROOT

    def border(self) -> list[Node]:
        return list(self._border)


def _complete_level(start: int, end: int) -> int:
    """The level of [start, end) if it is a complete aligned subtree, else -1."""
    width = end - start
    if width & (width - 1) or start & (width - 1):
        return -1
    return width.bit_length() - 1


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(start: int, end: int, node: NodeGetter) -> bytes:
    """MTH(D[start:end]) from stored complete subtrees; EMPTY_ROOT when start == end.

    Reads O(log n) nodes when [start, end) is a subtree of the RFC tree (start a multiple of the
    power of two at or above end - start, as every range a proof or root asks for is); any other
    range is still answered correctly, just from more nodes.
    """
    if not 0 <= start <= end:
        raise ValueError(f"bad leaf range [{start}, {end})")
    if start == end:
        return EMPTY_ROOT
    level = _complete_level(start, end)
    if level >= 0:
        return node(level, start >> level)
    split = start + _largest_power_of_two_below(end - start)
    return node_hash(subtree_root(start, split, node), subtree_root(split, end, node))


def inclusion_proof(index: int, size: int, node: NodeGetter) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, bottom up."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    # Walk down from the root, keeping the sibling at each split; the RFC lists them leaf first.
    while end - start > 1:
        split = start + _largest_power_of_two_below(end - start)
        if index < split:
            proof.append(subtree_root(split, end, node))
            end = split
        else:
            proof.append(subtree_root(start, split, node))
            start = split
    proof.reverse()
    return proof


def consistency_proof(first: int, second: int, node: NodeGetter) -> list[bytes]:
    """PROOF(first, D[0:second]) of RFC 9162 §2.1.4.1; empty when first == second.

    The RFC defines proofs for 0 < first; a tree is trivially consistent with the empty one, so
    first == 0 is refused rather than answered with a proof nobody can check (verify_consistency
    refuses it too, as the test vectors require).
    """
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}: need 0 < first <= second")
    proof: list[bytes] = []
    start, end, m = 0, second, first
    # SUBPROOF(m, D[start:end], b) unrolled: `whole` is b, true until the walk first turns right.
    whole = True
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            proof.append(subtree_root(start + k, end, node))
            end = start + k
        else:
            proof.append(subtree_root(start, start + k, node))
            start, m, whole = start + k, m - k, False
    if not whole:
        proof.append(subtree_root(start, end, node))
    proof.reverse()
    return proof


def _recorded_nodes(generate: Callable[[NodeGetter], object]) -> list[tuple[int, int]]:
    # Which subtrees a proof reads depends only on the sizes, never on the hashes, so running the
    # generator on a stand-in getter lists them; storage can then fetch them all in one query.
    seen: dict[tuple[int, int], None] = {}

    def record(level: int, index: int) -> bytes:
        seen[(level, index)] = None
        return EMPTY_ROOT

    generate(record)
    return list(seen)


def inclusion_proof_nodes(index: int, size: int) -> list[tuple[int, int]]:
    """The (level, index) subtrees `inclusion_proof(index, size, ...)` reads, to fetch them at once."""
    return _recorded_nodes(lambda node: inclusion_proof(index, size, node))


def consistency_proof_nodes(first: int, second: int) -> list[tuple[int, int]]:
    """The (level, index) subtrees `consistency_proof(first, second, ...)` reads, to fetch them at once."""
    return _recorded_nodes(lambda node: consistency_proof(first, second, node))


def _check_hashes(proof: Sequence[bytes]) -> None:
    for position, element in enumerate(proof):
        if len(element) != HASH_SIZE:
            raise ProofError(f"proof element {position} is {len(element)} bytes, not {HASH_SIZE}")


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2: raise ProofError unless `proof` shows leaf `index` of tree `size` has `root`."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    if len(leaf_hash) != HASH_SIZE:
        # Otherwise a one-leaf tree would "prove" any string equal to itself, the empty one included.
        raise ProofError(f"the leaf hash is {len(leaf_hash)} bytes, not {HASH_SIZE}")
    _check_hashes(proof)
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the path from the leaf to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # A left child on the right edge has no sibling at this level: climb until it does.
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path from the leaf to the root")
    if r != root:
        raise ProofError("the root computed from the proof differs from the given root")


def verify_consistency(first: int, second: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2: raise ProofError unless `proof` shows tree `second` extends tree `first`."""
    if first < 1:
        # RFC 9162 defines consistency for 0 < first; any tree extends the empty one, so a "proof"
        # from size 0 proves nothing and is refused (as the test vectors require).
        raise ProofError(f"no consistency proof from size {first}: the first size must be at least 1")
    if second < first:
        raise ProofError(f"the second size {second} is smaller than the first {first}: a log never shrinks")
    if first == second:
        if proof:
            raise ProofError("the sizes are equal, so the proof must be empty")
        if root1 != root2:
            raise ProofError("the sizes are equal but the roots differ")
        return
    if not proof:
        raise ProofError("the proof is empty")
    _check_hashes(proof)
    path = list(proof)
    if first & (first - 1) == 0:
        # When the first tree is a complete subtree its root is the proof's implicit first element.
        path.insert(0, root1)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the proof is longer than the path between the two trees")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the path between the two trees")
    if fr != root1:
        raise ProofError("the first root computed from the proof differs from the given first root")
    if sr != root2:
        raise ProofError("the second root computed from the proof differs from the given second root")
