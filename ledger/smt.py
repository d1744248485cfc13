"""Sparse Merkle map hashing, the state proof record, and its pure verifier (DESIGN §5).

The map is a binary tree over 256-bit keys, read most-significant bit first (0 = left). Hashes:

- leaf      = SHA-256(0x02 || key || SHA-256(value))
- internal  = SHA-256(0x03 || left || right)
- an empty subtree is 32 zero bytes, and so is the root of the empty map.

A subtree holding exactly one leaf *is* that leaf: the leaf sits at the shallowest depth where it is alone, not at
depth 256. This makes the tree canonical -- one set of (key, value) pairs has exactly one shape -- and proofs
about log2(n) hashes long. Two consequences the verifier checks:

- an internal node always has at least two leaves below it, so no internal node has two empty children, nor one
  empty child and one leaf;
- the lowest sibling of a proof (the one next to the leaf or empty subtree the path ends in) is never empty:
  if it were, the parent would have been collapsed and the path would have ended one level higher.

A `StateProof` for a key is the leaf found at the end of the key's path (its key and value hash), or none when
the path ends in an empty subtree, plus the sibling hashes from that depth up to the root, lowest first. It
proves membership (the leaf's key is the queried key), or non-membership (no leaf, or a leaf with a different key
that shares the path prefix). This module is pure: bytes in, bytes out, `VerificationError` on any failed check.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from credledger.ledger.codec import Bytes32, Size
from credledger.ledger.domains import SMT_LEAF, SMT_NODE
from credledger.ledger.errors import VerificationError

KEY_BITS = 256
KEY_SIZE = 32
HASH_SIZE = 32
#: The hash of an empty subtree.
EMPTY = bytes(HASH_SIZE)
#: The root of the map with no keys.
EMPTY_ROOT = EMPTY
#: A proof never carries more siblings than the key has bits.
MAX_PROOF_SIBLINGS = KEY_BITS


def value_hash(value: bytes) -> bytes:
    """SHA-256 of a value, the form in which a leaf commits to it."""
    return hashlib.sha256(value).digest()


def leaf_hash(key: bytes, value_digest: bytes) -> bytes:
    """SHA-256(0x02 || key || value hash)."""
    return hashlib.sha256(SMT_LEAF + key + value_digest).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x03 || left || right)."""
    return hashlib.sha256(SMT_NODE + left + right).digest()


def key_bit(key: bytes, depth: int) -> int:
    """The bit of `key` that chooses the child at `depth + 1` of a node at `depth` (0 = left)."""
    return (key[depth >> 3] >> (7 - (depth & 7))) & 1


def common_prefix_bits(a: bytes, b: bytes) -> int:
    """How many leading bits two 32-byte keys share (256 if they are equal)."""
    diff = int.from_bytes(a, "big") ^ int.from_bytes(b, "big")
    return KEY_BITS - diff.bit_length()


@dataclass(frozen=True, slots=True)
class ProofLeaf:
    """The leaf a proof's path ends in: its key and the hash of its value."""

    key: Bytes32
    value_hash: Bytes32

    def __post_init__(self) -> None:
        _check_size("leaf key", self.key, KEY_SIZE)
        _check_size("leaf value hash", self.value_hash, HASH_SIZE)


@dataclass(frozen=True, slots=True)
class StateProof:
    """A membership or non-membership proof for one key of the state map.

    `leaf` is the leaf at the end of the key's path, or None if the path ends in an empty subtree. `siblings`
    are the sibling hashes from that depth up to the root, lowest first; their number is the path's depth.
    """

    leaf: ProofLeaf | None
    siblings: Annotated[tuple[Bytes32, ...], Size(0, MAX_PROOF_SIBLINGS)]

    def __post_init__(self) -> None:
        if len(self.siblings) > MAX_PROOF_SIBLINGS:
            raise ValueError(f"expected at most {MAX_PROOF_SIBLINGS} siblings, got {len(self.siblings)}")
        for i, sibling in enumerate(self.siblings):
            _check_size(f"sibling {i}", sibling, HASH_SIZE)

    @property
    def depth(self) -> int:
        """The depth of the leaf or empty subtree the path ends in (0 = the root itself)."""
        return len(self.siblings)


def proof_root(key: bytes, proof: StateProof) -> bytes:
    """The root a proof for `key` implies, after checking that its shape is possible in a canonical tree.

    Raises `VerificationError` if the leaf does not lie on the key's path or the proof is not canonical.
    """
    _check_input("key", key, KEY_SIZE)
    depth = len(proof.siblings)
    if depth > MAX_PROOF_SIBLINGS:
        raise VerificationError(f"proof has {depth} siblings, more than the {MAX_PROOF_SIBLINGS} a key allows")
    leaf = proof.leaf
    if leaf is None:
        current = EMPTY
    else:
        shared = common_prefix_bits(leaf.key, key)
        if shared < depth:
            raise VerificationError(
                f"leaf key does not share the path: the proof ends at depth {depth} but the leaf key "
                f"{leaf.key.hex()} differs from key {key.hex()} at bit {shared}"
            )
        current = leaf_hash(leaf.key, leaf.value_hash)
    if depth and proof.siblings[0] == EMPTY:
        # Canonical form: a lone leaf is lifted to where it is alone, and two empty halves are one empty subtree.
        what = "a leaf" if leaf is not None else "an empty subtree"
        raise VerificationError(
            f"non-canonical proof: it ends in {what} at depth {depth} whose sibling is empty; "
            f"the path should have ended at depth {depth - 1}"
        )
    path = int.from_bytes(key, "big")
    for i, sibling in enumerate(proof.siblings):
        # siblings[i] sits at depth (depth - i); the key's bit at (depth - i - 1) says which side we are on.
        on_right = (path >> (KEY_BITS - depth + i)) & 1
        current = node_hash(sibling, current) if on_right else node_hash(current, sibling)
    return current


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: StateProof) -> None:
    """Check that, in the map with this root, `key` maps to `value` (or, if `value` is None, is absent).

    Raises `VerificationError` naming the failed check; returns None if the proof holds.
    """
    _check_input("root", root, HASH_SIZE)
    _check_input("key", key, KEY_SIZE)
    computed = proof_root(key, proof)
    if computed != root:
        raise VerificationError(f"expected root {root.hex()}, got {computed.hex()} from the proof")
    leaf = proof.leaf
    present = leaf is not None and leaf.key == key
    if value is None:
        if present:
            raise VerificationError(f"expected key {key.hex()} to be absent, but the proof shows it present")
        return
    if leaf is None:
        raise VerificationError(
            f"expected key {key.hex()} to be present, but the proof ends in an empty subtree at depth {proof.depth}"
        )
    if not present:
        raise VerificationError(
            f"expected key {key.hex()} to be present, but the proof ends in the leaf of key {leaf.key.hex()}"
        )
    expected = value_hash(value)
    if leaf.value_hash != expected:
        raise VerificationError(f"expected value hash {expected.hex()}, got {leaf.value_hash.hex()} in the proof")


def _check_size(what: str, data: bytes, size: int) -> None:
    if type(data) is not bytes or len(data) != size:
        found = f"{len(data)} bytes" if isinstance(data, bytes) else type(data).__name__
        raise ValueError(f"{what}: expected {size} bytes, got {found}")


def _check_input(what: str, data: bytes, size: int) -> None:
    try:
        _check_size(what, data, size)
    except ValueError as exc:
        raise VerificationError(str(exc)) from None
