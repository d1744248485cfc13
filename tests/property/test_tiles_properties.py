"""Tiles that ledger.tiles serves, read back by a reader written here from c2sp.org/tlog-tiles and RFC 6962 alone.

The reader below does not import ledger.tiles: it rebuilds the leaf hashes from the level-0 tiles, checks every
upper tile against the spec's formula MTH(D[(n·256 + i)·256^l : (n·256 + i + 1)·256^l]), and computes roots and
proofs by the RFC 6962 §2.1 recursions. Both it and ledger.tiles.TileReader must agree with ledger.merkle.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from credledger.ledger.errors import VerificationError
from credledger.ledger.merkle import (
    consistency_path,
    inclusion_path,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)
from credledger.ledger.tiles import TileReader, hashes_from_leaves, tile_data, tiles_for_size

WIDTH = 256
# Sizes around every tile boundary up to the third level, plus anything Hypothesis picks.
EDGES = [1, 2, 255, 256, 257, 511, 512, 65535, 65536, 65537, 65536 + 256 + 1]
SIZES = st.one_of(st.sampled_from(EDGES), st.integers(min_value=1, max_value=3000))


def _mth(hashes: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH over leaf hashes: split at the largest power of two smaller than n."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(hashes[:k]) + _mth(hashes[k:])).digest()


def _path(m: int, d: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n])."""
    if len(d) == 1:
        return []
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m < k:
        return [*_path(m, d[:k]), _mth(d[k:])]
    return [*_path(m - k, d[k:]), _mth(d[:k])]


def _subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """RFC 6962 §2.1.2 SUBPROOF(m, D[n], b)."""
    if m == len(d):
        return [] if b else [_mth(d)]
    k = 1
    while k * 2 < len(d):
        k *= 2
    if m <= k:
        return [*_subproof(m, d[:k], b), _mth(d[k:])]
    return [*_subproof(m - k, d[k:], False), _mth(d[:k])]


def _spec_tile_paths(size: int) -> list[tuple[int, int, int, str]]:
    """(level, index, width, path) of every tile of a tree of `size` (tlog-tiles §Merkle Tree, §Partial Tiles)."""
    out = []
    level = 0
    while size // WIDTH**level:
        for n in range(size // WIDTH ** (level + 1)):
            out.append((level, n, WIDTH, f"tile/{level}/{_index(n)}"))
        partial = (size // WIDTH**level) % WIDTH
        if partial:
            n = size // WIDTH ** (level + 1)
            out.append((level, n, partial, f"tile/{level}/{_index(n)}.p/{partial}"))
        level += 1
    return out


def _index(n: int) -> str:
    groups = []
    while True:
        groups.append(f"{n % 1000:03d}")
        n //= 1000
        if not n:
            break
    return "/".join(["x" + g for g in reversed(groups[1:])] + [groups[0]])


def _spec_read(size: int, files: dict[str, bytes]) -> list[bytes]:
    """The leaf hashes of the tree, after checking every tile of it against the spec's definition."""
    tiles = _spec_tile_paths(size)
    leaves = b"".join(files[p] for level, _, _, p in tiles if level == 0)
    d = [leaves[i : i + 32] for i in range(0, len(leaves), 32)]
    assert len(d) == size
    for level, n, width, path in tiles:
        data = files[path]
        assert len(data) == width * 32, path
        span = WIDTH**level
        for i in range(width):
            start = (n * WIDTH + i) * span
            assert data[i * 32 : (i + 1) * 32] == _mth(d[start : start + span]), (path, i)
    return d


def _served(size: int) -> tuple[list[bytes], dict[str, bytes]]:
    leaves = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(size)]
    nodes = hashes_from_leaves(leaves)
    return leaves, {t.path(): tile_data(t, size, nodes) for t in tiles_for_size(size)}


@settings(max_examples=25, deadline=None)
@given(SIZES, st.data())
def test_served_tiles_rebuild_the_tree_and_its_proofs_by_the_spec(size: int, data: st.DataObject) -> None:
    leaves, files = _served(size)
    assert sorted(files) == sorted(p for *_, p in _spec_tile_paths(size))
    d = _spec_read(size, files)
    assert d == leaves
    root = _mth(d)
    assert root == root_from_leaf_hashes(leaves)

    reader = TileReader(size, root, files.get)
    index = data.draw(st.integers(min_value=0, max_value=size - 1), label="index")
    old = data.draw(st.integers(min_value=1, max_value=size), label="old size")
    spec_inclusion = _path(index, d)
    spec_consistency = _subproof(old, d, True)
    assert spec_inclusion == inclusion_path(leaves, index) == reader.inclusion_proof(index)
    assert spec_consistency == consistency_path(leaves, old) == reader.consistency_proof(old)
    assert reader.root_at(old) == _mth(d[:old])
    verify_inclusion(d[index], index, size, reader.inclusion_proof(index), root)
    verify_consistency(old, size, reader.consistency_proof(old), _mth(d[:old]), root)


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=1500), st.data())
def test_proofs_between_two_checkpoints_come_from_the_newer_ones_tiles(size: int, data: st.DataObject) -> None:
    leaves, files = _served(size)
    reader = TileReader(size, _mth(leaves), files.get)
    first = data.draw(st.integers(min_value=1, max_value=size), label="first")
    second = data.draw(st.integers(min_value=first, max_value=size), label="second")
    index = data.draw(st.integers(min_value=0, max_value=second - 1), label="index")
    assert reader.consistency_proof(first, second) == _subproof(first, leaves[:second], True)
    assert reader.inclusion_proof(index, second) == _path(index, leaves[:second])


@settings(max_examples=40, deadline=None)
@given(st.one_of(st.sampled_from([256, 257, 65536, 65537 + 256]), st.integers(min_value=1, max_value=3000)), st.data())
def test_any_bit_flipped_in_any_served_tile_is_caught(size: int, data: st.DataObject) -> None:
    leaves, files = _served(size)
    path = data.draw(st.sampled_from(sorted(files)), label="tile")
    bit = data.draw(st.integers(min_value=0, max_value=len(files[path]) * 8 - 1), label="bit")
    changed = bytearray(files[path])
    changed[bit // 8] ^= 1 << (bit % 8)
    files[path] = bytes(changed)
    try:
        reader = TileReader(size, _mth(leaves), files.get)
        read = [reader.leaf_hash(i) for i in range(size)]
    except VerificationError:
        return
    raise AssertionError(f"a flipped bit {bit} in {path} went unnoticed (read {len(read)} leaves)")
