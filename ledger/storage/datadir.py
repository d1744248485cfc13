"""A node's data directory opened read-only, and the comparisons an auditor makes against its files.

Theory of operation
-------------------
A data directory is read through raw LMDB read transactions on an environment opened read-only -- not through
`Store`, which writes on open -- so an auditor can examine a node's files while the node runs, and reads exactly
the bytes the node stored. `DataDir` is a block source like a node's API (certified blocks by height, consistency
proofs), and it can say more: after each replayed block, `DataDir.compare_block` checks the node's own stored log
nodes, state-map nodes and state root against what the replay produced, so an altered file is caught at the block
the altered data belongs to, even where the altered data would only show in some later proof. A node with a bounded
state history has forgotten the state roots before its history and deleted the nodes only they held: for those
heights the nodes it still stores must each be the replay's, and from its oldest kept height on, all of them. At
the end, `compare_tail` checks the indexes the node keeps for the latest state only: event ids and the
validator-set schedule.

This module is the only reader of the key layout besides the store itself: key layouts follow
`ledger.storage.schema`; log tiles follow the layout documented in `ledger.storage.log` (tile height H from
``LOG_META b"tile-height"``; tile (t, j) under key ((j << H) | 1) << tH holding rows of 2^(H-r) hashes of level
tH + r).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import lmdb

from credledger.ledger import merkle
from credledger.ledger.block import Block, CertifiedBlock, Header, decode_header
from credledger.ledger.errors import CredledgerError, DecodeError, StorageError
from credledger.ledger.merkle import HASH_SIZE
from credledger.ledger.note import MAX_NOTE_BYTES, SignedNote
from credledger.ledger.storage import schema
from credledger.ledger.storage.log import TILE_HEIGHT_KEY, MerkleLog
from credledger.ledger.storage.smtupdate import GROUPED_TABLES, group_prefix
from credledger.ledger.storage.store import Store
from credledger.ledger.tiles import EntryBundle, Tile, TileRangeError, encode_bundle, tile_data

#: The directory inside a node's data_dir that holds its LMDB environment (the node opens data_dir / "ledger").
LEDGER_DIR = "ledger"
#: LMDB's data file: a directory holding one holds an environment.
LMDB_DATA_FILE = "data.mdb"
#: The file in a node's data_dir where a witnessed node keeps its latest checkpoint with the outside witnesses'
#: cosignatures (`node.witnessing`), written whole and verified by the node before it is kept.
COSIGNED_FILE = "cosigned-checkpoint"
#: The largest 8-byte key prefix, which has no successor.
_LAST_U64 = b"\xff" * 8


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """The first thing found that does not match what the network certified. `kind` names what was wrong."""

    height: int
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"block {self.height}: {self.kind}: {self.detail}"


class AuditDiscrepancy(CredledgerError):
    """Raised inside the audit to stop at the first discrepancy; carries it."""

    code = "audit-discrepancy"

    def __init__(self, discrepancy: Discrepancy) -> None:
        super().__init__(str(discrepancy))
        self.discrepancy = discrepancy


class ReplayView:
    """The replay store's LMDB databases, opened once, that the comparisons read."""

    def __init__(self, env: lmdb.Environment) -> None:
        self.env = env
        self.headers = env.open_db(schema.CHAIN_HEADERS, create=False)
        self.ids = env.open_db(schema.CHAIN_EVENT_IDS, create=False)
        self.valsets = env.open_db(schema.CHAIN_VALSETS, create=False)
        self.smt_groups = _node_groups(lambda name: env.open_db(name, create=False), lambda name: True)
        self.log_nodes = env.open_db(schema.LOG_NODES, create=False)

    @classmethod
    def of(cls, store: Store) -> ReplayView:
        """The view of a replay store this process writes."""
        return cls(store.env)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> ReplayView:
        """The view of a replay store another process writes, opened read-only."""
        return cls(schema.open_env(path, readonly=True))


def ledger_path(path: str | os.PathLike[str]) -> Path:
    """The LMDB environment in a node's data directory given as node.toml names it (`data_dir`, which holds the
    lock file and the ledger directory) or as that ledger directory itself. StorageError if neither holds one."""
    given = Path(path)
    if not given.is_dir():
        raise StorageError(f"{os.fspath(path)}: no such directory")
    for candidate in (given, given / LEDGER_DIR):
        if (candidate / LMDB_DATA_FILE).is_file():
            return candidate
    raise StorageError(
        f"{os.fspath(path)} holds no ledger: expected a node's data directory as node.toml's data_dir names it "
        f"(holding {LEDGER_DIR}/{LMDB_DATA_FILE}) or the {LEDGER_DIR} directory inside it (holding {LMDB_DATA_FILE})"
    )


class DataDir:
    """A node's data directory, opened read-only (no lock file is written, nothing is changed)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.name = os.fspath(path)
        ledger = ledger_path(path)
        self._ledger = ledger
        try:
            self.env = schema.open_env(ledger, readonly=True)
            open_db = self.env.open_db
            self._headers = open_db(schema.CHAIN_HEADERS, create=False)
            self._certs = open_db(schema.CHAIN_CERTS, create=False)
            self._entries = open_db(schema.CHAIN_ENTRIES, create=False)
            self._ids = open_db(schema.CHAIN_EVENT_IDS, create=False)
            self._valsets = open_db(schema.CHAIN_VALSETS, create=False)
            self._meta = open_db(schema.CHAIN_META, create=False)
            # A store of schema 1 that no node of schema 2 has opened has only SMT_NODES of the state's databases
            # (named databases are keys of the main one).
            with self.env.begin() as txn:
                present = {name for _, name in GROUPED_TABLES if txn.get(name) is not None}
            self._smt_groups = _node_groups(lambda name: open_db(name, create=False), present.__contains__)
            self._smt_roots = open_db(schema.SMT_ROOTS, create=False)
            self._log_nodes = open_db(schema.LOG_NODES, create=False)
            self._log_meta = open_db(schema.LOG_META, create=False)
            self.log = MerkleLog(self.env)
        except lmdb.Error as exc:
            raise StorageError(f"{self.name}: cannot open the node's LMDB environment read-only ({exc})") from None

    def close(self) -> None:
        self.env.close()

    def schema_version(self) -> int | None:
        """The store's schema version (None: the store was never initialized)."""
        with self.env.begin() as txn:
            found = txn.get(schema.SCHEMA_KEY, db=self._meta)
            return None if found is None else schema.from_u64(found)

    def state_grouped_from(self) -> int:
        """The first state version whose nodes the node stored by group (`schema.grouped_from`)."""
        with self.env.begin() as txn:
            return schema.grouped_from(txn, self._meta)

    # --- BlockSource --------------------------------------------------------------------------------------------

    def height(self) -> int:
        with self.env.begin() as txn, txn.cursor(db=self._headers) as cursor:
            return schema.from_u64(cursor.key()) if cursor.last() else 0

    def block(self, height: int) -> CertifiedBlock:
        key = schema.u64(height)
        with self.env.begin() as txn:
            raw_header = txn.get(key, db=self._headers)
            raw_cert = txn.get(key, db=self._certs)
            if raw_header is None or raw_cert is None:
                raise AuditDiscrepancy(Discrepancy(height, "block", "the header or certificate is missing"))
            try:
                header = decode_header(bytes(raw_header))
            except DecodeError as exc:
                raise AuditDiscrepancy(
                    Discrepancy(height, "header", f"the stored header is malformed: {exc}")
                ) from None
            try:
                certificate = bytes(raw_cert).decode()
            except UnicodeDecodeError:
                raise AuditDiscrepancy(Discrepancy(height, "certificate", "the stored note is not UTF-8")) from None
            first = header.log_size - header.event_count
            if first < 0:
                raise AuditDiscrepancy(Discrepancy(height, "header", "the header counts more events than the log"))
            events = []
            for index in range(first, header.log_size):
                raw = txn.get(schema.u64(index), db=self._entries)
                if raw is None:
                    raise AuditDiscrepancy(Discrepancy(height, "event", f"log entry {index} is missing"))
                events.append(bytes(raw))
        return CertifiedBlock(Block(header, tuple(events)), certificate)

    def consistency(self, size1: int, size2: int) -> list[bytes]:
        with self.env.begin() as txn:
            return self.log.consistency_proof(txn, size1, size2)

    # --- the log as C2SP tlog-tiles ------------------------------------------------------------------------------

    def cosigned_note(self) -> str | None:
        """The checkpoint the node keeps with its witnesses' cosignatures (in data_dir, beside the ledger), if any."""
        for folder in (self._ledger.parent, self._ledger):
            try:
                with open(folder / COSIGNED_FILE, "rb") as file:
                    data = file.read(MAX_NOTE_BYTES + 1)
            except OSError:
                continue
            try:
                return None if len(data) > MAX_NOTE_BYTES else data.decode()
            except UnicodeDecodeError:
                return None
        return None

    @contextmanager
    def tiles(self) -> Iterator[TileSnapshot]:
        """The log's tiles as of the latest certified block, all read from one transaction."""
        with self.env.begin() as txn:
            yield TileSnapshot(self, txn)

    # --- comparing the node's files with the replay ------------------------------------------------------------

    def compare_block(self, replay: ReplayView, header: Header) -> None:
        """Check this node's stored data for block `header` against the replay's; raise `AuditDiscrepancy`."""
        height = header.height
        first = header.log_size - header.event_count
        with self.env.begin() as mine, replay.env.begin() as theirs:
            root = mine.get(schema.u64(height), db=self._smt_roots)
            with mine.cursor(db=self._smt_roots) as cursor:
                pruned = root is None and cursor.first() and height < schema.from_u64(cursor.key())
            if pruned:
                self._compare_state_nodes(mine, theirs, replay, height, pruned=True)
            elif root is None or bytes(root)[8:] != header.state_root:
                found = "none" if root is None else bytes(root)[8:].hex()[:16]
                raise AuditDiscrepancy(
                    Discrepancy(
                        height,
                        "state-root",
                        f"the node stores state root {found} for this height, the certified header "
                        f"{header.state_root.hex()[:16]}",
                    )
                )
            else:
                self._compare_state_nodes(mine, theirs, replay, height, pruned=False)
            self._compare_log(mine, theirs, replay, first, header.log_size)

    def compare_tail(self, replay: ReplayView, size: int) -> None:
        """After the last block: the partly filled log tiles at the right edge, the event-id index and the
        validator-set schedule (entries the node wrote for later blocks are left alone)."""
        with self.env.begin() as mine, replay.env.begin() as theirs:
            tile_height = _tile_height(mine, self._log_meta)
            for level in range(0, max(size.bit_length(), 1), tile_height):
                span = 1 << (level + tile_height)
                tile = size // span
                key = ((tile << tile_height) | 1) << level
                if size % span == 0 or key > size:
                    continue  # no partly filled tile at this tile level
                filled = [
                    max(0, min(1 << (tile_height - r), (size >> (level + r)) - (tile << (tile_height - r))))
                    for r in range(tile_height)
                ]
                self._compare_tile(mine, theirs, replay, key, tile_height=tile_height, level=level, filled=filled)
            for event_id, index in theirs.cursor(db=replay.ids):
                if mine.get(event_id, db=self._ids) != index:
                    raise AuditDiscrepancy(
                        Discrepancy(
                            _height_of_leaf(theirs, replay, schema.from_u64(index)),
                            "event-index",
                            f"the node's event-id index does not map event {bytes(event_id).hex()[:16]} to log "
                            f"index {schema.from_u64(index)}",
                        )
                    )
            for valset_key, value in theirs.cursor(db=replay.valsets):
                if mine.get(valset_key, db=self._valsets) != value:
                    starts = schema.from_u64(valset_key)
                    raise AuditDiscrepancy(
                        Discrepancy(
                            max(starts - 2, 0),
                            "validator-set",
                            f"the node's stored validator set from height {starts} differs from the replay's",
                        )
                    )

    def _compare_state_nodes(
        self,
        mine: lmdb.Transaction[bytes],
        theirs: lmdb.Transaction[bytes],
        replay: ReplayView,
        height: int,
        *,
        pruned: bool,
    ) -> None:
        # Node refs start with their group and the version (height) that created them, so one block's nodes are one
        # key range of each group's database. Of a height before the node's state history, it keeps the nodes later
        # heights still hold: a subset.
        expected: list[tuple[bytes, bytes]] = []
        found: list[tuple[bytes, bytes]] = []
        for group, db in replay.smt_groups.items():
            prefix = group_prefix(group, height)
            expected += _range(theirs, db, prefix)
            if group in self._smt_groups:
                found += _range(mine, self._smt_groups[group], prefix)
        wrong = set(found) - set(expected) if pruned else set(found) ^ set(expected)
        if wrong:
            differing = sorted(wrong)[0][0]
            raise AuditDiscrepancy(
                Discrepancy(
                    height,
                    "state-node",
                    f"the node's state-map node {differing[8:].hex()[:16]} of this block differs from the replay "
                    f"({len(found)} nodes stored, {len(expected)} replayed)",
                )
            )

    def _compare_log(
        self,
        mine: lmdb.Transaction[bytes],
        theirs: lmdb.Transaction[bytes],
        replay: ReplayView,
        old: int,
        new: int,
    ) -> None:
        """Compare the tiles that became complete when the log grew from `old` to `new` leaves."""
        if new == old:
            return
        tile_height = _tile_height(mine, self._log_meta)
        full = [1 << (tile_height - r) for r in range(tile_height)]
        level = 0
        while (new >> level) > 0:
            span = 1 << (level + tile_height)
            # Tile j of this tile level is complete once the log holds (j + 1) * span leaves.
            for j in range(old // span, new // span):
                key = ((j << tile_height) | 1) << level
                self._compare_tile(mine, theirs, replay, key, tile_height=tile_height, level=level, filled=full)
            level += tile_height

    def _compare_tile(
        self,
        mine: lmdb.Transaction[bytes],
        theirs: lmdb.Transaction[bytes],
        replay: ReplayView,
        key: int,
        *,
        tile_height: int,
        level: int,
        filled: list[int],
    ) -> None:
        """Compare the first `filled[r]` hashes of each row r of one tile; name the first node that differs."""
        packed = schema.u64(key)
        stored = mine.get(packed, db=self._log_nodes)
        replayed = theirs.get(packed, db=replay.log_nodes)
        if stored is not None and stored == replayed:
            return
        stored_bytes = b"" if stored is None else bytes(stored)
        replayed_bytes = b"" if replayed is None else bytes(replayed)
        tile_index = (key >> level) >> tile_height
        offset = 0
        for row, count in enumerate(filled):
            width = 1 << (tile_height - row)
            for slot in range(count):
                at = (offset + slot) * HASH_SIZE
                if stored_bytes[at : at + HASH_SIZE] != replayed_bytes[at : at + HASH_SIZE]:
                    node_level = level + row
                    node_index = tile_index * width + slot
                    raise AuditDiscrepancy(
                        Discrepancy(
                            _height_of_leaf(theirs, replay, ((node_index + 1) << node_level) - 1),
                            "log-node",
                            f"the node's log node (level {node_level}, index {node_index}) is "
                            f"{merkle.b64(stored_bytes[at : at + HASH_SIZE]) or 'missing'}, the replay gives "
                            f"{merkle.b64(replayed_bytes[at : at + HASH_SIZE])}",
                        )
                    )
            offset += width


class TileSnapshot:
    """The latest checkpoint of a data directory and the tiles and entry bundles of its tree (`DataDir.tiles`)."""

    def __init__(self, datadir: DataDir, txn: lmdb.Transaction[bytes]) -> None:
        self._datadir = datadir
        self._txn = txn
        self.size = datadir.log.size(txn)
        with txn.cursor(db=datadir._certs) as cursor:
            raw = cursor.value() if cursor.last() else None
        #: The latest commit certificate (a checkpoint note of the tree of `size`), None before the first block,
        #: with the outside witnesses' cosignatures if the node keeps them for it.
        self.checkpoint = None if raw is None else _with_cosignatures(bytes(raw).decode(), datadir.cosigned_note())

    def data(self, item: Tile | EntryBundle) -> bytes:
        """The bytes of a tile or entry bundle of the tree of `size`; `TileRangeError` if it does not have it."""
        if isinstance(item, Tile):
            return tile_data(item, self.size, self.node_hashes)
        if item.end > self.size:
            raise TileRangeError(f"{item.path()} covers entries up to {item.end}, the log has {self.size}")
        entries = []
        for index in range(item.start, item.end):
            raw = self._txn.get(schema.u64(index), db=self._datadir._entries)
            if raw is None:
                raise StorageError(f"log entry {index} is missing")
            entries.append(bytes(raw))
        return encode_bundle(entries)

    def node_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        return self._datadir.log.node_hashes(self._txn, level, start, end)

    def root(self, size: int) -> bytes:
        """The root of the tree of `size` entries (at most `self.size`)."""
        return self._datadir.log.root(self._txn, size)


def _tile_height(txn: lmdb.Transaction[bytes], meta: lmdb._Database) -> int:
    raw = txn.get(TILE_HEIGHT_KEY, db=meta)
    if raw is None:
        raise StorageError("the log has no tile height stored")
    return schema.from_u64(bytes(raw))


def _node_groups(open_db: Callable[[bytes], lmdb._Database], has: Callable[[bytes], bool]) -> dict[int, lmdb._Database]:
    """The state map's databases a store has (`has` says which of the grouped ones), by the group of the refs they
    hold (group 0: ``SMT_NODES``)."""
    groups = {0: open_db(schema.SMT_NODES)}
    for group, name in GROUPED_TABLES:
        if has(name):
            groups[group] = open_db(name)
    return groups


def _range(txn: lmdb.Transaction[bytes], db: lmdb._Database, prefix: bytes) -> list[tuple[bytes, bytes]]:
    """Every (key, value) whose 8-byte key prefix is `prefix`, in key order."""
    # (end,) > (key, value) exactly when key < end: a comparison made in C, item by item.
    below_end = (schema.u64(schema.from_u64(prefix) + 1),).__gt__ if prefix != _LAST_U64 else None
    with txn.cursor(db=db) as cursor:
        if not cursor.set_range(prefix):
            return []
        items = cursor.iternext()
        return list(items if below_end is None else itertools.takewhile(below_end, items))


def _height_of_leaf(txn: lmdb.Transaction[bytes], replay: ReplayView, index: int) -> int:
    """The height of the block that appended leaf `index`, from the replay's headers (binary search)."""
    headers = replay.headers
    with txn.cursor(db=headers) as cursor:
        hi = schema.from_u64(cursor.key()) if cursor.last() else 0
    lo = 1
    while lo < hi:
        mid = (lo + hi) // 2
        raw = txn.get(schema.u64(mid), db=headers)
        if raw is not None and decode_header(bytes(raw)).log_size > index:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _with_cosignatures(certificate: str, kept: str | None) -> str:
    """The kept note if it is `certificate` with more signature lines (its witnesses' cosignatures), else
    `certificate`: a kept note of an older block, or one that is not this certificate, is left out."""
    if kept is None:
        return certificate
    try:
        ours, theirs = SignedNote.parse(certificate), SignedNote.parse(kept)
    except DecodeError:
        return certificate
    if theirs.text != ours.text or not set(ours.signatures) <= set(theirs.signatures):
        return certificate
    return theirs.format()
