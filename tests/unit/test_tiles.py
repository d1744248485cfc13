"""Tile paths, entry bundles, serving tiles, and the verifying tile reader (c2sp.org/tlog-tiles)."""

from __future__ import annotations

import hashlib

import pytest

from credledger.ledger.errors import DecodeError, StorageError, VerificationError
from credledger.ledger.merkle import EMPTY_ROOT, consistency_path, inclusion_path, leaf_hash, root_from_leaf_hashes
from credledger.ledger.tiles import (
    MAX_ENTRY_SIZE,
    EntryBundle,
    Tile,
    TileRangeError,
    TileReader,
    TileUnavailable,
    bundles_for_size,
    decode_bundle,
    encode_bundle,
    encode_index,
    hashes_from_leaves,
    parse_path,
    partial_tiles,
    tile_data,
    tiles_for_size,
)


def _entries(count: int) -> list[bytes]:
    return [f"entry {i}".encode() for i in range(count)]


class _Log:
    """A log in memory serving its tiles and bundles the way a node would, for the reader to fetch."""

    def __init__(self, entries: list[bytes]) -> None:
        self.entries = entries
        self.leaves = [leaf_hash(e) for e in entries]
        self.files: dict[str, bytes] = {}
        nodes = hashes_from_leaves(self.leaves)
        for tile in tiles_for_size(len(entries)):
            self.files[tile.path()] = tile_data(tile, len(entries), nodes)
        for bundle in bundles_for_size(len(entries)):
            self.files[bundle.path()] = encode_bundle(entries[bundle.start : bundle.end])
        self.fetched: list[str] = []

    @property
    def root(self) -> bytes:
        return root_from_leaf_hashes(self.leaves)

    def fetch(self, path: str) -> bytes | None:
        self.fetched.append(path)
        return self.files.get(path)


# --- Paths ---------------------------------------------------------------------------------------------------


def test_index_is_written_in_three_digit_elements_as_the_spec_example() -> None:
    assert encode_index(1234067) == "x001/x234/067"
    assert encode_index(0) == "000"
    assert encode_index(1000) == "x001/000"


def test_tile_paths_name_level_index_and_partial_width() -> None:
    assert Tile(0, 1234067).path() == "tile/0/x001/x234/067"
    assert Tile(2, 5, 17).path() == "tile/2/005.p/17"
    assert EntryBundle(1234067, 3).path() == "tile/entries/x001/x234/067.p/3"


@pytest.mark.parametrize(
    "thing",
    [Tile(0, 0), Tile(0, 1234067, 255), Tile(5, 1, 1), Tile(7, 0, 127), EntryBundle(0, 1), EntryBundle(999_999)],
)
def test_parsing_a_path_gives_back_the_same_tile(thing: Tile | EntryBundle) -> None:
    assert parse_path(thing.path()) == thing


@pytest.mark.parametrize(
    ("path", "complaint"),
    [
        ("tile/01/000", "level"),
        ("tile/64/000", "level"),
        ("tile/a/000", "level"),
        ("tile/0/0000", "3-digit"),
        ("tile/0/00", "3-digit"),
        ("tile/0/001/002", "'x' and 3 digits"),
        ("tile/0/x000/005", "leading zero element"),
        ("tile/0/000.p/0", "partial width"),
        ("tile/0/000.p/256", "partial width"),
        ("tile/0/000.p/07", "partial width"),
        ("tile/0/000.p/", "partial width"),
        ("tiles/0/000", "expected tile/"),
        ("tile/0", "expected tile/"),
        ("tile/0/" + "x123/" * 20 + "000", "exceeds the limit"),
    ],
)
def test_malformed_paths_are_refused_with_what_is_wrong(path: str, complaint: str) -> None:
    with pytest.raises(DecodeError, match=complaint):
        parse_path(path)


@pytest.mark.parametrize("path", ["tile/8/000.p/1", "tile/7/000", "tile/0/x036/x028/x797/x018/x963/x968/000"])
def test_paths_past_any_tree_size_are_out_of_range(path: str) -> None:
    with pytest.raises(TileRangeError, match="past any tree size"):
        parse_path(path)


def test_tiles_of_a_70000_entry_tree_are_the_spec_example() -> None:
    tiles = list(tiles_for_size(70_000))
    assert [t for t in tiles if t.level == 0 and t.is_full] == [Tile(0, n) for n in range(273)]
    assert [t for t in tiles if not (t.level == 0 and t.is_full)] == [
        Tile(0, 273, 112),
        Tile(1, 0),
        Tile(1, 1, 17),
        Tile(2, 0, 1),
    ]


def test_a_256_entry_tree_has_one_full_tile_and_a_partial_one_above() -> None:
    assert list(tiles_for_size(256)) == [Tile(0, 0), Tile(1, 0, 1)]
    assert list(tiles_for_size(0)) == []


@pytest.mark.parametrize(("old", "new"), [(0, 5), (5, 5), (5, 300), (300, 310), (255, 256), (65535, 70000)])
def test_tiles_since_a_size_are_exactly_those_the_old_tree_lacked(old: int, new: int) -> None:
    added = list(tiles_for_size(new, since=old))
    assert set(added) == set(tiles_for_size(new)) - set(tiles_for_size(old))
    assert list(bundles_for_size(new, since=old)) == [EntryBundle(t.index, t.width) for t in added if t.level == 0]


# --- Entry bundles -------------------------------------------------------------------------------------------


def test_bundle_entries_are_uint16_length_prefixed() -> None:
    assert encode_bundle([b"one", b"", b"xy"]) == b"\x00\x03one\x00\x00\x00\x02xy"
    assert decode_bundle(b"\x00\x03one\x00\x00\x00\x02xy", 3) == [b"one", b"", b"xy"]


def test_a_bundle_round_trips_the_largest_entry() -> None:
    entries = [b"\xab" * MAX_ENTRY_SIZE, b"z"]
    assert decode_bundle(encode_bundle(entries), 2) == entries


def test_an_entry_too_long_for_a_bundle_is_refused() -> None:
    with pytest.raises(ValueError, match="exceeds the bundle limit"):
        encode_bundle([b"\x00" * (MAX_ENTRY_SIZE + 1)])


@pytest.mark.parametrize(
    ("data", "width", "complaint"),
    [
        (b"\x00", 1, "truncated length prefix"),
        (b"\x00\x05abc", 1, "claims 5 bytes, 3 remain"),
        (b"\x00\x01a\x00\x01b", 1, "found bytes after the last one"),
        (b"\x00\x01a", 2, "expected 2 entries, got 1"),
    ],
)
def test_malformed_bundles_are_refused(data: bytes, width: int, complaint: str) -> None:
    with pytest.raises(DecodeError, match=complaint):
        decode_bundle(data, width)


# --- Serving -------------------------------------------------------------------------------------------------


def test_a_level_one_tile_holds_the_roots_of_full_level_zero_tiles() -> None:
    leaves = [leaf_hash(e) for e in _entries(600)]
    data = tile_data(Tile(1, 0, 2), 600, hashes_from_leaves(leaves))
    assert data == root_from_leaf_hashes(leaves[:256]) + root_from_leaf_hashes(leaves[256:512])


def test_a_historical_partial_tile_is_served_while_its_hashes_exist() -> None:
    leaves = [leaf_hash(e) for e in _entries(600)]
    assert tile_data(Tile(0, 2, 10), 600, hashes_from_leaves(leaves)) == b"".join(leaves[512:522])


def test_a_tile_past_the_log_size_is_out_of_range() -> None:
    leaves = [leaf_hash(e) for e in _entries(300)]
    with pytest.raises(TileRangeError, match="covers entries up to 512, the log has 300"):
        tile_data(Tile(0, 1), 300, hashes_from_leaves(leaves))


def test_a_hash_source_returning_the_wrong_count_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="expected 3 hashes"):
        tile_data(Tile(0, 0, 3), 3, lambda level, start, end: [b"\x00" * 32])


# --- Reading -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 255, 256, 257, 511, 512, 1000])
def test_the_reader_computes_the_root_and_proofs_of_the_reference_tree(size: int) -> None:
    log = _Log(_entries(size))
    reader = TileReader(size, log.root, log.fetch)
    for smaller in {1, size // 2 or 1, size - 1 or 1, size}:
        assert reader.root_at(smaller) == root_from_leaf_hashes(log.leaves[:smaller])
        assert reader.consistency_proof(smaller) == consistency_path(log.leaves, smaller)
    for index in {0, size // 3, size - 1}:
        assert reader.leaf_hash(index) == log.leaves[index]
        assert reader.inclusion_proof(index) == inclusion_path(log.leaves, index)
        assert reader.inclusion_proof(0, index + 1) == inclusion_path(log.leaves[: index + 1], 0)


def test_the_reader_returns_entries_checked_against_their_tile() -> None:
    log = _Log(_entries(300))
    reader = TileReader(300, log.root, log.fetch)
    assert reader.entries(0) == log.entries[:256]
    assert reader.entries(1) == log.entries[256:]


def test_the_empty_tree_needs_no_tiles_and_the_empty_root() -> None:
    assert TileReader(0, EMPTY_ROOT, lambda path: None).root_at(0) == EMPTY_ROOT
    with pytest.raises(VerificationError, match="size 0 must have root"):
        TileReader(0, b"\x01" * 32, lambda path: None)


def test_tiles_that_do_not_lead_to_the_signed_root_are_refused() -> None:
    log = _Log(_entries(10))
    with pytest.raises(VerificationError, match="tiles of the tree of size 10 lead to root"):
        TileReader(10, hashlib.sha256(b"other").digest(), log.fetch)


def test_a_tile_of_the_wrong_length_is_refused_by_name() -> None:
    log = _Log(_entries(10))
    log.files["tile/0/000.p/10"] = log.files["tile/0/000.p/10"][:-1]
    with pytest.raises(VerificationError, match=r"tile/0/000\.p/10: expected 320 bytes, got 319"):
        TileReader(10, log.root, log.fetch)


def test_a_tampered_full_tile_is_caught_against_its_parent() -> None:
    log = _Log(_entries(600))
    tampered = bytearray(log.files["tile/0/001"])
    tampered[100] ^= 1
    log.files["tile/0/001"] = bytes(tampered)
    reader = TileReader(600, log.root, log.fetch)  # only the right-edge tiles are read so far
    assert reader.inclusion_proof(10) == inclusion_path(log.leaves, 10)
    with pytest.raises(VerificationError, match=r"tile/0/001: hashes to .* its parent tile level 1 says"):
        reader.leaf_hash(300)


def test_a_bundle_that_does_not_hash_to_its_tile_is_refused() -> None:
    log = _Log(_entries(5))
    log.files["tile/entries/000.p/5"] = encode_bundle([b"entry 0", b"entry 1", b"forged", b"entry 3", b"entry 4"])
    reader = TileReader(5, log.root, log.fetch)
    with pytest.raises(VerificationError, match=r"tile/entries/000\.p/5: entry 2 does not hash to its leaf hash"):
        reader.entries(0)


def test_a_deleted_partial_tile_is_read_from_the_full_tile() -> None:
    # The log checkpointed at 260 and later at 600, then deleted the partial tiles of 260 that are now full.
    log = _Log(_entries(600))
    nodes = hashes_from_leaves(log.leaves)
    for tile in tiles_for_size(260):
        if tile not in (Tile(0, 1, 4),):
            log.files[tile.path()] = tile_data(tile, 600, nodes)
    assert "tile/0/001.p/4" not in log.files and "tile/entries/001.p/4" not in log.files
    reader = TileReader(260, root_from_leaf_hashes(log.leaves[:260]), log.fetch)
    assert log.fetched[:2] == ["tile/0/001.p/4", "tile/0/001"]
    assert reader.leaf_hash(259) == log.leaves[259]
    assert reader.entries(1) == log.entries[256:260]


def test_a_missing_tile_is_unavailable_not_a_lie() -> None:
    log = _Log(_entries(600))
    del log.files["tile/0/000"]
    reader = TileReader(600, log.root, log.fetch)
    with pytest.raises(TileUnavailable, match="tile/0/000 is not available"):
        reader.leaf_hash(0)


def test_reader_queries_outside_the_checkpoint_are_out_of_range() -> None:
    log = _Log(_entries(10))
    reader = TileReader(10, log.root, log.fetch)
    with pytest.raises(TileRangeError):
        reader.root_at(11)
    with pytest.raises(TileRangeError):
        reader.inclusion_proof(10)
    with pytest.raises(TileRangeError):
        reader.consistency_proof(0)
    with pytest.raises(TileRangeError):
        reader.entries(1)


def test_partial_tiles_are_the_right_edge_of_the_tree() -> None:
    assert partial_tiles(70_000) == [Tile(0, 273, 112), Tile(1, 1, 17), Tile(2, 0, 1)]
    assert partial_tiles(256) == [Tile(1, 0, 1)]
    assert partial_tiles(0) == []


def test_opening_a_huge_tree_reads_only_its_right_edge() -> None:
    size = 2**62 + 12345
    log = {t.path(): bytes(t.size) for t in partial_tiles(size)}
    fetched: list[str] = []

    def fetch(path: str) -> bytes | None:
        fetched.append(path)
        return log.get(path)

    with pytest.raises(VerificationError, match="lead to root"):
        TileReader(size, bytes(32), fetch)
    assert fetched == [t.path() for t in partial_tiles(size)]


def test_a_bundle_with_the_wrong_number_of_entries_is_refused_by_name() -> None:
    log = _Log(_entries(5))
    log.files["tile/entries/000.p/5"] = encode_bundle([b"entry 0"])
    reader = TileReader(5, log.root, log.fetch)
    with pytest.raises(VerificationError, match=r"tile/entries/000\.p/5: entry bundle: expected 5 entries, got 1"):
        reader.entries(0)
