"""The double-sign guard on disk: the safety record under one consensus key, its valid block under another.

Theory of operation
-------------------
The machine asks for its `SafetyRecord` to be made durable before every statement it signs, two to four times a
height, and the record carries the height's valid block whole (up to thousands of events), which rarely changes
within a height. So the store keeps the record in a small form, `StoredSafety`, that names the valid block by its
hash, and keeps the block itself under `SAFETY_BLOCK_KEY`. A write puts the record and, only when the valid block
is not the one stored already, puts the new block or deletes the old one -- all in one durable LMDB transaction
(`Store.write_consensus`). A crash at any instant therefore leaves a record whose block is stored, and a block
no longer named (the next height's first record has none) is gone with the write that stopped naming it.

`load` rebuilds exactly the record that was saved, checking that the stored block is the one the record names.
A store written before the block had its own key holds the record with its block inside under the same key; it
loads as it is and is rewritten in the small form by the next save. The two forms cannot be confused: a record
without a valid block has the same bytes in both, and with one, the last field is a block in the old form and a
hash in the new. Keeping the key also means a node downgraded to the old form refuses the new record loudly
rather than starting without its guard. Anything unreadable is a `StorageError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from credledger.consensus.safety import MAX_STATEMENTS, SafetyRecord
from credledger.ledger import codec
from credledger.ledger.block import Block
from credledger.ledger.codec import Bytes32, Range, Size
from credledger.ledger.errors import DecodeError, StorageError
from credledger.ledger.storage.store import Store
from credledger.ledger.votes import Height, PolRound, Round, Vote

#: Consensus key of the record (`StoredSafety`, or a whole `SafetyRecord` as written before the block's own key).
SAFETY_KEY = b"safety"
#: Consensus key of the valid block the record names, present exactly while the record names one.
SAFETY_BLOCK_KEY = b"safety/block"
#: Largest record or block read back: written by this node itself, so bounded only against a corrupt length.
MAX_STORED_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class StoredSafety:
    """A `SafetyRecord` as stored: the same fields, with the valid block named by its hash."""

    height: Height
    round: Round
    step: Annotated[int, Range(0, 2)]
    signed: Annotated[tuple[Vote, ...], Size(1, MAX_STATEMENTS)]
    locked_round: PolRound = -1
    locked_hash: Bytes32 | None = None
    valid_round: PolRound = -1
    valid_hash: Bytes32 | None = None

    def __post_init__(self) -> None:
        if (self.valid_round == -1) != (self.valid_hash is None):
            raise ValueError("a valid value needs both a round and a block hash")


class SafetyStore:
    """Saves and loads the safety record of one node's store; the only writer of its two keys."""

    def __init__(self, store: Store) -> None:
        self.store = store
        #: The hash of the block under SAFETY_BLOCK_KEY as last written or read here, None if there is none, b""
        #: while unknown (the next save then writes or deletes it).
        self._stored: bytes | None = b""

    def load(self) -> SafetyRecord | None:
        """The record last saved, with its valid block; None if none was."""
        raw = self.store.get_consensus(SAFETY_KEY)
        if raw is None:
            return None
        try:
            stored = codec.decode(StoredSafety, raw, max_bytes=MAX_STORED_BYTES)
        except DecodeError as exc:
            try:
                return codec.decode(SafetyRecord, raw, max_bytes=MAX_STORED_BYTES)  # the block inside: older form
            except DecodeError:
                raise StorageError(f"the stored safety record is unreadable: {exc}") from None
        block = None if stored.valid_hash is None else self._load_block(stored.valid_hash)
        try:
            record = SafetyRecord(
                stored.height,
                stored.round,
                stored.step,
                stored.signed,
                stored.locked_round,
                stored.locked_hash,
                stored.valid_round,
                block,
            )
        except ValueError as exc:
            raise StorageError(f"the stored safety record is inconsistent: {exc}") from None
        if block is not None:
            self._stored = stored.valid_hash
        return record

    def _load_block(self, valid_hash: bytes) -> Block:
        raw = self.store.get_consensus(SAFETY_BLOCK_KEY)
        if raw is None:
            raise StorageError(f"the safety record names valid block {valid_hash.hex()[:16]}, which is not stored")
        try:
            block = codec.decode(Block, raw, max_bytes=MAX_STORED_BYTES)
        except DecodeError as exc:
            raise StorageError(f"the stored valid block is unreadable: {exc}") from None
        if block.hash() != valid_hash:
            raise StorageError(
                f"the stored valid block is {block.hash().hex()[:16]}, the safety record names {valid_hash.hex()[:16]}"
            )
        return block

    def save(self, record: SafetyRecord) -> None:
        """Make `record` durable, writing its valid block only if it is not the one stored already."""
        block = record.valid_block
        valid_hash = None if block is None else block.hash()
        stored = StoredSafety(
            record.height,
            record.round,
            record.step,
            record.signed,
            record.locked_round,
            record.locked_hash,
            record.valid_round,
            valid_hash,
        )
        puts = {SAFETY_KEY: codec.encode(stored)}
        deletes: tuple[bytes, ...] = ()
        if valid_hash != self._stored:
            if block is None:
                deletes = (SAFETY_BLOCK_KEY,)
            else:
                puts[SAFETY_BLOCK_KEY] = codec.encode(block)
        self.store.write_consensus(puts, deletes)
        self._stored = valid_hash
