"""The RFC 6962 Merkle log over every committed event, persisted in LMDB.

Theory of operation
-------------------
Only *complete* subtrees are stored. Node (level l, index k) is the root of leaves [k·2^l, (k+1)·2^l); it is
complete once the log holds (k+1)·2^l leaves, and from then on it never changes, whatever is appended later. The
root of the tree at any historical size n, and every sibling an RFC 9162 proof needs, is either a complete node
or the root of a *right-edge* range [a, n), which splits by the binary digits of n - a into complete nodes that
are folded right to left (RFC 9162 §2.1.1). So roots and proofs for every size ≤ the current one come from the
same stored nodes, and nothing of the tree is held in memory between calls.

Nodes are packed in *tiles* of height H (`tile_height`, default 5). Tile (t, j) holds tree levels tH … tH+H-1
of one aligned subtree: row r (level tH+r) is the 2^(H-r) hashes with indices [j·2^(H-r), (j+1)·2^(H-r)), rows
stored one after the other at fixed offsets, 2^(H+1)-2 hashes in all (1,984 bytes for H = 5: two tiles fill one
4 KiB LMDB page). A proof touches one tile per H levels (four tiles for a million leaves) instead of one record
per level. Slots of nodes that are not complete yet hold zeros, so a tile's value always has the same length.

Key layout (schema version 1)::

    LOG_META   b"size"        -> u64 number of leaves
    LOG_META   b"tile-height" -> u64 H, fixed by the first append
    LOG_NODES  u64(s)         -> tile bytes, where s = (j·2^H + 1)·2^(tH) is the tree size at which
                                 tile (t, j) received its first hash

The odd factor of s gives j and its power of two gives t, so every tile has its own key; and because keys are
"when the tile began", the tiles a block creates sort after every existing key. They are therefore written with
LMDB's append mode, which fills pages completely, while the one partly filled tile per tile level at the right
edge is rewritten in place at its fixed length.

Transactions belong to the caller: every method takes an open `lmdb.Transaction`, and the log never begins,
commits or aborts one, so a whole block (events, log, state, certificate) is written atomically by the store.

Bad arguments (an index or size outside the tree, an empty first tree for a consistency proof) raise
`LogRangeError`, which is both a `CredledgerError` and a `ValueError`; the API answers it with 400.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import lmdb

from credledger.ledger.domains import LOG_NODE
from credledger.ledger.errors import CredledgerError, StorageError
from credledger.ledger.merkle import EMPTY_ROOT, HASH_SIZE
from credledger.ledger.storage import schema

#: Tree levels per tile: 5 makes a tile 1,984 bytes, so two fill one 4 KiB LMDB page.
DEFAULT_TILE_HEIGHT = 5
#: A taller tile would exceed half a page and spill into LMDB overflow pages; lower heights exist for tests.
MAX_TILE_HEIGHT = 5

_SIZE_KEY = b"size"
TILE_HEIGHT_KEY = b"tile-height"
_sha256 = hashlib.sha256
_U64 = struct.Struct(">Q")
#: Tree sizes are u64, so no tree has more than 64 levels below its root.
_MAX_LEVELS = 64
#: Upper paths a `SharedPaths` keeps: one per 2^H leaves, so the default covers 131,072 leaves at H = 5.
SHARED_PATHS = 4_096

#: Per tree level: (tile level * H, log2 of the level's row width in a tile, the row's first slot in the tile).
_LevelTable = tuple[tuple[int, int, int], ...]


def _level_table(height: int) -> _LevelTable:
    table = []
    for level in range(_MAX_LEVELS):
        tile_level, row = divmod(level, height)
        # Row r of a tile starts after rows 0 … r-1, which hold 2^H + … + 2^(H-r+1) hashes.
        table.append((tile_level * height, height - row, (1 << (height + 1)) - (1 << (height - row + 1))))
    return tuple(table)


class LogRangeError(CredledgerError, ValueError):
    """A leaf index or tree size that the log cannot answer for (outside the tree, or an empty first tree)."""

    code = "out-of-range"


class _Tiles:
    """Reads stored nodes from one transaction, fetching each tile at most once per call."""

    __slots__ = ("_cache", "_db", "_height", "_levels", "_txn")

    def __init__(self, txn: lmdb.Transaction, db: lmdb._Database, height: int, levels: _LevelTable) -> None:
        self._txn = txn
        self._db = db
        self._height = height
        self._levels = levels
        # Keyed by the tile's key as an integer (see the key layout above).
        self._cache: dict[int, bytes] = {}

    def tile_key(self, tile_level: int, tile_index: int) -> int:
        """The tree size at which tile (tile_level, tile_index) received its first hash: its LMDB key."""
        return ((tile_index << self._height) | 1) << (tile_level * self._height)

    def tile(self, key: int) -> bytes:
        """The stored tile with this key; raises `StorageError` if it is missing."""
        data = self._cache.get(key)
        if data is None:
            value = self._txn.get(_U64.pack(key), db=self._db)
            if value is None:
                raise StorageError(f"log tile with key {key} is missing")
            # bytes() keeps results valid after the transaction ends even if it was opened with buffers=True.
            data = self._cache[key] = bytes(value)
        return data

    def node(self, level: int, index: int) -> bytes:
        """The hash of complete node (level, index)."""
        # The hot path of every proof: the per-level arithmetic is precomputed and the cache lookup inlined.
        base, shift, row_offset = self._levels[level]
        tile_index = index >> shift
        key = ((tile_index << self._height) | 1) << base
        data = self._cache.get(key)
        if data is None:
            data = self.tile(key)
        start = (row_offset + index - (tile_index << shift)) * HASH_SIZE
        return data[start : start + HASH_SIZE]

    def range_root(self, start: int, end: int) -> bytes:
        """MTH of leaves [start, end), where start is a multiple of a power of two that is ≥ end - start.

        Such a range splits into one complete node per set bit of end - start, largest first (RFC 9162 §2.1.1
        splits at the largest power of two below the size, again and again).
        """
        parts: list[bytes] = []
        remaining = end - start
        position = start
        while remaining:
            level = remaining.bit_length() - 1
            parts.append(self.node(level, position >> level))
            position += 1 << level
            remaining -= 1 << level
        root = parts.pop()
        while parts:
            root = _sha256(LOG_NODE + parts.pop() + root).digest()
        return root

    def path(self, level: int, index: int, size: int, below: int = _MAX_LEVELS) -> list[bytes]:
        """Siblings of node (level, index) from its level up to the root of the tree of `size` leaves, or only
        those below level `below` (the rest are the path of node (below, index >> (below - level))).

        A level where the path's node has no sibling (it is the last node and a left child) contributes nothing:
        RFC 6962 carries such a node up unchanged.
        """
        proof: list[bytes] = []
        last = (size - 1) >> level  # index of the last, possibly incomplete, node at this level
        while last and level < below:
            sibling = index ^ 1
            if sibling < last or (sibling == last and not size & ((1 << level) - 1)):
                proof.append(self.node(level, sibling))
            elif sibling == last:
                proof.append(self.range_root(sibling << level, size))
            index >>= 1
            last >>= 1
            level += 1
        return proof


class SharedPaths:
    """Inclusion proofs in the tree of one size, sharing their upper parts: mostly one tile read per proof.

    A leaf's path splits at the lowest tile level's top: below it, the siblings within the leaf's own tile (one
    tile read); above it, the path of the tile's top node, which every leaf of that tile shares. The upper paths
    are kept, up to `limit` of them, so after the first proof under a tile the others read only their own tile
    and fold no right edge. A tree of one size never changes, so nothing kept goes stale; the size must be one
    the log has reached (`MerkleLog.shared_paths`). Not safe across threads.
    """

    __slots__ = ("_db", "_height", "_levels", "_limit", "_upper", "size")

    def __init__(self, db: lmdb._Database, height: int, levels: _LevelTable, size: int, limit: int) -> None:
        self._db = db
        self._height = height
        self._levels = levels
        self._limit = limit
        self._upper: dict[int, list[bytes]] = {}
        self.size = size

    def inclusion_proof(self, txn: lmdb.Transaction, index: int) -> list[bytes]:
        """`MerkleLog.inclusion_proof(txn, index, self.size)`, read from `txn` (any transaction that sees the log
        at this size or later)."""
        size = self.size
        if not 0 <= index < size:
            raise LogRangeError(f"inclusion proof: expected 0 <= index < tree size {size}, got {index}")
        height = self._height
        tiles = _Tiles(txn, self._db, height, self._levels)
        top = index >> height
        upper = self._upper.get(top)
        if upper is None:
            upper = tiles.path(height, top, size)
            if len(self._upper) >= self._limit:
                self._upper.clear()
            self._upper[top] = upper
        return tiles.path(0, index, size, height) + upper


class MerkleLog:
    """The append-only RFC 6962 tree of all committed events, stored in the env's `LOG_*` databases.

    Construct it outside any transaction (it opens the databases and reads the stored tile height), once per
    environment; it keeps no state between calls, so one instance serves every thread.
    """

    def __init__(self, env: lmdb.Environment, *, tile_height: int = DEFAULT_TILE_HEIGHT) -> None:
        if not 1 <= tile_height <= MAX_TILE_HEIGHT:
            raise ValueError(f"tile height must be in [1, {MAX_TILE_HEIGHT}], got {tile_height}")
        self._height = tile_height
        self._levels = _level_table(tile_height)
        try:
            self._meta = env.open_db(schema.LOG_META, create=False)
            self._nodes = env.open_db(schema.LOG_NODES, create=False)
        except lmdb.NotFoundError:
            raise StorageError("the log databases are missing: open the environment with schema.open_env") from None
        with env.begin() as txn:
            self._check_tile_height(txn)

    def size(self, txn: lmdb.Transaction) -> int:
        """The number of leaves in the log as seen by `txn`."""
        value = txn.get(_SIZE_KEY, db=self._meta)
        return 0 if value is None else schema.from_u64(bytes(value))

    def append(self, txn: lmdb.Transaction, leaf_hashes: Sequence[bytes]) -> int:
        """Append leaves (their RFC 9162 leaf hashes, in order) in the write transaction `txn`; return the new size.

        Meant to be called once per block: the new nodes are hashed level by level and each tile is written once.
        A leaf hash that is not 32 bytes raises `StorageError` before anything is written.
        """
        for position, value in enumerate(leaf_hashes):
            if len(value) != HASH_SIZE:
                raise StorageError(f"leaf hash {position}: expected {HASH_SIZE} bytes, got {len(value)}")
        old = self.size(txn)
        if not leaf_hashes:
            return old
        # Checked again here, not only when opening: another instance may have begun the log since.
        if not self._check_tile_height(txn):
            txn.put(TILE_HEIGHT_KEY, schema.u64(self._height), db=self._meta)
        new = old + len(leaf_hashes)
        tiles = self._tiles(txn)

        # rows[l] holds the nodes of level l that become complete in this append: indices [old >> l, new >> l).
        rows: list[bytes] = []
        row = list(leaf_hashes)
        first = old
        level = 0
        while row:
            rows.append(b"".join(row))
            # A new node with an odd index pairs with its stored left sibling.
            children = [tiles.node(level, first - 1), *row] if first & 1 else row
            row = [_sha256(LOG_NODE + a + b).digest() for a, b in zip(children[0::2], children[1::2], strict=False)]
            first >>= 1
            level += 1

        rewritten, created = self._build_tiles(tiles, rows, old, new)
        for key, value in rewritten:
            txn.put(key, value, db=self._nodes)
        created.sort()
        with txn.cursor(db=self._nodes) as cursor:
            _, added = cursor.putmulti(created, append=True)
        if added != len(created):
            raise StorageError(f"log tiles: expected to add {len(created)} new tiles after the last key, added {added}")
        txn.put(_SIZE_KEY, schema.u64(new), db=self._meta)
        return new

    def _build_tiles(
        self, tiles: _Tiles, rows: list[bytes], old: int, new: int
    ) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        """The tiles that the new nodes in `rows` go into: (tiles that already exist, tiles that are new)."""
        height = self._height
        rewritten: list[tuple[bytes, bytes]] = []
        created: list[tuple[bytes, bytes]] = []
        for tile_level in range((len(rows) + height - 1) // height):
            base = tile_level * height
            first_tile = (old >> base) >> height
            last_tile = ((new >> base) - 1) >> height
            # Only the first tile of a tile level can already hold nodes: those of leaves before `old`.
            existing = (old >> base) > (first_tile << height)
            previous = tiles.tile(tiles.tile_key(tile_level, first_tile)) if existing else b""
            for tile_index in range(first_tile, last_tile + 1):
                parts: list[bytes] = []
                offset = 0
                for row_number in range(height):
                    level = base + row_number
                    width = 1 << (height - row_number)
                    row_start = tile_index * width
                    row_end = row_start + width
                    first_new, end_new = old >> level, new >> level
                    if first_new > row_start:
                        kept = min(first_new, row_end) - row_start
                        parts.append(previous[offset * HASH_SIZE : (offset + kept) * HASH_SIZE])
                    low, high = max(row_start, first_new), min(row_end, end_new)
                    if high > low:
                        parts.append(rows[level][(low - first_new) * HASH_SIZE : (high - first_new) * HASH_SIZE])
                    filled = max(0, min(row_end, end_new) - row_start)
                    if filled < width:
                        parts.append(bytes((width - filled) * HASH_SIZE))
                    offset += width
                item = (_U64.pack(tiles.tile_key(tile_level, tile_index)), b"".join(parts))
                (rewritten if existing and tile_index == first_tile else created).append(item)
        return rewritten, created

    def root(self, txn: lmdb.Transaction, size: int | None = None) -> bytes:
        """The tree root at `size` leaves (default: the current size); any size from 0 to the current one."""
        size = self._check_size(txn, size)
        if size == 0:
            return EMPTY_ROOT
        return self._tiles(txn).range_root(0, size)

    def leaf_hash(self, txn: lmdb.Transaction, index: int) -> bytes:
        """The leaf hash at `index`."""
        current = self.size(txn)
        if not 0 <= index < current:
            raise LogRangeError(f"leaf index: expected 0 <= index < {current}, got {index}")
        return self._tiles(txn).node(0, index)

    def inclusion_proof(self, txn: lmdb.Transaction, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.3.1 inclusion proof of leaf `index` in the tree of `size` leaves (default: current)."""
        size = self._check_size(txn, size)
        if not 0 <= index < size:
            raise LogRangeError(f"inclusion proof: expected 0 <= index < tree size {size}, got {index}")
        return self._tiles(txn).path(0, index, size)

    def shared_paths(self, txn: lmdb.Transaction, size: int, limit: int = SHARED_PATHS) -> SharedPaths:
        """Inclusion proofs in the tree of `size` leaves (at most the current size) that share what they read."""
        return SharedPaths(self._nodes, self._height, self._levels, self._check_size(txn, size), limit)

    def consistency_proof(self, txn: lmdb.Transaction, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 §2.1.4.1 consistency proof from `size1` to `size2` leaves (default: current); 0 < size1 <= size2.

        The proof is the old tree's rightmost complete subtree (left out when it is the whole old tree, since the
        verifier holds that root) followed by that subtree's inclusion path in the new tree.
        """
        size2 = self._check_size(txn, size2)
        if not 0 < size1 <= size2:
            raise LogRangeError(f"consistency proof: expected 0 < size1 <= size2 = {size2}, got size1 = {size1}")
        if size1 == size2:
            return []
        tiles = self._tiles(txn)
        level = (size1 & -size1).bit_length() - 1
        index = (size1 - 1) >> level
        path = tiles.path(level, index, size2)
        return [tiles.node(level, index), *path] if index else path

    def node_hashes(self, txn: lmdb.Transaction, level: int, start: int, end: int) -> list[bytes]:
        """The hashes of complete nodes [start, end) of tree `level`, read row slice by row slice from their tiles.

        This is what a C2SP tlog-tiles tile is made of (level 8·L); only the stored tiles holding those nodes are
        read. Nodes that are not complete yet raise `LogRangeError`.
        """
        size = self.size(txn)
        if not 0 <= level < _MAX_LEVELS or not 0 <= start <= end or end << level > size:
            raise LogRangeError(f"nodes [{start}, {end}) of level {level}: not complete in the tree of size {size}")
        tiles = self._tiles(txn)
        _, shift, row_offset = self._levels[level]
        tile_level = level // self._height
        hashes: list[bytes] = []
        position = start
        while position < end:
            tile_index = position >> shift
            row_end = min(end, (tile_index + 1) << shift)
            data = tiles.tile(tiles.tile_key(tile_level, tile_index))
            first = row_offset + position - (tile_index << shift)
            hashes += (
                data[i : i + HASH_SIZE]
                for i in range(first * HASH_SIZE, (first + row_end - position) * HASH_SIZE, HASH_SIZE)
            )
            position = row_end
        return hashes

    def _check_tile_height(self, txn: lmdb.Transaction) -> bool:
        """Whether a tile height is stored; raises `StorageError` if it is not this instance's."""
        stored = txn.get(TILE_HEIGHT_KEY, db=self._meta)
        if stored is None:
            return False
        if schema.from_u64(bytes(stored)) != self._height:
            raise StorageError(
                f"log tile height: expected {self._height}, the stored log uses {schema.from_u64(bytes(stored))}"
            )
        return True

    def _tiles(self, txn: lmdb.Transaction) -> _Tiles:
        return _Tiles(txn, self._nodes, self._height, self._levels)

    def _check_size(self, txn: lmdb.Transaction, size: int | None) -> int:
        current = self.size(txn)
        if size is None:
            return current
        if not 0 <= size <= current:
            raise LogRangeError(f"tree size: expected 0 <= size <= {current}, got {size}")
        return size
