"""The state map's node records, and the batch update that computes a new version of its node graph
(`ledger.storage.statemap` describes the tree, the refs and the layout).

An `Updater` applies a batch of changes, sorted by key, on top of a root: it descends once, splitting the batch at
each internal node by the key bit for that depth, takes a tight loop down the path of a sub-batch of one key and
back up, and collects the new nodes (to be written) and the refs of the nodes it replaced (for a bounded
history's journal). It reads through the caller's transaction and writes nothing. `ComputedUpdates` keeps the last
few results, so the same update (a block validated, then committed) is not computed twice.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable
from operator import itemgetter
from typing import NamedTuple

import lmdb

from credledger.ledger.domains import SMT_LEAF, SMT_NODE
from credledger.ledger.errors import StorageError
from credledger.ledger.smt import HASH_SIZE, KEY_BITS, KEY_SIZE
from credledger.ledger.storage.generations import TwoGenerations
from credledger.ledger.storage.schema import SMT_DEPTHS, SMT_LEAVES, SMT_NODES

#: Updates cache the nodes they write above this depth, where the next batch's paths all meet again; read back,
#: they save the next update that many LMDB lookups (about 2**UPDATE_CACHE_DEPTH per block of many changes).
UPDATE_CACHE_DEPTH = 11
#: Updates whose new nodes are kept for a repeat of the same update (a block's preview, then its commit; or the
#: proposals of two rounds of one height). Each holds about (log2(n / k) + 2) nodes for each of its k changes.
COMPUTED_UPDATES = 2

REF_SIZE = 8 + HASH_SIZE
#: The ref of an empty subtree.
EMPTY_REF = bytes(REF_SIZE)
#: A ref's first byte is its *group*, which names the database holding the node (`node_tables`): below `LEAF_GROUP`,
#: ``SMT_NODES`` (a store of schema 1 kept every node there, and versions stay below 2**56, so a plain ref's first
#: byte is 0); `LEAF_GROUP`, ``SMT_LEAVES``; above it, the internal nodes of one depth, ``SMT_DEPTHS``.
LEAF_GROUP = 0x80
#: The group of the internal nodes at depth d is FIRST_DEPTH_GROUP + min(d, len(SMT_DEPTHS) - 1).
FIRST_DEPTH_GROUP = LEAF_GROUP + 1
LAST_DEPTH_GROUP = FIRST_DEPTH_GROUP + len(SMT_DEPTHS) - 1
#: (group, database name) of every group: the leaves, then the internal nodes depth by depth.
GROUPED_TABLES = ((LEAF_GROUP, SMT_LEAVES), *enumerate(SMT_DEPTHS, start=FIRST_DEPTH_GROUP))
#: The group of the internal nodes at each depth, 0 to 256.
_DEPTH_GROUPS = tuple(min(FIRST_DEPTH_GROUP + depth, LAST_DEPTH_GROUP) for depth in range(KEY_BITS + 1))
#: One database handle per possible first byte of a ref.
Tables = tuple[lmdb._Database, ...]

INTERNAL_SIZE = 1 + 2 * REF_SIZE
#: A leaf as the map's code reads it: ``0x02 || key || SHA-256(value) || value``. A leaf of `LEAF_GROUP` is stored
#: without the hash of its value (``0x02 || key || value``), which `checked` computes again when it reads one.
LEAF_HEAD = 1 + KEY_SIZE + HASH_SIZE
STORED_LEAF_HEAD = 1 + KEY_SIZE
LEAF_TAG = SMT_LEAF[0]
NODE_TAG = SMT_NODE[0]

# A node placed in a subtree being built: (its key as an int, for ordering, and its ref).
Entry = tuple[int, bytes]
# One change of a batch update: (the key as an int, for ordering, the key, the new value or None to delete).
Change = tuple[int, bytes, bytes | None]

_sha256 = hashlib.sha256
_first = itemgetter(0)


class Updater:
    """One batch update: applies the sorted changes and collects the new nodes in `new_nodes` (ref -> record).

    Methods return (ref, is_leaf) for the new subtree; is_leaf is None when the subtree is unchanged and its
    kind was not looked at (it matters only when its sibling became empty and a lone leaf must be lifted). The
    old nodes the new version no longer holds are collected in `replaced`.
    """

    __slots__ = (
        "_cache",
        "_ikeys",
        "_keys",
        "_leaf_prefix",
        "_prefixes",
        "_tables",
        "_txn",
        "_values",
        "new_nodes",
        "replaced",
    )

    def __init__(
        self,
        txn: lmdb.Transaction[bytes],
        tables: Tables,
        prefixes: tuple[bytes, list[bytes]],
        changes: list[Change],
        cache: TwoGenerations[bytes, bytes],
    ) -> None:
        """`tables` are the nodes' databases by group (`node_tables`); `prefixes` the 8-byte prefixes of the refs of
        new leaves and of new internal nodes by depth (`ref_prefixes`)."""
        self._cache = cache
        self._txn = txn
        self._tables = tables
        self._leaf_prefix, self._prefixes = prefixes
        self._ikeys = [c[0] for c in changes]
        self._keys = [c[1] for c in changes]
        self._values = [c[2] for c in changes]
        self.new_nodes: dict[bytes, bytes] = {}
        self.replaced: list[bytes] = []

    def apply(self, ref: bytes, depth: int, lo: int, hi: int) -> tuple[bytes, bool | None]:
        """Apply changes[lo:hi], whose keys all lie under the node `ref` at `depth`."""
        if hi - lo == 1:
            return self._apply_one(ref, depth, lo)
        if ref == EMPTY_REF:
            inserts = [(self._ikeys[i], self._leaf(i)) for i in range(lo, hi) if self._values[i] is not None]
            return self._build(depth, inserts)
        record = self._cache.get(ref) if depth < UPDATE_CACHE_DEPTH else None
        if record is None:
            record = read_node(self._txn, self._tables, ref)
        if record[0] == LEAF_TAG:
            return self._build(depth, self._merge_leaf(ref, record, lo, hi))
        left = record[1:41]
        right = record[41:]
        shift = KEY_BITS - 1 - depth
        mid = bisect_left(self._ikeys, ((self._ikeys[lo] >> shift) | 1) << shift, lo, hi)
        new_left, left_is_leaf = self.apply(left, depth + 1, lo, mid) if mid > lo else (left, None)
        new_right, right_is_leaf = self.apply(right, depth + 1, mid, hi) if hi > mid else (right, None)
        if new_left == left and new_right == right:
            return ref, False
        self.replaced.append(ref)
        joined = self._join(depth, new_left, left_is_leaf, new_right, right_is_leaf)
        if depth < UPDATE_CACHE_DEPTH and not joined[1] and joined[0] != EMPTY_REF:
            # The next update descends through the upper nodes this one wrote: keep them at hand.
            self._cache.add(joined[0], self.new_nodes[joined[0]])
        return joined

    def _apply_one(self, ref: bytes, depth: int, index: int) -> tuple[bytes, bool | None]:
        """Apply one change: walk down to the leaf or empty subtree on its path, replace it, rehash upwards.

        Below the levels a batch shares, every change ends here, so this is the update's inner loop: the walk
        takes a record of an internal node's length and tag as it comes from the store, and leaves the full check
        (`checked`) to the one record per walk that is not one (the leaf it ends in).
        """
        path = self._ikeys[index]
        get = self._txn.get
        tables = self._tables
        siblings: list[bytes] = []
        walked: list[bytes] = []
        top = ref
        record = b""
        d = depth
        while ref != EMPTY_REF:
            if ref[0] == LEAF_GROUP:
                record = checked(ref, get(ref, None, tables[LEAF_GROUP]))  # the walk's end: a leaf
                break
            found = get(ref, None, tables[ref[0]])
            if found is None or len(found) != INTERNAL_SIZE or found[0] != NODE_TAG:
                record = checked(ref, found)  # the walk's end: a leaf (anything else raises)
                break
            walked.append(ref)
            if (path >> (KEY_BITS - 1 - d)) & 1:
                siblings.append(found[1:41])
                ref = found[41:]
            else:
                siblings.append(found[41:])
                ref = found[1:41]
            d += 1
        replaced = self._replace(ref, record, d, index)
        if replaced is None:
            return top, None
        self.replaced += walked  # every node on a changed path changes
        return self._ascend(*replaced, siblings, d, path)

    def _replace(self, ref: bytes, record: bytes, depth: int, index: int) -> tuple[bytes, bool] | None:
        """The subtree replacing the empty subtree or leaf `ref` where changes[index]'s path ends; None if unchanged."""
        value = self._values[index]
        if ref == EMPTY_REF:
            return None if value is None else (self._leaf(index), True)
        if record[1:33] == self._keys[index]:
            if record[LEAF_HEAD:] == value:
                return None
            self.replaced.append(ref)
            return (EMPTY_REF, False) if value is None else (self._leaf(index), True)
        if value is None:
            return None  # the path ends in another key's leaf, so ours is absent already
        # Another key's leaf sits where ours goes: both move down to where their keys part.
        pair = [(self._ikeys[index], self._leaf(index)), (int.from_bytes(record[1:33], "big"), ref)]
        pair.sort(key=_first)
        return self._build(depth, pair)

    def _ascend(
        self, current: bytes, is_leaf: bool, siblings: list[bytes], depth: int, path: int
    ) -> tuple[bytes, bool]:
        """Rehash from the new subtree `current` at `depth` up through `siblings` (top first), lifting lone leaves."""
        new_nodes = self.new_nodes
        prefixes = self._prefixes
        while siblings:
            sibling = siblings.pop()
            depth -= 1
            if current == EMPTY_REF:
                if sibling == EMPTY_REF:
                    continue  # cannot happen in a canonical tree; two empty halves are one empty subtree
                if self._is_leaf(sibling):
                    current, is_leaf = sibling, True  # the sibling leaf is now alone: lift it
                    continue
            elif is_leaf and sibling == EMPTY_REF:
                continue  # our leaf is alone at this level: lift it
            # `_internal`, inlined: one node per level of every changed path.
            if (path >> (KEY_BITS - 1 - depth)) & 1:
                record = SMT_NODE + sibling + current
                current = prefixes[depth] + _sha256(SMT_NODE + sibling[8:] + current[8:]).digest()
            else:
                record = SMT_NODE + current + sibling
                current = prefixes[depth] + _sha256(SMT_NODE + current[8:] + sibling[8:]).digest()
            new_nodes[current] = record
            is_leaf = False
        return current, is_leaf

    def _merge_leaf(self, ref: bytes, record: bytes, lo: int, hi: int) -> list[Entry]:
        """The nodes of a subtree that was the lone leaf `ref`, after changes[lo:hi]."""
        leaf_int = int.from_bytes(record[1:33], "big")
        entries: list[Entry] = []
        replaced = False
        for i in range(lo, hi):
            value = self._values[i]
            if self._ikeys[i] == leaf_int:
                replaced = True
                if record[LEAF_HEAD:] == value:
                    entries.append((leaf_int, ref))
                else:
                    self.replaced.append(ref)
                    if value is not None:
                        entries.append((leaf_int, self._leaf(i)))
            elif value is not None:
                entries.append((self._ikeys[i], self._leaf(i)))
        if not replaced:
            entries.append((leaf_int, ref))
            entries.sort(key=_first)
        return entries

    def _build(self, depth: int, entries: list[Entry]) -> tuple[bytes, bool]:
        """A fresh subtree at `depth` over `entries` (sorted by key, all under that subtree)."""
        if not entries:
            return EMPTY_REF, False
        if len(entries) == 1:
            return entries[0][1], True
        low = entries[0][0]
        split = KEY_BITS - (low ^ entries[-1][0]).bit_length()  # the first bit where the keys part
        shift = KEY_BITS - 1 - split
        mid = bisect_left(entries, ((low >> shift) | 1) << shift, key=_first)
        left, right = self._build(split + 1, entries[:mid])[0], self._build(split + 1, entries[mid:])[0]
        ref = self._internal(split, left, right)
        for d in range(split - 1, depth - 1, -1):
            # Above the split every key goes the same way, so the other child is empty.
            on_right = (low >> (KEY_BITS - 1 - d)) & 1
            ref = self._internal(d, EMPTY_REF, ref) if on_right else self._internal(d, ref, EMPTY_REF)
        return ref, False

    def _join(
        self, depth: int, left: bytes, left_is_leaf: bool | None, right: bytes, right_is_leaf: bool | None
    ) -> tuple[bytes, bool]:
        """The node at `depth` over two new children, lifting a leaf whose sibling is empty."""
        if left == EMPTY_REF:
            if right == EMPTY_REF:
                return EMPTY_REF, False
            if right_is_leaf is None:
                right_is_leaf = self._is_leaf(right)
            if right_is_leaf:
                return right, True
        elif right == EMPTY_REF:
            if left_is_leaf is None:
                left_is_leaf = self._is_leaf(left)
            if left_is_leaf:
                return left, True
        return self._internal(depth, left, right), False

    def _is_leaf(self, ref: bytes) -> bool:
        """Whether the stored node `ref` is a leaf: its group says so, but for a plain ref (schema 1) its record."""
        group = ref[0]
        if group >= LEAF_GROUP:
            return group == LEAF_GROUP
        return read_node(self._txn, self._tables, ref)[0] == LEAF_TAG

    def _leaf(self, index: int) -> bytes:
        """A new leaf for changes[index], which must set a value."""
        value = self._values[index]
        assert value is not None  # callers only create leaves for insertions
        key = self._keys[index]
        value_hash = _sha256(value).digest()
        ref = self._leaf_prefix + _sha256(SMT_LEAF + key + value_hash).digest()
        # A leaf of its own group is stored without the hash of its value (schema 1 kept it).
        self.new_nodes[ref] = SMT_LEAF + key + (value if ref[0] == LEAF_GROUP else value_hash + value)
        return ref

    def _internal(self, depth: int, left: bytes, right: bytes) -> bytes:
        ref = self._prefixes[depth] + _sha256(SMT_NODE + left[8:] + right[8:]).digest()
        self.new_nodes[ref] = SMT_NODE + left + right
        return ref


class Computed(NamedTuple):
    """One computed update: the new root ref, the new nodes sorted by ref, and the refs of the nodes it replaced
    (all three pure functions of the base root, the version and the changes)."""

    root: bytes
    nodes: list[tuple[bytes, bytes]]
    replaced: list[bytes]


class ComputedUpdates:
    """The last few updates computed, so that applying the same changes to the same root as the same version
    again (a block validated in an aborted transaction, then committed) writes the nodes already computed.

    The new nodes are a pure function of the base root (a ref names immutable content), the version (the new
    refs' prefix) and the changes, and a hit requires all three to be equal -- the changes compared in full, not
    by a digest -- so what it returns is exactly what computing them again would give.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: list[tuple[bytes, int, list[Change], Computed]] = []

    def get(self, base: bytes, version: int, batch: list[Change]) -> Computed | None:
        for entry_base, entry_version, entry_batch, computed in self._entries:
            if entry_base == base and entry_version == version and entry_batch == batch:
                return computed
        return None

    def put(self, base: bytes, version: int, batch: list[Change], computed: Computed) -> None:
        if len(self._entries) >= COMPUTED_UPDATES:
            del self._entries[0]
        self._entries.append((base, version, batch, computed))


def node_tables(open_db: Callable[[bytes], lmdb._Database | None]) -> Tables:
    """The database of each group (a ref's first byte), from `open_db(name)`. A database it returns None for (one a
    store of schema 1 does not have yet) and the groups no ref has fall back to ``SMT_NODES``, where a read of such a
    ref finds nothing: a missing node, never another database's record."""
    nodes = open_db(SMT_NODES)
    if nodes is None:
        raise StorageError(f"the store has no {SMT_NODES.decode()} database: it is not a credledger ledger")
    tables = [nodes] * 256
    for group, name in GROUPED_TABLES:
        db = open_db(name)
        if db is not None:
            tables[group] = db
    return tuple(tables)


def ref_prefixes(version: int, grouped: bool) -> tuple[bytes, list[bytes]]:
    """The 8-byte prefixes of the refs `version` gives its new leaves and its new internal nodes by depth (0 to 256):
    with `grouped`, the version under each node's group; else the plain version (the layout of schema 1)."""
    if not grouped:
        plain = version.to_bytes(8, "big")
        return plain, [plain] * (KEY_BITS + 1)
    return group_prefix(LEAF_GROUP, version), [group_prefix(group, version) for group in _DEPTH_GROUPS]


def group_prefix(group: int, version: int) -> bytes:
    """The 8-byte prefix of the refs of the nodes of one group that `version` created."""
    return (group << 56 | version).to_bytes(8, "big")


def read_node(txn: lmdb.Transaction[bytes], tables: Tables, ref: bytes) -> bytes:
    """The record of node `ref`, from its group's database."""
    return checked(ref, txn.get(ref, db=tables[ref[0]]))


def checked(ref: bytes, record: bytes | None) -> bytes:
    """`record`, read under `ref`, if it is a well-formed node record (a leaf of `LEAF_GROUP` given its full record,
    the hash of its value computed again); else `StorageError`."""
    if record is None:
        raise StorageError(f"state node {ref.hex()} is missing from the store")
    if ref[0] == LEAF_GROUP:
        if len(record) < STORED_LEAF_HEAD or record[0] != LEAF_TAG:
            raise StorageError(f"state node {ref.hex()} has a malformed record of {len(record)} bytes")
        value = record[STORED_LEAF_HEAD:]
        return record[:STORED_LEAF_HEAD] + _sha256(value).digest() + value
    tag = record[0] if record else -1
    if not ((tag == NODE_TAG and len(record) == INTERNAL_SIZE) or (tag == LEAF_TAG and len(record) >= LEAF_HEAD)):
        raise StorageError(f"state node {ref.hex()} has a malformed record of {len(record)} bytes")
    return record
