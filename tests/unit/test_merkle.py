from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from credledger.ledger.errors import VerificationError
from credledger.ledger.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    consistency_path,
    consistency_proof_length,
    inclusion_path,
    inclusion_proof_length,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from tests.conftest import VECTORS

MERKLE_VECTORS = Path("merkle") / "testdata"


def _vector_names(kind: str) -> list[str]:
    root = VECTORS / MERKLE_VECTORS / kind
    return sorted(str(path.relative_to(root)) for path in root.glob("**/*.json"))


INCLUSION_VECTORS = _vector_names("inclusion")
CONSISTENCY_VECTORS = _vector_names("consistency")


def _load(vectors_dir: Path, kind: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((vectors_dir / MERKLE_VECTORS / kind / name).read_text())
    return data


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _proof(vector: dict[str, Any]) -> list[bytes]:
    # The vectors write an empty proof as null.
    return [_b64(p) for p in vector["proof"] or []]


def test_every_vector_file_is_collected(vectors_dir: Path) -> None:
    found = sorted(str(p.relative_to(vectors_dir / MERKLE_VECTORS)) for p in vectors_dir.glob("merkle/**/*.json"))
    assert found == sorted(
        [f"inclusion/{n}" for n in INCLUSION_VECTORS] + [f"consistency/{n}" for n in CONSISTENCY_VECTORS]
    )
    assert len(INCLUSION_VECTORS) == 98
    assert len(CONSISTENCY_VECTORS) == 98


@pytest.mark.parametrize("name", INCLUSION_VECTORS)
def test_inclusion_vector(vectors_dir: Path, name: str) -> None:
    v = _load(vectors_dir, "inclusion", name)
    args = (_b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v), _b64(v["root"]))
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)  # accepted: returns without raising


@pytest.mark.parametrize("name", CONSISTENCY_VECTORS)
def test_consistency_vector(vectors_dir: Path, name: str) -> None:
    v = _load(vectors_dir, "consistency", name)
    args = (v["size1"], v["size2"], _proof(v), _b64(v["root1"]), _b64(v["root2"]))
    if v["wantErr"]:
        with pytest.raises(VerificationError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)  # accepted: returns without raising


# The eight entries of the Certificate Transparency reference tests, and the roots of their first n leaves.
CT_ENTRIES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def test_hashes_use_the_rfc_6962_domain_prefixes() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"L" * 32, b"R" * 32) == hashlib.sha256(b"\x01" + b"L" * 32 + b"R" * 32).digest()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_from_leaf_hashes([]) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(1, 9))
def test_root_matches_certificate_transparency_reference_roots(size: int) -> None:
    hashes = [leaf_hash(e) for e in CT_ENTRIES[:size]]
    assert root_from_leaf_hashes(hashes).hex() == CT_ROOTS[size - 1]


def _mth(hashes: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, transcribed recursively."""
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(_mth(hashes[:k]), _mth(hashes[k:]))


def test_iterative_root_equals_recursive_definition() -> None:
    hashes = [leaf_hash(i.to_bytes(2, "big")) for i in range(130)]
    for n in range(131):
        assert root_from_leaf_hashes(hashes[:n]) == _mth(hashes[:n])


class Rfc6962Example:
    """The seven-leaf tree drawn in RFC 6962 §2.1.3, with its nodes named as in the RFC."""

    def __init__(self) -> None:
        self.leaves = [leaf_hash(bytes([i])) for i in range(7)]
        self.a, self.b, self.c, self.d, self.e, self.f, self.j = self.leaves
        self.g = node_hash(self.a, self.b)
        self.h = node_hash(self.c, self.d)
        self.i = node_hash(self.e, self.f)
        self.k = node_hash(self.g, self.h)
        self.l = node_hash(self.i, self.j)
        self.root = node_hash(self.k, self.l)


def test_inclusion_paths_of_the_rfc_6962_example_tree() -> None:
    t = Rfc6962Example()
    assert root_from_leaf_hashes(t.leaves) == t.root
    assert inclusion_path(t.leaves, 0) == [t.b, t.h, t.l]
    assert inclusion_path(t.leaves, 3) == [t.c, t.g, t.l]
    assert inclusion_path(t.leaves, 4) == [t.f, t.j, t.k]
    assert inclusion_path(t.leaves, 6) == [t.i, t.k]


def test_consistency_paths_of_the_rfc_6962_example_tree() -> None:
    t = Rfc6962Example()
    assert consistency_path(t.leaves, 3) == [t.c, t.d, t.g, t.l]
    assert consistency_path(t.leaves, 4) == [t.l]
    assert consistency_path(t.leaves, 6) == [t.i, t.j, t.k]
    assert consistency_path(t.leaves, 7) == []
    root3 = root_from_leaf_hashes(t.leaves[:3])
    verify_consistency(3, 7, [t.c, t.d, t.g, t.l], root3, t.root)
    verify_consistency(4, 7, [t.l], t.k, t.root)
    verify_consistency(6, 7, [t.i, t.j, t.k], node_hash(t.k, t.i), t.root)


def test_reference_proofs_verify_for_every_small_tree() -> None:
    hashes = [leaf_hash(i.to_bytes(2, "big")) for i in range(40)]
    for n in range(1, 41):
        root = root_from_leaf_hashes(hashes[:n])
        for m in range(n):
            proof = inclusion_path(hashes[:n], m)
            assert len(proof) == inclusion_proof_length(m, n)
            assert root_from_inclusion_proof(hashes[m], m, n, proof) == root
            verify_inclusion(hashes[m], m, n, proof, root)
        for m in range(1, n + 1):
            proof = consistency_path(hashes[:n], m)
            assert len(proof) == consistency_proof_length(m, n)
            verify_consistency(m, n, proof, root_from_leaf_hashes(hashes[:m]), root)


def test_reference_proofs_refuse_out_of_range_arguments() -> None:
    hashes = [leaf_hash(b"x")] * 3
    with pytest.raises(ValueError, match="leaf index"):
        inclusion_path(hashes, 3)
    with pytest.raises(ValueError, match="size1"):
        consistency_path(hashes, 0)
    with pytest.raises(ValueError, match="size1"):
        consistency_path(hashes, 4)


@pytest.fixture
def tree() -> Rfc6962Example:
    return Rfc6962Example()


def test_inclusion_refuses_a_leaf_outside_the_tree(tree: Rfc6962Example) -> None:
    with pytest.raises(VerificationError, match="expected leaf index below tree size 7, got 7"):
        verify_inclusion(tree.a, 7, 7, [tree.b, tree.h, tree.l], tree.root)
    with pytest.raises(VerificationError, match="non-negative"):
        verify_inclusion(tree.a, -1, 7, [tree.b, tree.h, tree.l], tree.root)


def test_inclusion_names_the_wrong_proof_length(tree: Rfc6962Example) -> None:
    with pytest.raises(VerificationError, match="expected 3 hashes, got 2"):
        verify_inclusion(tree.a, 0, 7, [tree.b, tree.h], tree.root)
    with pytest.raises(VerificationError, match="expected 3 hashes, got 4"):
        verify_inclusion(tree.a, 0, 7, [tree.b, tree.h, tree.l, tree.l], tree.root)


def test_inclusion_refuses_hashes_of_the_wrong_size(tree: Rfc6962Example) -> None:
    with pytest.raises(VerificationError, match=f"expected a {HASH_SIZE}-byte leaf hash, got 31 bytes"):
        verify_inclusion(tree.a[:31], 0, 7, [tree.b, tree.h, tree.l], tree.root)
    with pytest.raises(VerificationError, match=r"inclusion proof\[1\]: expected a 32-byte hash, got 33 bytes"):
        verify_inclusion(tree.a, 0, 7, [tree.b, tree.h + b"\x00", tree.l], tree.root)


def test_inclusion_names_expected_and_computed_roots(tree: Rfc6962Example) -> None:
    wrong = node_hash(tree.l, tree.k)
    message = f"expected root {base64.b64encode(wrong).decode()}, proof leads to {base64.b64encode(tree.root).decode()}"
    with pytest.raises(VerificationError, match=message.replace("+", r"\+")):
        verify_inclusion(tree.a, 0, 7, [tree.b, tree.h, tree.l], wrong)


def test_consistency_from_the_empty_tree_is_refused() -> None:
    with pytest.raises(VerificationError, match="empty tree proves nothing"):
        verify_consistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)
    with pytest.raises(VerificationError, match="empty tree proves nothing"):
        verify_consistency(0, 3, [], EMPTY_ROOT, leaf_hash(b"x"))


def test_consistency_refuses_a_shrinking_tree(tree: Rfc6962Example) -> None:
    with pytest.raises(VerificationError, match="second size to be at least the first"):
        verify_consistency(7, 4, [tree.l], tree.root, tree.k)


def test_consistency_between_equal_sizes_needs_equal_roots(tree: Rfc6962Example) -> None:
    verify_consistency(7, 7, [], tree.root, tree.root)
    with pytest.raises(VerificationError, match="equal sizes, expected equal roots"):
        verify_consistency(7, 7, [], tree.root, tree.k)
    with pytest.raises(VerificationError, match="expected 0 hashes, got 1"):
        verify_consistency(7, 7, [tree.l], tree.root, tree.root)


def test_consistency_names_which_root_does_not_match(tree: Rfc6962Example) -> None:
    proof = [tree.c, tree.d, tree.g, tree.l]
    with pytest.raises(VerificationError, match="expected old root"):
        verify_consistency(3, 7, proof, root_from_leaf_hashes([tree.a, tree.b, tree.d]), tree.root)
    with pytest.raises(VerificationError, match="expected new root"):
        verify_consistency(4, 7, [tree.l], tree.k, tree.k)
    with pytest.raises(VerificationError, match="expected 1 hashes, got 0"):
        verify_consistency(4, 7, [], tree.k, tree.root)
    with pytest.raises(VerificationError, match=r"consistency proof\[0\]: expected a 32-byte hash, got 0 bytes"):
        verify_consistency(4, 7, [b""], tree.k, tree.root)


@pytest.mark.parametrize(
    ("index", "size", "length"), [(0, 1, 0), (0, 2, 1), (4, 5, 1), (0, 5, 3), (6, 7, 2), (5, 8, 3)]
)
def test_inclusion_proof_length(index: int, size: int, length: int) -> None:
    assert inclusion_proof_length(index, size) == length


@pytest.mark.parametrize(
    ("size1", "size2", "length"), [(1, 1, 0), (1, 2, 1), (2, 3, 1), (3, 7, 4), (4, 7, 1), (6, 7, 3)]
)
def test_consistency_proof_length(size1: int, size2: int, length: int) -> None:
    assert consistency_proof_length(size1, size2) == length
