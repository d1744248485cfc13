"""RFC 6962 / RFC 9162 Merkle tree hashing and proof verification, as pure functions over bytes.

The log (DESIGN §4) is one Merkle Tree Hash (MTH) over every committed event, in order. This module holds the
hashing (RFC 9162 §2.1.1), the two proof verifiers (§2.1.3.2 and §2.1.4.2, implemented step by step), and small
reference implementations of the tree hash and of proof generation over an in-memory list of leaf hashes
(§2.1.1, §2.1.3.1, §2.1.4.1) for tests and small callers. The persistent tree lives in `ledger.storage.log`.

Verifiers never return a bool: they return None or raise `VerificationError` saying what was expected and what
was found. A consistency proof from size 0 is always refused, even 0 → 0: the empty tree proves nothing, and a
verifier that has a size-0 checkpoint has nothing to be consistent with.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from credledger.ledger.domains import LOG_LEAF, LOG_NODE
from credledger.ledger.errors import VerificationError

#: SHA-256 output size; every leaf hash, node hash, root and proof element has exactly this length.
HASH_SIZE = 32

#: RFC 9162 §2.1.1: the hash of an empty list is the hash of an empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """RFC 9162 §2.1.1 leaf hash: SHA-256(0x00 || entry)."""
    return _sha256(LOG_LEAF + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(LOG_NODE + left + right).digest()


def b64(data: bytes) -> str:
    """Standard base64, the form C2SP and DESIGN §9 use for Merkle hashes in text and in error messages."""
    return base64.b64encode(data).decode()


def root_from_leaf_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash (RFC 9162 §2.1.1) of a list of leaf hashes.

    Hashes level by level; an odd node at the end of a level is carried up unchanged, which yields exactly the
    RFC's split at the largest power of two below n.
    """
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [_sha256(LOG_NODE + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162 §2.1.1: the largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_path(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Reference inclusion proof PATH(m, D[n]) (RFC 9162 §2.1.3.1) for leaf `index` of `leaf_hashes`.

    Reads the whole list: meant for tests and small trees; `ledger.storage.log.MerkleLog` serves real proofs.
    """
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"leaf index must be in [0, {len(leaf_hashes)}), got {index}")

    def path(m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = _largest_power_of_two_below(n)
        if m < k:
            return [*path(m, lo, lo + k), root_from_leaf_hashes(leaf_hashes[lo + k : hi])]
        return [*path(m - k, lo + k, hi), root_from_leaf_hashes(leaf_hashes[lo : lo + k])]

    return path(index, 0, len(leaf_hashes))


def consistency_path(leaf_hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """Reference consistency proof PROOF(m, D[n]) (RFC 9162 §2.1.4.1) from size `size1` to `len(leaf_hashes)`.

    Reads the whole list: meant for tests and small trees; `ledger.storage.log.MerkleLog` serves real proofs.
    """
    if not 0 < size1 <= len(leaf_hashes):
        raise ValueError(f"size1 must be in [1, {len(leaf_hashes)}], got {size1}")

    def subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            # The old tree is this whole subtree: the verifier already knows its hash unless it is the old root.
            return [] if complete else [root_from_leaf_hashes(leaf_hashes[lo:hi])]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return [*subproof(m, lo, lo + k, complete), root_from_leaf_hashes(leaf_hashes[lo + k : hi])]
        return [*subproof(m - k, lo + k, hi, False), root_from_leaf_hashes(leaf_hashes[lo : lo + k])]

    return subproof(size1, 0, len(leaf_hashes), True)


def inclusion_proof_length(index: int, size: int) -> int:
    """How many hashes an inclusion proof of leaf `index` in a tree of `size` leaves has (0 <= index < size).

    Below the level where the paths to `index` and to the last leaf meet, every level has a sibling; above it,
    the path runs along the right edge and has a (left) sibling exactly where its node is a right child.
    """
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def consistency_proof_length(size1: int, size2: int) -> int:
    """How many hashes a consistency proof from `size1` to `size2` has (0 < size1 <= size2)."""
    if size1 == size2:
        return 0
    # The old tree's rightmost complete subtree, then that subtree's inclusion path in the new tree; the
    # subtree's own hash is left out when it is the whole old tree (size1 a power of two).
    level = (size1 & -size1).bit_length() - 1
    index = (size1 - 1) >> level
    return int(index != 0) + inclusion_proof_length(index, ((size2 - 1) >> level) + 1)


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for position, value in enumerate(hashes):
        if len(value) != HASH_SIZE:
            raise VerificationError(f"{what}[{position}]: expected a {HASH_SIZE}-byte hash, got {len(value)} bytes")


def root_from_inclusion_proof(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof of `leaf_hash` at `index` in a tree of `size` leaves leads to.

    RFC 9162 §2.1.3.2 steps 1-4; raises `VerificationError` if the proof cannot be a proof for (index, size).
    """
    # Step 1: the leaf must be inside the tree.
    if index < 0 or size < 0:
        raise VerificationError(f"inclusion proof: expected a non-negative index and size, got {index}, {size}")
    if index >= size:
        raise VerificationError(f"inclusion proof: expected leaf index below tree size {size}, got {index}")
    if len(leaf_hash) != HASH_SIZE:
        raise VerificationError(f"inclusion proof: expected a {HASH_SIZE}-byte leaf hash, got {len(leaf_hash)} bytes")
    expected_length = inclusion_proof_length(index, size)
    if len(proof) != expected_length:
        raise VerificationError(
            f"inclusion proof for leaf {index} of {size}: expected {expected_length} hashes, got {len(proof)}"
        )
    _check_hashes("inclusion proof", proof)

    # Steps 2-3.
    fn, sn = index, size - 1
    r = leaf_hash
    # Step 4.
    for p in proof:
        if sn == 0:  # 4a: the proof is longer than the path (unreachable after the length check above).
            raise VerificationError(f"inclusion proof for leaf {index} of {size}: more hashes than tree levels")
        if fn & 1 or fn == sn:  # 4b: p is a left sibling.
            r = _sha256(LOG_NODE + p + r).digest()
            # If LSB(fn) is not set, skip the levels where the right-edge node has no sibling (RFC 6962 carries
            # it up unchanged).
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:  # p is a right sibling.
            r = _sha256(LOG_NODE + r + p).digest()
        fn >>= 1  # 4c.
        sn >>= 1
    # Step 5 (first half): the proof must have reached the root.
    if sn != 0:
        raise VerificationError(f"inclusion proof for leaf {index} of {size}: too few hashes to reach the root")
    return r


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that `proof` proves leaf `index` of the tree of `size` leaves with root `root` has hash `leaf_hash`.

    RFC 9162 §2.1.3.2. Returns None; raises `VerificationError` naming the failed check.
    """
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    # Step 5 (second half).
    if computed != root:
        raise VerificationError(
            f"inclusion proof for leaf {index} of {size}: expected root {b64(root)}, proof leads to {b64(computed)}"
        )


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that `proof` proves the tree (size1, root1) is a prefix of the tree (size2, root2).

    RFC 9162 §2.1.4.2. A proof from size 0 is refused. Returns None; raises `VerificationError` naming the
    failed check.
    """
    what = f"consistency proof from {size1} to {size2}"
    if size1 <= 0:
        raise VerificationError(f"{what}: expected a first size of at least 1 (the empty tree proves nothing)")
    if size2 < size1:
        raise VerificationError(f"{what}: expected the second size to be at least the first")
    expected_length = consistency_proof_length(size1, size2)
    if len(proof) != expected_length:
        raise VerificationError(f"{what}: expected {expected_length} hashes, got {len(proof)}")
    if size1 == size2:
        # Equal sizes: the proof is empty and the trees are consistent only if they are the same tree.
        if root1 != root2:
            raise VerificationError(f"{what}: equal sizes, expected equal roots, got {b64(root1)} and {b64(root2)}")
        return
    _check_hashes("consistency proof", proof)
    old, new = _roots_from_consistency_proof(size1, size2, proof, root1)
    if old != root1:
        raise VerificationError(f"{what}: expected old root {b64(root1)}, proof leads to {b64(old)}")
    if new != root2:
        raise VerificationError(f"{what}: expected new root {b64(root2)}, proof leads to {b64(new)}")


def _roots_from_consistency_proof(size1: int, size2: int, proof: Sequence[bytes], root1: bytes) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 2-7 for 0 < size1 < size2 and a non-empty proof: the (old, new) roots it leads to.

    Step 1 (refuse an empty proof) is the caller's length check.
    """
    what = f"consistency proof from {size1} to {size2}"
    path = list(proof)
    # Step 2: if the old tree is a complete subtree, its root is the proof's implicit first node.
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    # Step 3.
    fn, sn = size1 - 1, size2 - 1
    # Step 4: skip the levels where the old tree's last node is a right child of a node the old tree also holds.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # Step 5.
    fr = sr = path[0]
    # Step 6.
    for c in path[1:]:
        if sn == 0:  # The proof is longer than the path (unreachable after the caller's length check).
            raise VerificationError(f"{what}: more hashes than tree levels")
        if fn & 1 or fn == sn:
            fr = _sha256(LOG_NODE + c + fr).digest()
            sr = _sha256(LOG_NODE + c + sr).digest()
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = _sha256(LOG_NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    # Step 7 (the root comparisons are the caller's).
    if sn != 0:
        raise VerificationError(f"{what}: too few hashes to reach the new root")
    return fr, sr
