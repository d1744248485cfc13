"""Tessera's published test log (tests/vectors/tessera) checks out with ledger.note and ledger.tiles."""

from __future__ import annotations

import pytest

from credledger.ledger.errors import VerificationError
from credledger.ledger.keys import PublicKey
from credledger.ledger.merkle import verify_consistency, verify_inclusion
from credledger.ledger.note import SignedNote, open_note
from credledger.ledger.tiles import Tile, TileReader, parse_path
from credledger.ledger.treehead import TreeHead
from tests.conftest import VECTORS

TESSERA = VECTORS / "tessera"
ENTRIES = [
    b"one", b"two", b"three", b"four", b"five", b"six", b"seven", b"eit",
    b"nain", b"ten", b"ileven", b"twelf", b"threeten", b"fourten", b"fivten",
]  # fmt: skip
SIZES = range(len(ENTRIES) + 1)


def _key() -> PublicKey:
    return PublicKey.from_vkey((TESSERA / "log.vkey").read_text())


def _fetch(path: str) -> bytes | None:
    file = TESSERA / path
    return file.read_bytes() if file.is_file() else None


def _head(size: int) -> TreeHead:
    note = SignedNote.parse((TESSERA / f"checkpoint.{size}").read_bytes())
    assert open_note(note, [_key()]) == [_key()]
    return TreeHead.parse(note.text)


@pytest.mark.parametrize("size", SIZES)
def test_every_checkpoint_is_signed_by_the_log_key_and_names_its_size(size: int) -> None:
    head = _head(size)
    assert (head.origin, head.size, head.extensions) == ("example.com/log/testdata", size, ())


def test_the_latest_checkpoint_is_the_one_of_size_15() -> None:
    assert (TESSERA / "checkpoint").read_bytes() == (TESSERA / "checkpoint.15").read_bytes()


@pytest.mark.parametrize("size", SIZES[1:])
def test_tiles_lead_to_each_checkpoints_root_and_its_entries(size: int) -> None:
    head = _head(size)
    reader = TileReader(head.size, head.root, _fetch)
    assert reader.entries(0) == ENTRIES[:size]
    for index in range(size):
        verify_inclusion(reader.leaf_hash(index), index, size, reader.inclusion_proof(index), head.root)


@pytest.mark.parametrize("size", SIZES[2:])
def test_every_older_checkpoint_is_consistent_with_each_newer_one(size: int) -> None:
    head = _head(size)
    reader = TileReader(head.size, head.root, _fetch)
    for old in range(1, size):
        assert reader.root_at(old) == _head(old).root
        verify_consistency(old, size, reader.consistency_proof(old), _head(old).root, head.root)


def test_every_tile_file_has_its_one_canonical_path() -> None:
    files = sorted(p.relative_to(TESSERA).as_posix() for p in (TESSERA / "tile").rglob("*") if p.is_file())
    assert len(files) == 30
    assert all(parse_path(path).path() == path for path in files)
    assert {parse_path(path) for path in files if path.startswith("tile/0/")} == {Tile(0, 0, w) for w in SIZES[1:]}


def test_a_checkpoint_root_from_another_size_does_not_match_the_tiles() -> None:
    with pytest.raises(VerificationError, match="tiles of the tree of size 7 lead to root"):
        TileReader(7, _head(8).root, _fetch)
