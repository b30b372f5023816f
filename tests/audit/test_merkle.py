"""The RFC 9162 Merkle tree on plain data: the public vectors, our proofs, and properties of random trees."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit import merkle
from audit.merkle import ProofError
from tests.conftest import TESTDATA

VECTORS = TESTDATA / "rfc9162"
REFERENCE = json.loads((VECTORS / "reference.json").read_text())
REFERENCE_LEAVES = [merkle.leaf_hash(bytes.fromhex(data)) for data in REFERENCE["leaf_inputs_hex"]]


# A reference straight from the RFC's recursive definitions, to hold the iterative code to.


def mth(leaves: list[bytes]) -> bytes:
    if not leaves:
        return merkle.EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return merkle.node_hash(mth(leaves[:k]), mth(leaves[k:]))


def rfc_path(m: int, leaves: list[bytes]) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m < k:
        return [*rfc_path(m, leaves[:k]), mth(leaves[k:])]
    return [*rfc_path(m - k, leaves[k:]), mth(leaves[:k])]


def rfc_subproof(m: int, leaves: list[bytes], whole: bool) -> list[bytes]:
    if m == len(leaves):
        return [] if whole else [mth(leaves)]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    if m <= k:
        return [*rfc_subproof(m, leaves[:k], whole), mth(leaves[k:])]
    return [*rfc_subproof(m - k, leaves[k:], False), mth(leaves[:k])]


def stored(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """What storage keeps: every leaf and every complete interior subtree, as the integrator writes them."""
    store = {(0, index): leaf for index, leaf in enumerate(leaves)}
    appender = merkle.TreeAppender(0, [])
    for leaf in leaves:
        store.update({(node.level, node.index): node.hash for node in appender.append(leaf)})
    return store


def getter(store: dict[tuple[int, int], bytes]) -> merkle.NodeGetter:
    return lambda level, index: store[(level, index)]


def leaf_lists(max_size: int = 300, min_size: int = 1):
    # A size drawn uniformly (so large, ragged trees come up as often as small ones) and distinct
    # leaves from a random salt, so that a proof for one leaf cannot rightly verify for a twin.
    def tree(size: int, salt: bytes) -> list[bytes]:
        return [merkle.leaf_hash(salt + index.to_bytes(2, "big")) for index in range(size)]

    return st.builds(tree, st.integers(min_size, max_size), st.binary(max_size=8))


# The public vectors


def b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def probe_files(kind: str):
    files = sorted((VECTORS / kind).rglob("*.json"))
    assert files, f"no {kind} probes under {VECTORS}"
    return pytest.mark.parametrize("path", files, ids=[str(path.relative_to(VECTORS / kind)) for path in files])


@probe_files("inclusion")
def test_it_decides_every_inclusion_probe_as_the_vectors_say(path):
    probe = json.loads(path.read_text())
    proof = [b64(element) for element in probe.get("proof") or []]
    arguments = (b64(probe["leafHash"]), probe["leafIdx"], probe["treeSize"], proof, b64(probe["root"]))
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*arguments)
    else:
        merkle.verify_inclusion(*arguments)


@probe_files("consistency")
def test_it_decides_every_consistency_probe_as_the_vectors_say(path):
    probe = json.loads(path.read_text())
    proof = [b64(element) for element in probe.get("proof") or []]
    arguments = (probe["size1"], probe["size2"], b64(probe["root1"]), b64(probe["root2"]), proof)
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*arguments)
    else:
        merkle.verify_consistency(*arguments)


def test_the_vectors_hold_both_accepted_and_rejected_probes():
    # Guards the parametrized tests above against a glob that silently finds one kind only.
    probes = [
        json.loads(p.read_text()) for kind in ("inclusion", "consistency") for p in (VECTORS / kind).rglob("*.json")
    ]
    assert {probe["wantErr"] for probe in probes} == {True, False}
    assert len(probes) >= 150


@pytest.mark.parametrize("size", range(9))
def test_it_computes_the_reference_root_for_every_size(size):
    want = bytes.fromhex(REFERENCE["roots_hex_by_size"][str(size)])
    leaves = REFERENCE_LEAVES[:size]
    assert merkle.root(leaves) == want
    assert mth(leaves) == want
    assert merkle.subtree_root(0, size, getter(stored(REFERENCE_LEAVES))) == want


def test_the_empty_tree_has_the_hash_of_nothing():
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.root([]) == merkle.RootBuilder().root() == merkle.EMPTY_ROOT


def test_it_separates_leaves_from_nodes():
    assert merkle.leaf_hash(b"") == bytes.fromhex("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    left, right = REFERENCE_LEAVES[0], REFERENCE_LEAVES[1]
    assert merkle.node_hash(left, right) != merkle.leaf_hash(left + right)


@pytest.mark.parametrize("size", range(1, 9))
def test_its_inclusion_proofs_of_the_reference_tree_verify(size):
    node = getter(stored(REFERENCE_LEAVES))
    root = bytes.fromhex(REFERENCE["roots_hex_by_size"][str(size)])
    for index in range(size):
        proof = merkle.inclusion_proof(index, size, node)
        assert proof == rfc_path(index, REFERENCE_LEAVES[:size])
        merkle.verify_inclusion(REFERENCE_LEAVES[index], index, size, proof, root)


@pytest.mark.parametrize("second", range(1, 9))
def test_its_consistency_proofs_of_the_reference_tree_verify(second):
    node = getter(stored(REFERENCE_LEAVES))
    root2 = bytes.fromhex(REFERENCE["roots_hex_by_size"][str(second)])
    for first in range(1, second + 1):
        proof = merkle.consistency_proof(first, second, node)
        assert proof == (rfc_subproof(first, REFERENCE_LEAVES[:second], True) if first < second else [])
        root1 = bytes.fromhex(REFERENCE["roots_hex_by_size"][str(first)])
        merkle.verify_consistency(first, second, root1, root2, proof)


def test_it_refuses_proofs_outside_the_tree():
    node = getter(stored(REFERENCE_LEAVES))
    with pytest.raises(ValueError, match="not in a tree of size 8"):
        merkle.inclusion_proof(8, 8, node)
    with pytest.raises(ValueError, match="0 < first <= second"):
        merkle.consistency_proof(0, 8, node)
    with pytest.raises(ValueError, match="0 < first <= second"):
        merkle.consistency_proof(5, 4, node)


def test_it_rejects_an_inclusion_proof_for_a_leaf_hash_of_the_wrong_length():
    with pytest.raises(ProofError, match="leaf hash is 0 bytes"):
        merkle.verify_inclusion(b"", 0, 1, [], b"")


# Properties of random trees


@settings(max_examples=60, deadline=None)
@given(leaf_lists())
def test_every_inclusion_proof_of_a_random_tree_verifies(leaves):
    size, node = len(leaves), getter(stored(leaves))
    root = mth(leaves)
    for index in range(size):
        merkle.verify_inclusion(leaves[index], index, size, merkle.inclusion_proof(index, size, node), root)


@settings(deadline=None)
@given(leaf_lists(), st.data())
def test_every_consistency_proof_of_a_random_tree_verifies(leaves, data):
    node = getter(stored(leaves))
    second = data.draw(st.integers(1, len(leaves)), label="second")
    for first in {1, second, *data.draw(st.lists(st.integers(1, second), max_size=20), label="firsts")}:
        proof = merkle.consistency_proof(first, second, node)
        merkle.verify_consistency(first, second, mth(leaves[:first]), mth(leaves[:second]), proof)


def test_every_consistency_proof_between_any_two_sizes_up_to_64_verifies():
    leaves = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(64)]
    node, roots = getter(stored(leaves)), [mth(leaves[:n]) for n in range(65)]
    for second in range(1, 65):
        for first in range(1, second + 1):
            merkle.verify_consistency(
                first, second, roots[first], roots[second], merkle.consistency_proof(first, second, node)
            )


def flip(value: bytes, position: int, bit: int) -> bytes:
    position %= len(value)
    return value[:position] + bytes([value[position] ^ (1 << bit)]) + value[position + 1 :]


@settings(deadline=None)
@given(leaf_lists(min_size=2), st.data())
def test_any_changed_bit_breaks_an_inclusion_proof(leaves, data):
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof, root = merkle.inclusion_proof(index, size, getter(stored(leaves))), mth(leaves)
    position, bit = data.draw(st.integers(0, 10_000), label="position"), data.draw(st.integers(0, 7), label="bit")
    target = data.draw(st.sampled_from(["proof", "root", "leaf"]), label="target")
    leaf = leaves[index]
    if target == "proof":
        element = position % len(proof)
        proof[element] = flip(proof[element], position // len(proof), bit)
    elif target == "root":
        root = flip(root, position, bit)
    else:
        leaf = flip(leaf, position, bit)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaf, index, size, proof, root)


@settings(deadline=None)
@given(leaf_lists(min_size=2), st.data())
def test_any_changed_bit_breaks_a_consistency_proof(leaves, data):
    second = data.draw(st.integers(2, len(leaves)), label="second")
    first = data.draw(st.integers(1, second - 1), label="first")
    proof = merkle.consistency_proof(first, second, getter(stored(leaves)))
    root1, root2 = mth(leaves[:first]), mth(leaves[:second])
    position, bit = data.draw(st.integers(0, 10_000), label="position"), data.draw(st.integers(0, 7), label="bit")
    target = data.draw(st.sampled_from(["proof", "root1", "root2"]), label="target")
    if target == "proof":
        element = position % len(proof)
        proof[element] = flip(proof[element], position // len(proof), bit)
    elif target == "root1":
        root1 = flip(root1, position, bit)
    else:
        root2 = flip(root2, position, bit)
    with pytest.raises(ProofError):
        merkle.verify_consistency(first, second, root1, root2, proof)


@settings(deadline=None)
@given(leaf_lists(min_size=2), st.data())
def test_a_proof_for_another_index_or_with_an_extra_element_is_rejected(leaves, data):
    size = len(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof, root = merkle.inclusion_proof(index, size, getter(stored(leaves))), mth(leaves)
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index), label="other index")
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaves[index], other, size, proof, root)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(leaves[index], index, size, [*proof, proof[0] if proof else root], root)


@settings(deadline=None)
@given(leaf_lists(min_size=0))
def test_the_root_builder_matches_the_root_at_every_size(leaves):
    builder = merkle.RootBuilder()
    assert builder.root() == merkle.EMPTY_ROOT
    for size, leaf in enumerate(leaves, 1):
        builder.append(leaf)
        assert builder.size == size
        assert builder.root() == mth(leaves[:size])
    assert merkle.root(leaves) == builder.root()


@settings(deadline=None)
@given(leaf_lists(min_size=0), st.data())
def test_the_root_builder_resumes_from_a_stored_border(leaves, data):
    split = data.draw(st.integers(0, len(leaves)), label="split")
    store = stored(leaves)
    border = [store[coordinates] for coordinates in merkle.border_coordinates(split)]
    builder = merkle.RootBuilder(split, border)
    for leaf in leaves[split:]:
        builder.append(leaf)
    assert builder.root() == mth(leaves)
    assert [(node.level, node.index) for node in builder.border()] == merkle.border_coordinates(len(leaves))


def complete_nodes(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """Every complete interior subtree of the tree, computed directly from the leaves."""
    nodes, level = {}, 1
    while 1 << level <= len(leaves):
        width = 1 << level
        for index in range(len(leaves) // width):
            nodes[(level, index)] = mth(leaves[index * width : (index + 1) * width])
        level += 1
    return nodes


@settings(deadline=None)
@given(leaf_lists(min_size=0), st.data())
def test_the_tree_appender_emits_exactly_the_complete_nodes_each_batch_completes(leaves, data):
    split = data.draw(st.integers(0, len(leaves)), label="already stored")
    before = complete_nodes(leaves[:split])
    border = [
        (level, index, mth(leaves[index << level : (index + 1) << level]))
        for level, index in merkle.border_coordinates(split)
    ]
    appender = merkle.TreeAppender(split, border)
    emitted = []
    for position, leaf in enumerate(leaves[split:], split):
        for node in appender.append(leaf):
            # A node is complete once its last leaf is in, and not before.
            assert (node.index + 1) << node.level == position + 1
            emitted.append(node)
    assert len(emitted) == len({(n.level, n.index) for n in emitted})
    assert {(n.level, n.index): n.hash for n in emitted} == {
        key: value for key, value in complete_nodes(leaves).items() if key not in before
    }
    assert appender.size == len(leaves) and appender.root() == mth(leaves)


def test_the_tree_appender_refuses_a_border_that_does_not_fit_the_size():
    store = stored(REFERENCE_LEAVES)
    with pytest.raises(ValueError, match="border of a tree of size 5"):
        merkle.TreeAppender(5, [(2, 0, store[(2, 0)])])
    with pytest.raises(ValueError, match="border of a tree of size 3"):
        merkle.TreeAppender(3, [(1, 0, store[(1, 0)]), (0, 3, store[(0, 3)])])
    assert merkle.TreeAppender.from_getter(5, getter(store)).root() == mth(REFERENCE_LEAVES[:5])


@settings(deadline=None)
@given(leaf_lists(max_size=80), st.data())
def test_subtree_root_is_the_hash_of_any_range(leaves, data):
    start = data.draw(st.integers(0, len(leaves)), label="start")
    end = data.draw(st.integers(start, len(leaves)), label="end")
    assert merkle.subtree_root(start, end, getter(stored(leaves))) == mth(leaves[start:end])


@settings(deadline=None)
@given(leaf_lists(), st.data())
def test_the_listed_nodes_are_all_a_proof_reads(leaves, data):
    size = len(leaves)
    store = stored(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    first = data.draw(st.integers(1, size), label="first")

    def only(listed):
        return lambda level, i: store[(level, i)] if (level, i) in listed else pytest.fail(f"read {(level, i)}")

    listed = set(merkle.inclusion_proof_nodes(index, size))
    assert merkle.inclusion_proof(index, size, only(listed)) == rfc_path(index, leaves)
    assert len(listed) <= 2 * size.bit_length()
    listed = set(merkle.consistency_proof_nodes(first, size))
    assert merkle.consistency_proof(first, size, only(listed)) == merkle.consistency_proof(first, size, getter(store))
