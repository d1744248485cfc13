"""The pure sparse Merkle hashing, proof record and verifier (DESIGN §5), on trees built by hand."""

from __future__ import annotations

import hashlib

import msgpack
import pytest

from credledger.ledger import smt
from credledger.ledger.codec import decode, encode
from credledger.ledger.errors import DecodeError, VerificationError
from credledger.ledger.smt import EMPTY, EMPTY_ROOT, ProofLeaf, StateProof, proof_root, verify_proof


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(key: bytes, value: bytes) -> bytes:
    return sha(b"\x02" + key + sha(value))


def node(left: bytes, right: bytes) -> bytes:
    return sha(b"\x03" + left + right)


def key_with_bits(*bits: int, fill: int = 0) -> bytes:
    """A key whose leading bits are `bits`, then `fill` bits."""
    rest = "".join(str(b) for b in bits).ljust(256, str(fill))
    return int(rest, 2).to_bytes(32, "big")


# Three keys: A = 00..., B = 01..., C = 1...  The canonical tree is node(node(leaf A, leaf B), leaf C).
A = key_with_bits(0, 0)
B = key_with_bits(0, 1)
C = key_with_bits(1, fill=1)
VA, VB, VC = b"alpha", b"beta", b"gamma"
AB = node(leaf(A, VA), leaf(B, VB))
ROOT = node(AB, leaf(C, VC))


def proof_of_a() -> StateProof:
    return StateProof(ProofLeaf(A, sha(VA)), (leaf(B, VB), leaf(C, VC)))


def test_hashes_follow_the_design_prefixes() -> None:
    assert smt.leaf_hash(A, sha(VA)) == sha(b"\x02" + A + sha(VA))
    assert smt.node_hash(A, B) == sha(b"\x03" + A + B)
    assert smt.value_hash(VA) == sha(VA)


def test_empty_map_root_is_32_zero_bytes() -> None:
    assert EMPTY_ROOT == EMPTY == bytes(32)
    verify_proof(EMPTY_ROOT, A, None, StateProof(None, ()))


def test_key_bits_are_read_most_significant_first() -> None:
    key = bytes([0b1000_0001]) + bytes(31)
    assert [smt.key_bit(key, i) for i in range(8)] == [1, 0, 0, 0, 0, 0, 0, 1]
    assert smt.key_bit(key, 8) == 0


def test_single_key_map_has_the_leaf_as_root_and_an_empty_path() -> None:
    proof = StateProof(ProofLeaf(A, sha(VA)), ())
    assert proof_root(A, proof) == leaf(A, VA)
    verify_proof(leaf(A, VA), A, VA, proof)
    verify_proof(leaf(A, VA), C, None, proof)  # C's path ends at the same lone leaf


def test_membership_proof_folds_siblings_lowest_first() -> None:
    assert proof_root(A, proof_of_a()) == ROOT
    verify_proof(ROOT, A, VA, proof_of_a())
    verify_proof(ROOT, B, VB, StateProof(ProofLeaf(B, sha(VB)), (leaf(A, VA), leaf(C, VC))))
    verify_proof(ROOT, C, VC, StateProof(ProofLeaf(C, sha(VC)), (AB,)))


def test_absence_proved_by_a_leaf_of_another_key_sharing_the_path() -> None:
    absent = key_with_bits(1, 0)  # under C's lone leaf
    proof = StateProof(ProofLeaf(C, sha(VC)), (AB,))
    verify_proof(ROOT, absent, None, proof)
    with pytest.raises(VerificationError, match="to be present, but the proof ends in the leaf of key"):
        verify_proof(ROOT, absent, b"anything", proof)


def test_absence_proved_by_an_empty_subtree() -> None:
    # Map {A, B}: both keys start with bit 0, so the root's right half is empty and its left half is AB.
    root = node(AB, EMPTY)
    absent = key_with_bits(1)
    proof = StateProof(None, (AB,))
    verify_proof(root, absent, None, proof)
    with pytest.raises(VerificationError, match="proof ends in an empty subtree at depth 1"):
        verify_proof(root, absent, b"x", proof)


def test_present_key_cannot_be_proved_absent() -> None:
    with pytest.raises(VerificationError, match="to be absent, but the proof shows it present"):
        verify_proof(ROOT, A, None, proof_of_a())


def test_wrong_value_is_rejected_with_both_hashes() -> None:
    with pytest.raises(VerificationError, match=f"expected value hash {sha(b'other').hex()}, got {sha(VA).hex()}"):
        verify_proof(ROOT, A, b"other", proof_of_a())


def test_wrong_root_names_expected_and_computed_roots() -> None:
    other = sha(b"another root")
    with pytest.raises(VerificationError, match=f"expected root {other.hex()}, got {ROOT.hex()} from the proof"):
        verify_proof(other, A, VA, proof_of_a())


def test_leaf_key_off_the_path_is_rejected() -> None:
    # C's leaf offered as the end of A's path at depth 2: C starts with bit 1, A with bit 0.
    forged = StateProof(ProofLeaf(C, sha(VC)), (leaf(B, VB), leaf(C, VC)))
    with pytest.raises(VerificationError, match=r"leaf key does not share the path.*at bit 0"):
        verify_proof(ROOT, A, None, forged)


def test_no_leaf_claim_where_the_path_holds_a_leaf_is_rejected() -> None:
    forged = StateProof(None, (leaf(B, VB), leaf(C, VC)))
    with pytest.raises(VerificationError, match="expected root"):
        verify_proof(ROOT, A, None, forged)


def test_leaf_with_empty_sibling_is_non_canonical() -> None:
    # In the map {A, C}, A's leaf sits at depth 1. Pushing it one level down with an empty sibling gives a
    # different root, and the verifier refuses the shape before even comparing roots.
    pushed = StateProof(ProofLeaf(A, sha(VA)), (EMPTY, leaf(C, VC)))
    with pytest.raises(VerificationError, match="non-canonical proof: it ends in a leaf at depth 2"):
        proof_root(A, pushed)


def test_empty_subtree_with_empty_sibling_is_non_canonical() -> None:
    forged = StateProof(None, (EMPTY, leaf(C, VC)))
    with pytest.raises(VerificationError, match="non-canonical proof: it ends in an empty subtree at depth 2"):
        verify_proof(node(EMPTY, leaf(C, VC)), A, None, forged)


def test_deepest_possible_proof_has_256_siblings() -> None:
    a = bytes(32)
    b = bytes(31) + b"\x01"  # differs from a only in the last bit
    root = node(leaf(a, b"1"), leaf(b, b"2"))
    for _ in range(255):
        root = node(root, EMPTY)
    proof = StateProof(ProofLeaf(a, sha(b"1")), (leaf(b, b"2"), *([EMPTY] * 255)))
    verify_proof(root, a, b"1", proof)
    assert proof.depth == 256


@pytest.mark.parametrize(
    ("root", "key", "message"),
    [(bytes(31), A, "root: expected 32 bytes, got 31 bytes"), (ROOT, A + b"\x00", "key: expected 32 bytes, got 33")],
)
def test_inputs_of_the_wrong_size_are_rejected(root: bytes, key: bytes, message: str) -> None:
    with pytest.raises(VerificationError, match=message):
        verify_proof(root, key, VA, proof_of_a())


def test_proof_records_are_bounded_and_sized() -> None:
    with pytest.raises(ValueError, match="at most 256 siblings, got 257"):
        StateProof(None, (EMPTY,) * 257)
    with pytest.raises(ValueError, match="sibling 1: expected 32 bytes, got 31 bytes"):
        StateProof(None, (EMPTY, bytes(31)))
    with pytest.raises(ValueError, match="leaf key: expected 32 bytes"):
        ProofLeaf(A[:16], sha(VA))


@pytest.mark.parametrize("proof", [proof_of_a(), StateProof(None, (AB,)), StateProof(None, ())])
def test_proof_round_trips_through_the_codec(proof: StateProof) -> None:
    assert decode(StateProof, encode(proof)) == proof


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([None, [EMPTY] * 257], "siblings: expected 0..256 items, got 257"),
        ([None, [bytes(31)]], r"siblings\[0\]: expected 32 bytes, got 31"),
        ([[A, sha(VA)[:8]], []], "leaf.value_hash: expected 32 bytes, got 8"),
        ([[A, sha(VA), b""], []], "leaf: expected 2 fields, got 3"),
    ],
)
def test_decoding_refuses_oversized_or_malformed_proofs(raw: object, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decode(StateProof, msgpack.packb(raw, use_bin_type=True))


def test_common_prefix_counts_leading_shared_bits() -> None:
    assert smt.common_prefix_bits(A, A) == 256
    assert smt.common_prefix_bits(A, B) == 1
    assert smt.common_prefix_bits(A, C) == 0
