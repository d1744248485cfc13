"""The sparse Merkle state map, persisted in LMDB and versioned by block height (DESIGN §5).

Theory of operation
-------------------
The tree is the one `ledger.smt` hashes: 256-bit keys, a lone leaf lifted to the depth where it is alone, empty
subtrees as 32 zero bytes. It is stored as an immutable graph of nodes; nothing is ever modified in place. An
update copies the path from the root down to each changed leaf, writes only those new nodes, and shares every
unchanged subtree with the version before it. So every version whose root is kept stays readable and provable,
and an aborted transaction leaves no trace: all writes go through the caller's transaction, which the store
commits together with the rest of the block.

A node is named by a 40-byte *ref*: ``u8 group || u56 version || node hash``, where version is the one that
created it and the group names the database holding it (`ledger.storage.smtupdate.node_tables`): the leaves, or the
internal nodes of one depth. Refs make the names of one version's new nodes of a group share a prefix greater than
every older name in that group's database, so each block's nodes are appended at the end of their B-trees
(``putmulti`` with ``append``) instead of being scattered over random pages -- scattered writes made every commit
rewrite thousands of pages. Nodes are grouped by how long they live, because LMDB frees a page only when every node
on it is gone: a credential's leaf lives until its record changes, an internal node near the root is replaced by the
next block, and one deeper down lives the longer the deeper it is (a node at depth d is replaced when a block changes
one of the about n / 2**d keys below it). In one B-tree, each version's pages mixed them all, and with a bounded
history the long-lived nodes kept the pages of pruned ones in use. Layout (database names in
`ledger.storage.schema`):

``SMT_LEAVES``: ref -> ``0x02 || key (32) || value (any length)``, a leaf -- 33 bytes + value
``SMT_DEPTHS[d]``: ref -> ``0x03 || left ref (40) || right ref (40)``, an internal node at depth d -- 81 bytes (the
    last database holds every depth from its own down: few nodes are that deep)

    The node hash is SHA-256 of ``0x03 || left hash || right hash`` (the hashes inside the refs) or of
    ``0x02 || key || SHA-256(value)`` for a leaf, so a record can be re-checked against its ref. The code reads a
    leaf as that head followed by the value (`smtupdate.checked` computes the value's hash when it reads a leaf).
    An empty child is the all-zero ref; empty subtrees are never stored. A store begun with schema 1 wrote all its
    nodes to ``SMT_NODES``, under plain refs (group 0), its leaves with the hash of their value stored, up to
    `grouped_from`; they stay there, and later nodes refer to them as they are.
``SMT_ROOTS``: u64 version -> the ref of that version's root (all zero for the empty map). Versions are block
    heights and strictly increase; version 0 is genesis. A version that changed nothing keeps the previous root.

Reads of the latest version are mostly for keys that are absent (every issue checks that its credential is
new), and an absent key costs a walk of about log2(n) + 1 B-tree lookups. A *presence filter* answers most of
them without touching the store: a Bloom filter of every key the map holds, kept in memory, whose "absent" is
certain (a "maybe" walks the tree as before). It is derived from the tree -- scanned from the latest version the
first time it is needed, then fed the keys each `update` sets -- and it never writes to the store, so a durable
commit pays nothing for it. It answers for a version only if that version's root is one whose keys it is known
to hold: one it was scanned at, or one an update made from such a root. Keys of an aborted transaction stay in
it, which only costs a walk; a latest root it does not know (another process wrote it) makes it rescan, once
until this map writes again. Deleted keys stay too, with the same cost. It takes about 10 bits per key set, in
layers that double.

Values live inline in their leaves: a separate table keyed by value hash would cost one more scattered write per
changed key and one more read per `get`. Each version adds about k * (log2(n / k) + 2) nodes for k changed keys
in a map of n keys. By default nothing is pruned and every old version stays provable.

A bounded history (`history` = N) keeps the latest N versions and deletes the nodes only older versions reach.
Because nodes are immutable and shared only forwards -- an update builds on the latest version's nodes and new ones,
and a new node's ref carries the new version -- a node that version v no longer holds is never held by a later
version: it is live from the version that created it to v - 1. So an update records, in ``SMT_REPLACED`` under v,
the refs of the nodes it replaced (the old nodes on every changed path, and the changed leaves; not the leaves it
only moved), and when version v - 1 leaves the history, those refs and the journal entry are deleted with the root
of v - 1 (`prune`). No reference counts, no scan of the tree: the journal is the exact list of what becomes garbage,
and it is deleted in the transaction that commits a block, so a crash leaves either the old history or the new one.
The journal of the versions in the history is the only overhead on disk, about 40 bytes per replaced node. Versions
written while the history was unbounded have no journal: their replaced nodes stay. In memory, pruning costs LMDB's
page buffers: the nodes one journal lists lie on pages all over the tree, so deleting them changes (copies) about one
page per node, and LMDB keeps a buffer for every page its largest write transaction so far copied until the
environment is closed -- a heap of about 4 KiB per node of the largest prune, which grows with log2(n)
(docs/design.md has the figures).

A batch update sorts its keys and descends once from the latest root, splitting the batch at each internal node
by the key bit for that depth: upper nodes shared by many changed keys are loaded and rehashed once per batch,
not once per key. A sub-batch of one key takes a tight loop down its path and back up. The new nodes are sorted
and appended with one cursor ``putmulti``. A node needs each block's update twice -- to build or validate the
block, in a transaction it aborts, and to commit it -- so the last few updates keep their new nodes: an update
of equal changes on the same root as the same version (all three compared exactly) writes them without
walking or hashing the tree again. The nodes are a pure function of those three, so the commit's root is the
one a fresh computation would give, and the store still checks it against the header. The aborted transaction
takes `compute`, which keeps the nodes and returns the root without putting anything in it.

Reads (`get`, `prove`) keep recently used upper-level nodes (depth < `CACHE_DEPTH`) in a bounded two-generation
cache. A ref names immutable content, so a cached record is never stale, whichever transaction read or wrote it.
An update reads each old node once, so it caches only the top nodes it writes (depth < `UPDATE_CACHE_DEPTH`),
through which the next update's paths all run again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from itertools import groupby
from operator import itemgetter

import lmdb

from credledger.ledger.errors import StatePruned, StorageError
from credledger.ledger.smt import KEY_BITS, KEY_SIZE, ProofLeaf, StateProof
from credledger.ledger.storage.generations import TwoGenerations
from credledger.ledger.storage.presence import PresenceFilter
from credledger.ledger.storage.schema import SMT_REPLACED, SMT_ROOTS, from_u64, u64
from credledger.ledger.storage.smtupdate import (
    EMPTY_REF,
    LEAF_HEAD,
    LEAF_TAG,
    REF_SIZE,
    Change,
    Computed,
    ComputedUpdates,
    Tables,
    Updater,
    node_tables,
    read_node,
    ref_prefixes,
)

#: Reads cache nodes above this depth: they lie on many paths. Deeper ones are rarely read twice.
CACHE_DEPTH = 16
#: Default bound on cached node records (each about 200 bytes with its key and dict slot).
DEFAULT_CACHE_SIZE = 1 << 16
#: Proofs (`get_proven`, `get_proof_parts`) start from the walk kept for the key's first this many bits...
PROOF_PATH_DEPTH = 10
#: ... kept for at most this many (root, prefix) pairs, each about 500 bytes: two roots' worth.
MAX_PROOF_PATHS = 2 << PROOF_PATH_DEPTH
#: Bounds on one `prune`: versions forgotten, and of them versions whose replaced nodes are deleted (each a block's
#: worth of nodes). More than one, so a history made shorter, or a store that kept everything, catches up. A commit
#: that deletes two journals copies about twice a block's pages, and LMDB keeps that many page buffers from then on.
PRUNE_VERSIONS = 64
PRUNE_JOURNALS = 2

#: Versions fit in the 7 bytes of a ref after its group.
_MAX_VERSION = 2**56 - 1
#: A depth no walk reaches: a walk to the end of its path.
_NO_STOP = KEY_BITS + 1
_first = itemgetter(0)


def _group(node: tuple[bytes, bytes]) -> int:
    return node[0][0]


class StateMap:
    """A versioned, persistent sparse Merkle map from 32-byte keys to byte values.

    Every method works inside a transaction the caller owns (a write transaction for `update`); the map never
    begins or commits one, so a whole block is written atomically. Construct the map before opening a write
    transaction: it opens its database handles on construction. Transactions must not use ``buffers=True``.
    """

    def __init__(
        self, env: lmdb.Environment, *, cache_size: int = DEFAULT_CACHE_SIZE, history: int | None = None
    ) -> None:
        if history is not None and (type(history) is not int or history < 1):
            raise ValueError(f"state history: expected a positive number of versions or None, got {history!r}")
        #: Versions kept, counting the latest (None: every version); see `prune`.
        self.history = history
        #: The first version whose new nodes are stored by group (`Store` sets it for a store
        #: that began with every node in ``SMT_NODES``); the versions before it wrote theirs among the other nodes.
        self.grouped_from = 0
        self._tables: Tables = node_tables(lambda name: env.open_db(name, create=False))
        self._roots = env.open_db(SMT_ROOTS, create=False)
        self._replaced = env.open_db(SMT_REPLACED, create=False)
        self._cache = TwoGenerations[bytes, bytes](cache_size)
        self._computed = ComputedUpdates()
        self._presence = PresenceFilter()
        #: The upper walks of proofs (`_find_proven`): (root ref, key prefix) -> (leaf, ref, siblings) there.
        self._proof_paths: dict[tuple[bytes, int], tuple[bytes | None, bytes, tuple[bytes, ...]]] = {}
        # A map that only reads, while another process writes, would find a new root every block: it scans once,
        # then walks, until it writes itself.
        self._may_rescan = True

    def latest_version(self, txn: lmdb.Transaction[bytes]) -> int | None:
        """The highest version stored, or None if the map has never been written."""
        cursor = txn.cursor(db=self._roots)
        return from_u64(cursor.key()) if cursor.last() else None

    def oldest_version(self, txn: lmdb.Transaction[bytes]) -> int | None:
        """The lowest version still readable, or None if the map has never been written."""
        cursor = txn.cursor(db=self._roots)
        return from_u64(cursor.key()) if cursor.first() else None

    def prune(self, txn: lmdb.Transaction[bytes]) -> None:
        """Forget the versions before the latest `history` and delete the nodes only they held; no-op if unbounded.

        Bounded work: at most PRUNE_VERSIONS versions and PRUNE_JOURNALS versions' replaced nodes per call, so
        a backlog (a shorter history than before) is worked off over the next calls. Call it in the write
        transaction that commits a version, after `update`.
        """
        if self.history is None:
            return
        latest = self.latest_version(txn)
        if latest is None:
            return
        keep_from = latest - self.history + 1
        roots = txn.cursor(db=self._roots)
        cursors: dict[int, lmdb.Cursor[bytes]] = {}
        journals = 0
        for _ in range(PRUNE_VERSIONS):
            if not roots.first() or from_u64(roots.key()) >= keep_from or journals == PRUNE_JOURNALS:
                break
            roots.delete()  # the cursor now rests on the next version's root: its journal lists what just died
            successor = roots.key()
            refs = txn.pop(successor, db=self._replaced)
            if refs is None:
                continue
            journals += 1
            for ref in sorted(refs[i : i + REF_SIZE] for i in range(0, len(refs), REF_SIZE)):
                cursor = cursors.get(ref[0])
                if cursor is None:
                    cursor = cursors[ref[0]] = txn.cursor(db=self._tables[ref[0]])
                if not (cursor.set_key(ref) and cursor.delete()):
                    raise StorageError(f"state node {ref.hex()} replaced at version {from_u64(successor)} is missing")

    def root(self, txn: lmdb.Transaction[bytes], version: int | None = None) -> bytes:
        """The root hash at `version` (default: the latest; the empty-map root if nothing was ever written)."""
        return self._root_ref(txn, version)[8:]

    def update(self, txn: lmdb.Transaction[bytes], version: int, changes: Mapping[bytes, bytes | None]) -> bytes:
        """Apply `changes` (value None = delete) on top of the latest version, store it as `version`, return its root.

        `version` must be greater than every stored version. Deleting an absent key is a no-op. Inputs are
        checked before anything is written.
        """
        base, batch = self._batch(txn, version, changes)
        root = base
        if batch:
            root, new_nodes, replaced = self._computed_update(txn, base, version, batch)
            # Sorted by ref, the nodes of each group are one run, appended at the end of the group's database.
            for group, run in groupby(new_nodes, key=_group):
                part = list(run)
                if txn.cursor(db=self._tables[group]).putmulti(part, append=True)[1] != len(part):
                    raise StorageError(f"state nodes of version {version} collide with stored nodes")
            if self.history is not None and replaced:
                txn.put(u64(version), b"".join(replaced), db=self._replaced, append=True)
        txn.put(u64(version), root, db=self._roots, append=True)
        self._note_update(base, root, batch)
        return root[8:]

    def compute(self, txn: lmdb.Transaction[bytes], version: int, changes: Mapping[bytes, bytes | None]) -> bytes:
        """The root `update` would return for the same arguments, without writing anything.

        For a transaction that will be aborted (a block built or validated, not committed): the new nodes are
        kept for the `update` of the same changes that commits them, and nothing is put in the transaction only
        to be thrown away.
        """
        base, batch = self._batch(txn, version, changes)
        return (self._computed_update(txn, base, version, batch).root if batch else base)[8:]

    def _batch(
        self, txn: lmdb.Transaction[bytes], version: int, changes: Mapping[bytes, bytes | None]
    ) -> tuple[bytes, list[Change]]:
        """The latest root ref, and `changes` checked and sorted by key, for an update as `version`."""
        _check_version(version)
        latest = self.latest_version(txn)
        if latest is not None and version <= latest:
            raise StorageError(f"state version {version} must be greater than the latest version {latest}")
        batch: list[Change] = []
        for key, value in changes.items():
            _check_key(key)
            if value is not None and not isinstance(value, bytes):
                raise ValueError(f"state value for key {key.hex()}: expected bytes or None, got {type(value).__name__}")
            batch.append((int.from_bytes(key, "big"), key, value))
        batch.sort(key=_first)
        return self._root_ref(txn, None), batch

    def _computed_update(
        self, txn: lmdb.Transaction[bytes], base: bytes, version: int, batch: list[Change]
    ) -> Computed:
        """`batch` (not empty) applied on top of `base` as `version`: kept from an earlier call, or computed now."""
        return self._computed.get(base, version, batch) or self._compute(txn, base, version, batch)

    def _compute(self, txn: lmdb.Transaction[bytes], base: bytes, version: int, batch: list[Change]) -> Computed:
        """The root ref, the new nodes (sorted by ref) and the refs of the nodes replaced, of `batch` applied on top of
        `base` as `version`."""
        prefixes = ref_prefixes(version, grouped=version >= self.grouped_from)
        updater = Updater(txn, self._tables, prefixes, batch, self._cache)
        root = updater.apply(base, 0, 0, len(batch))[0]
        # Sorting the refs alone and pairing them with their records again takes about 4/5 of sorting the pairs.
        refs = sorted(updater.new_nodes)
        new_nodes = list(zip(refs, map(updater.new_nodes.__getitem__, refs), strict=True))
        computed = Computed(root, new_nodes, updater.replaced)
        self._computed.put(base, version, batch, computed)
        return computed

    def get(self, txn: lmdb.Transaction[bytes], key: bytes, version: int | None = None) -> bytes | None:
        """The value of `key` at `version` (default: the latest), or None if the key is absent."""
        return self.reader(txn, version)(key)

    def reader(self, txn: lmdb.Transaction[bytes], version: int | None = None) -> Callable[[bytes], bytes | None]:
        """`get` for one version, with its root looked up once: for many reads in one transaction."""
        root = self._root_ref(txn, version)
        latest = version is None

        def get(key: bytes) -> bytes | None:
            _check_key(key)
            if root == EMPTY_REF or not self._might_hold(txn, root, key, latest=latest):
                return None
            return _leaf_value(key, self._find(txn, key, root)[0])

        return get

    def prove(self, txn: lmdb.Transaction[bytes], key: bytes, version: int | None = None) -> StateProof:
        """A proof of the value of `key`, or of its absence, against the root at `version` (default: latest)."""
        return self.get_proven(txn, key, version)[1]

    def get_proven(
        self, txn: lmdb.Transaction[bytes], key: bytes, version: int | None = None
    ) -> tuple[bytes | None, StateProof]:
        """The value of `key` at `version` (default: the latest) read from the tree, with its proof: one walk, and
        the value is the one the proof commits to."""
        value, leaf, siblings = self.get_proof_parts(txn, key, version)
        return value, StateProof(None if leaf is None else ProofLeaf(*leaf), tuple(siblings))

    def get_proof_parts(
        self, txn: lmdb.Transaction[bytes], key: bytes, version: int | None = None
    ) -> tuple[bytes | None, tuple[bytes, bytes] | None, list[bytes]]:
        """`get_proven` without building the proof record, for a caller that only encodes it: the value, the
        proof's leaf as (key, value hash) or None, and its siblings, lowest first."""
        _check_key(key)
        leaf, siblings = self._find_proven(txn, key, self._root_ref(txn, version))
        siblings.reverse()
        return _leaf_value(key, leaf), None if leaf is None else (leaf[1:33], leaf[33:LEAF_HEAD]), siblings

    def _might_hold(self, txn: lmdb.Transaction[bytes], root: bytes, key: bytes, *, latest: bool) -> bool:
        """False if the presence filter shows `key` is absent under `root`; True if only the tree can tell.

        A root the filter does not cover is scanned into a fresh filter if it is the latest one (the next
        updates build on it) and this map has written since its last scan; otherwise the tree is walked.
        """
        presence = self._presence
        if root not in presence.covered:
            if not (latest and self._may_rescan):
                return True
            presence = self._presence = PresenceFilter.scanned(self._items_under(txn, root), root)
            self._may_rescan = False
        return presence.might_contain(key)

    def _note_update(self, base: bytes, root: bytes, batch: list[Change]) -> None:
        """Feed the filter the keys an update from `base` to `root` set, if it covered `base`."""
        self._may_rescan = True
        presence = self._presence  # one object throughout: a rescan replaces it whole, never half
        if base not in presence.covered:
            return
        for _, key, value in batch:
            if value is not None:
                presence.add(key)
        presence.cover(root)

    def items(self, txn: lmdb.Transaction[bytes], version: int | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) at `version` (default: the latest), in key order; for audits and exports."""
        return self._items_under(txn, self._root_ref(txn, version))

    def _items_under(self, txn: lmdb.Transaction[bytes], root: bytes) -> Iterator[tuple[bytes, bytes]]:
        stack = [root]
        while stack:
            ref = stack.pop()
            if ref == EMPTY_REF:
                continue
            record = read_node(txn, self._tables, ref)
            if record[0] == LEAF_TAG:
                yield record[1:33], record[LEAF_HEAD:]
            else:
                stack.append(record[41:])  # right below left: pop order is key order
                stack.append(record[1:41])

    def _root_ref(self, txn: lmdb.Transaction[bytes], version: int | None) -> bytes:
        """The ref of the root at `version`; for None, the latest (or the empty ref if nothing was written)."""
        if version is None:
            cursor = txn.cursor(db=self._roots)
            if not cursor.last():
                return EMPTY_REF
            version, ref = from_u64(cursor.key()), cursor.value()
        else:
            _check_version(version)
            found = txn.get(u64(version), db=self._roots)
            if found is None:
                oldest = self.oldest_version(txn)
                if oldest is not None and version < oldest:
                    raise StatePruned(version, oldest)
                latest = self.latest_version(txn)
                raise StorageError(f"no state root stored for version {version} (latest version: {latest})")
            ref = found
        if len(ref) != REF_SIZE:
            raise StorageError(f"state root of version {version} is {len(ref)} bytes, expected {REF_SIZE}")
        return ref

    def _find(self, txn: lmdb.Transaction[bytes], key: bytes, root: bytes) -> tuple[bytes | None, list[bytes]]:
        """Walk the key's path from `root`: the leaf record it ends in (or None) and the sibling hashes, top first."""
        siblings: list[bytes] = []
        return self._walk(txn, int.from_bytes(key, "big"), root, 0, stop=_NO_STOP, siblings=siblings)[0], siblings

    def _find_proven(self, txn: lmdb.Transaction[bytes], key: bytes, root: bytes) -> tuple[bytes | None, list[bytes]]:
        """`_find`, with the first `PROOF_PATH_DEPTH` levels of the walk kept per root and key prefix: every key
        with the same prefix has the same path (and siblings) down to that depth, or ends in the same leaf or
        empty subtree above it. Kept for `MAX_PROOF_PATHS` (root, prefix) pairs; a ref names immutable content,
        so what is kept never goes stale."""
        path = int.from_bytes(key, "big")
        top = (root, path >> (KEY_BITS - PROOF_PATH_DEPTH))
        kept = self._proof_paths.get(top)
        if kept is None:
            upper: list[bytes] = []
            kept = (*self._walk(txn, path, root, 0, stop=PROOF_PATH_DEPTH, siblings=upper), tuple(upper))
            if len(self._proof_paths) >= MAX_PROOF_PATHS:
                self._proof_paths.clear()
            self._proof_paths[top] = kept
        leaf, ref, upper_siblings = kept
        siblings = list(upper_siblings)
        if leaf is None and ref != EMPTY_REF:
            leaf = self._walk(txn, path, ref, PROOF_PATH_DEPTH, stop=_NO_STOP, siblings=siblings)[0]
        return leaf, siblings

    def _walk(
        self, txn: lmdb.Transaction[bytes], path: int, ref: bytes, depth: int, *, stop: int, siblings: list[bytes]
    ) -> tuple[bytes | None, bytes]:
        """Walk down `path` (the key as an integer) from node `ref` at `depth`, appending the sibling hashes, until
        a leaf (its record and ref), an empty subtree (None, the empty ref) or depth `stop` (None, the ref there)."""
        cache = self._cache
        tables = self._tables
        while ref != EMPTY_REF and depth < stop:
            record = cache.get(ref) if depth < CACHE_DEPTH else None
            if record is None:
                record = read_node(txn, tables, ref)
                if depth < CACHE_DEPTH:
                    cache.add(ref, record)
            if record[0] == LEAF_TAG:
                return record, ref
            if (path >> (KEY_BITS - 1 - depth)) & 1:
                siblings.append(record[9:41])
                ref = record[41:]
            else:
                siblings.append(record[49:])
                ref = record[1:41]
            depth += 1
        return None, ref


def _leaf_value(key: bytes, leaf: bytes | None) -> bytes | None:
    """The value in the leaf record a walk for `key` ended in, or None if that leaf is another key's."""
    if leaf is None or leaf[1:33] != key:
        return None
    return leaf[LEAF_HEAD:]


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        found = f"{len(key)} bytes" if isinstance(key, bytes) else type(key).__name__
        raise ValueError(f"state key: expected {KEY_SIZE} bytes, got {found}")


def _check_version(version: int) -> None:
    if type(version) is not int or not 0 <= version <= _MAX_VERSION:
        raise ValueError(f"state version: expected an integer in [0, 2**56), got {version!r}")
