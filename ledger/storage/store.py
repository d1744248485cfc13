"""The chain store: one LMDB environment holding blocks, events, the log, the state map and certificates.

Theory of operation
-------------------
`commit_block` is the only way a block enters the store, and it writes everything the block changes -- header,
certificate, events, event-id index, log nodes, state-map nodes, the validator set it schedules -- in one LMDB
write transaction, which LMDB makes durable (fsync) before `commit()` returns. A crash at any instant therefore
leaves a prefix of the certified chain: either the whole block or none of it.

Before writing, the transaction checks that the block belongs where it claims: origin, height, link to the
previous header (the genesis hash for block 1), strictly increasing time, the validator sets named in the header,
the certificate (more than 2/3 of the certifying set's power on this header's checkpoint), the ledger rules for
every event, and the log and state roots the header commits to. Any failure aborts the transaction and raises
`InvalidBlock`; nothing is written. So a node can hand the store blocks fetched from an untrusted peer.

With a bounded state history (`state_history`), the same transaction also forgets the state map's oldest versions
and deletes the nodes only they held (`StateMap.prune`): a crash leaves the old history or the new one, and every
height in it provable. Headers, certificates, events and the log are always kept.

Validator sets are stored by the height from which they certify. The genesis set certifies heights 1 and 2; a
block at height H whose governance events change the set schedules the new set for H + 2 (DESIGN §7).

Every read goes through a `Snapshot`, a read transaction, so a reader sees one consistent height even while a
block is being committed. A read transaction holds one slot of LMDB's reader table (`max_readers` per
environment) until its Python object is freed -- ending it is not enough -- so nothing may keep a snapshot, or
an exception whose traceback reaches one, alive after use. `read_slots_free` counts the slots left to this
process, so a server can refuse new requests before they take the slots consensus needs.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import lmdb

from credledger.ledger import codec
from credledger.ledger.block import Block, CertifiedBlock, Header, decode_header, verify_certified_header
from credledger.ledger.errors import (
    DecodeError,
    InvalidBlock,
    InvalidEvent,
    StorageError,
    StoreUnavailable,
    VerificationError,
)
from credledger.ledger.events import Event, decode_event
from credledger.ledger.genesis import Genesis
from credledger.ledger.note import SignedNote
from credledger.ledger.rules import BlockEffects, Selection, apply_block, select_events
from credledger.ledger.smt import StateProof
from credledger.ledger.storage import schema
from credledger.ledger.storage.log import MerkleLog, SharedPaths
from credledger.ledger.storage.statemap import StateMap
from credledger.ledger.validators import ValidatorSet

_GENESIS_KEY = b"genesis"
_HEIGHT_KEY = b"height"
_SCHEMA_KEY = schema.SCHEMA_KEY


@dataclass(frozen=True, slots=True)
class Preview:
    """What a block would do if committed now: its state effects and the roots its header must carry."""

    effects: BlockEffects
    log_size: int
    log_root: bytes
    state_root: bytes


class Store:
    """A node's persistent chain. Safe for one writer process; any number of readers."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        map_size: int = schema.DEFAULT_MAP_SIZE,
        durable: bool = True,
        max_readers: int = schema.DEFAULT_MAX_READERS,
        state_history: int | None = None,
    ) -> None:
        """Open (creating if needed) the store at `path`. `state_history` bounds the state map's versions kept to
        the latest that many blocks' (None: every version since genesis)."""
        self.env = schema.open_env(path, map_size=map_size, durable=durable, max_readers=max_readers)
        self.max_readers = max_readers
        #: The read transactions this process began that still hold a reader slot (alive, ended or not).
        self._readers: weakref.WeakSet[lmdb.Transaction[bytes]] = weakref.WeakSet()
        self.log = MerkleLog(self.env)
        try:
            self.state = StateMap(self.env, history=state_history)
        except ValueError:
            self.env.close()
            raise
        db = self.env.open_db
        self._meta = db(schema.CHAIN_META)
        self._headers = db(schema.CHAIN_HEADERS)
        self._certs = db(schema.CHAIN_CERTS)
        self._entries = db(schema.CHAIN_ENTRIES)
        self._ids = db(schema.CHAIN_EVENT_IDS)
        self._valsets = db(schema.CHAIN_VALSETS)
        self._consensus = db(schema.CONSENSUS_META)
        self.genesis: Genesis | None = None
        try:
            self._open_schema()
        except BaseException:
            self.env.close()
            raise

    def _open_schema(self) -> None:
        """Check the schema version (upgrading a store of schema 1) and read the genesis."""
        with self.env.begin() as txn:
            version = txn.get(_SCHEMA_KEY, db=self._meta)
            found = None if version is None else schema.from_u64(version)
            if found is not None and found not in schema.READABLE_SCHEMAS:
                raise StorageError(f"store schema {found}, expected {schema.SCHEMA_VERSION}")
            raw = txn.get(_GENESIS_KEY, db=self._meta)
            if raw is not None:
                self.genesis = codec.decode(Genesis, raw)
            self.state.grouped_from = schema.grouped_from(txn, self._meta)
        if found is not None and found < schema.SCHEMA_VERSION:
            with self.env.begin(write=True) as txn:
                latest = self.state.latest_version(txn)
                self.state.grouped_from = 0 if latest is None else latest + 1
                txn.put(schema.GROUPED_KEY, schema.u64(self.state.grouped_from), db=self._meta)
                txn.put(_SCHEMA_KEY, schema.u64(schema.SCHEMA_VERSION), db=self._meta)

    def close(self) -> None:
        self.env.close()

    # --- set-up -------------------------------------------------------------------------------------------------

    def initialize(self, genesis: Genesis, *, state_grouped_from: int = 0) -> None:
        """Write the genesis state (height 0), or check that the store already belongs to this network.

        `state_grouped_from` is for an audit's replay of a store upgraded from schema 1: the replay stores the
        state map's nodes as that store does (`schema.grouped_from`), so their records compare byte for byte.
        """
        if self.genesis is not None:
            if self.genesis.hash() != genesis.hash():
                raise StorageError(
                    f"this data directory belongs to network {self.genesis.origin} "
                    f"(genesis {self.genesis.hash().hex()[:16]}), not {genesis.origin} ({genesis.hash().hex()[:16]})"
                )
            return
        validators = codec.encode(genesis.validator_set())
        with self.env.begin(write=True) as txn:
            txn.put(_SCHEMA_KEY, schema.u64(schema.SCHEMA_VERSION), db=self._meta)
            txn.put(schema.GROUPED_KEY, schema.u64(state_grouped_from), db=self._meta)
            self.state.grouped_from = state_grouped_from
            txn.put(_GENESIS_KEY, codec.encode(genesis), db=self._meta)
            txn.put(_HEIGHT_KEY, schema.u64(0), db=self._meta)
            txn.put(schema.u64(1), validators, db=self._valsets)
            self.state.update(txn, 0, dict(genesis.initial_state()))
        self.genesis = genesis

    def _require_genesis(self) -> Genesis:
        if self.genesis is None:
            raise StorageError("the store has no genesis yet: initialize it first")
        return self.genesis

    # --- reading ------------------------------------------------------------------------------------------------

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        """A consistent read view of the chain as of the last committed block.

        A failure of the database while the view is open (a full reader table, a failed disk) is `StoreUnavailable`,
        so no caller above storage needs to know the database's own errors.
        """
        try:
            with self.env.begin() as txn:
                self._readers.add(txn)
                yield Snapshot(self, txn)
        except lmdb.Error as exc:
            raise StoreUnavailable(f"the store cannot be read ({type(exc).__name__}): {exc}") from None

    @property
    def read_slots_free(self) -> int:
        """Reader-table slots this process has not taken (other processes reading the store take some too)."""
        return self.max_readers - len(self._readers)

    def height(self) -> int:
        with self.snapshot() as snap:
            return snap.height

    # --- consensus safety record ----------------------------------------------------------------------------------

    def put_consensus(self, key: bytes, value: bytes) -> None:
        """Durably record consensus state (the double-sign guard): synced to disk when this returns."""
        self.write_consensus({key: value})

    def write_consensus(self, puts: Mapping[bytes, bytes], deletes: Iterable[bytes] = ()) -> None:
        """Durably write `puts` and delete `deletes` (absent keys are no error) in one transaction: a crash leaves
        all of it or none, synced to disk when this returns."""
        with self.env.begin(write=True) as txn:
            for key, value in puts.items():
                txn.put(key, value, db=self._consensus)
            for key in deletes:
                txn.delete(key, db=self._consensus)

    def get_consensus(self, key: bytes) -> bytes | None:
        with self.env.begin() as txn:
            value = txn.get(key, db=self._consensus)
            return None if value is None else bytes(value)

    # --- writing ------------------------------------------------------------------------------------------------

    def preview(
        self,
        header: Header,
        events: Sequence[Event],
        *,
        verified: Container[bytes] = frozenset(),
        effects: BlockEffects | None = None,
    ) -> Preview:
        """Apply `events` as the next block on top of the current state, without writing anything.

        `header` supplies the height and time the rules need; its roots are not consulted, so a proposer can pass a
        draft header. Raises InvalidEvent for the first event the rules refuse. `effects`, if given, is what the
        rules made of these very events at this height and time over this state (the caller ran them already):
        the rules are not run again, and the roots are computed from it.
        """
        genesis = self._require_genesis()
        txn = self.env.begin(write=True)
        try:
            return self._apply(txn, genesis, header, events, verified=verified, effects=effects, write=False)
        finally:
            txn.abort()

    def build_block(
        self,
        candidates: Sequence[Event],
        *,
        proposer: str,
        round: int,
        time_ms: int,
        verified: Container[bytes] = frozenset(),
    ) -> tuple[Block, Selection]:
        """A proposal for the next height: the candidates the rules accept, in order, under a header with the roots
        they produce. Nothing is written; refused candidates are returned in the selection."""
        genesis = self._require_genesis()
        txn = self.env.begin(write=True)
        try:
            snap = Snapshot(self, txn)
            height = snap.height + 1
            previous = snap.header(snap.height) if snap.height else None
            first = self.log.size(txn)
            selection = select_events(
                _ReadCache(snap.state_view()),
                candidates,
                origin=genesis.origin,
                height=height,
                block_time_ms=time_ms,
                first_index=first,
                params=genesis.params,
                committed=_CommittedIds(txn, self._ids),
                verified=verified,
            )
            encoded = tuple(e.encode() for e in selection.events)
            size = self.log.append(txn, [e.leaf_hash() for e in selection.events])
            header = Header(
                origin=genesis.origin,
                height=height,
                round=round,
                time_ms=max(time_ms, (previous.time_ms if previous else genesis.genesis_time_ms) + 1),
                prev_hash=previous.hash() if previous else genesis.hash(),
                proposer=proposer,
                log_size=size,
                log_root=self.log.root(txn, size),
                state_root=self.state.compute(txn, height, selection.effects.changes),
                event_count=len(encoded),
                validators_hash=snap.validator_set(height).hash(),
                next_validators_hash=snap.validator_set(height + 1).hash(),
            )
            return Block(header, encoded), selection
        finally:
            txn.abort()

    def commit_block(
        self,
        block: Block,
        certificate: str,
        *,
        verified: Container[bytes] = frozenset(),
        consensus: Mapping[bytes, bytes] | None = None,
        events: Sequence[Event] | None = None,
        effects: BlockEffects | None = None,
    ) -> BlockEffects:
        """Check `block` and its certificate against the chain and commit both in one durable transaction.

        Raises InvalidBlock (nothing written) if anything does not match. `verified` holds the leaf hashes of events
        whose signatures this node has already checked. `consensus` entries (such as the next height's proposer
        schedule) are written to the consensus database in the same transaction. `events` are the block's events
        already decoded by the caller (each must encode to its entry in `block.events`), to save decoding again.
        `effects`, as for `preview`, spares a second run of the rules over the same events; the header, the
        certificate and the roots the effects give are checked all the same.
        """
        genesis = self._require_genesis()
        header = block.header
        try:
            note = SignedNote.parse(certificate)
            if events is None:
                events = [decode_event(raw) for raw in block.events]
            elif len(events) != len(block.events) or any(
                e.encode() != raw for e, raw in zip(events, block.events, strict=True)
            ):
                raise InvalidBlock(f"block {header.height}: the decoded events given are not the block's")
        except DecodeError as exc:
            raise InvalidBlock(f"block {header.height}: {exc}") from None
        with self.env.begin(write=True) as txn:
            snap = Snapshot(self, txn)
            self._check_header(snap, genesis, header)
            try:
                verify_certified_header(header, note, snap.validator_set(header.height))
            except VerificationError as exc:
                raise InvalidBlock(f"block {header.height}: {exc}") from None
            try:
                preview = self._apply(txn, genesis, header, events, verified=verified, effects=effects, write=True)
            except InvalidEvent as exc:
                raise InvalidBlock(f"block {header.height}: {exc}") from None
            if (preview.log_size, preview.log_root, preview.state_root) != (
                header.log_size,
                header.log_root,
                header.state_root,
            ):
                raise InvalidBlock(
                    f"block {header.height}: header commits to log {header.log_size}/{header.log_root.hex()[:16]} "
                    f"state {header.state_root.hex()[:16]}, the events give log {preview.log_size}/"
                    f"{preview.log_root.hex()[:16]} state {preview.state_root.hex()[:16]}"
                )
            first = preview.log_size - len(events)
            height_key = schema.u64(header.height)
            txn.put(height_key, header.encode(), db=self._headers)
            txn.put(height_key, certificate.encode(), db=self._certs)
            self._put_events(txn, header.height, first, block.events, events)
            if preview.effects.next_validators is not None:
                txn.put(schema.u64(header.height + 2), codec.encode(preview.effects.next_validators), db=self._valsets)
            for key, value in (consensus or {}).items():
                txn.put(key, value, db=self._consensus)
            self.state.prune(txn)
            txn.put(_HEIGHT_KEY, height_key, db=self._meta)
        return preview.effects

    def _put_events(
        self, txn: lmdb.Transaction[bytes], height: int, first: int, raws: Sequence[bytes], events: Sequence[Event]
    ) -> None:
        """Store a block's log entries (appended: indexes only grow) and index their ids (in id order, so the
        B-tree is walked once from left to right rather than at random)."""
        index_keys = [schema.u64(first + offset) for offset in range(len(raws))]
        added = txn.cursor(db=self._entries).putmulti(zip(index_keys, raws, strict=True), append=True)[1]
        if added != len(raws):
            raise StorageError(f"block {height}: log entries from index {first} are stored already")
        ids = sorted(zip((event.id for event in events), index_keys, strict=True))
        if txn.cursor(db=self._ids).putmulti(ids, overwrite=False)[1] != len(ids):
            stored = ((e.id, txn.get(e.id, db=self._ids)) for e in events)
            repeated = next(event_id for (event_id, found), key in zip(stored, index_keys, strict=True) if found != key)
            raise InvalidBlock(f"block {height}: event {repeated.hex()} is already committed")

    def _check_header(self, snap: Snapshot, genesis: Genesis, header: Header) -> None:
        height = snap.height
        where = f"block {header.height}"
        if header.origin != genesis.origin:
            raise InvalidBlock(f"{where}: origin {header.origin!r}, this chain is {genesis.origin!r}")
        if header.height != height + 1:
            raise InvalidBlock(f"{where}: expected height {height + 1}")
        previous = snap.header(height) if height else None
        prev_hash = previous.hash() if previous else genesis.hash()
        if header.prev_hash != prev_hash:
            raise InvalidBlock(f"{where}: previous hash {header.prev_hash.hex()[:16]}, expected {prev_hash.hex()[:16]}")
        prev_time = previous.time_ms if previous else genesis.genesis_time_ms
        if header.time_ms <= prev_time:
            raise InvalidBlock(f"{where}: time {header.time_ms} is not after the previous block's {prev_time}")
        validators = snap.validator_set(header.height)
        if header.proposer not in validators:
            raise InvalidBlock(f"{where}: proposer {header.proposer} is not a validator at this height")
        expected = (validators.hash(), snap.validator_set(header.height + 1).hash())
        if (header.validators_hash, header.next_validators_hash) != expected:
            raise InvalidBlock(f"{where}: validator-set hashes do not match the chain's validator sets")

    def _apply(
        self,
        txn: lmdb.Transaction[bytes],
        genesis: Genesis,
        header: Header,
        events: Sequence[Event],
        *,
        verified: Container[bytes],
        effects: BlockEffects | None,
        write: bool,
    ) -> Preview:
        """The block's effects and roots over the state in `txn`. The log is appended in `txn` (its root is read
        back from the nodes); the state version is written only with `write`, else only its root is computed (for
        a transaction that is aborted)."""
        first = self.log.size(txn)
        if effects is None:
            effects = apply_block(
                _ReadCache(Snapshot(self, txn).state_view()),
                events,
                origin=genesis.origin,
                height=header.height,
                block_time_ms=header.time_ms,
                first_index=first,
                params=genesis.params,
                committed=_CommittedIds(txn, self._ids),
                verified=verified,
            )
        size = self.log.append(txn, [e.leaf_hash() for e in events])
        update = self.state.update if write else self.state.compute
        state_root = update(txn, header.height, effects.changes)
        return Preview(effects, size, self.log.root(txn, size), state_root)


class _CommittedIds:
    """The set of committed event ids, read from the store inside one transaction."""

    def __init__(self, txn: lmdb.Transaction[bytes], db: lmdb._Database) -> None:
        self._txn = txn
        self._db = db

    def __contains__(self, event_id: object) -> bool:
        return isinstance(event_id, bytes) and self._txn.get(event_id, db=self._db) is not None


class _ReadCache:
    """A state view that remembers what it read: the rules read the same member and key records for every event
    of a block, and the view is only used inside one transaction, so the cache cannot go stale."""

    def __init__(self, base: _StateAt) -> None:
        self._base = base
        self._seen: dict[bytes, bytes | None] = {}

    def get(self, key: bytes, /) -> bytes | None:
        try:
            return self._seen[key]
        except KeyError:
            value = self._seen[key] = self._base.get(key)
            return value


class _StateAt:
    """The state map at one version, as the `StateView` the rules read."""

    def __init__(self, store: Store, txn: lmdb.Transaction[bytes], version: int) -> None:
        state = store.state
        self._get = state.reader(txn, None if version == state.latest_version(txn) else version)

    def get(self, key: bytes, /) -> bytes | None:
        return self._get(key)


class Snapshot:
    """Reads from one transaction: everything it returns is as of the same committed height."""

    def __init__(self, store: Store, txn: lmdb.Transaction[bytes]) -> None:
        self._store = store
        self._txn = txn

    @property
    def height(self) -> int:
        raw = self._txn.get(_HEIGHT_KEY, db=self._store._meta)
        return 0 if raw is None else schema.from_u64(raw)

    @property
    def log_size(self) -> int:
        return self._store.log.size(self._txn)

    def header(self, height: int) -> Header:
        raw = self._txn.get(schema.u64(height), db=self._store._headers)
        if raw is None:
            raise KeyError(f"no block at height {height}")
        return decode_header(bytes(raw))

    def certificate(self, height: int) -> str:
        raw = self._txn.get(schema.u64(height), db=self._store._certs)
        if raw is None:
            raise KeyError(f"no block at height {height}")
        return bytes(raw).decode()

    def block(self, height: int) -> CertifiedBlock:
        header = self.header(height)
        first = header.log_size - header.event_count
        events = tuple(self.entry(i) for i in range(first, header.log_size))
        return CertifiedBlock(Block(header, events), self.certificate(height))

    def entry(self, index: int) -> bytes:
        raw = self._txn.get(schema.u64(index), db=self._store._entries)
        if raw is None:
            raise KeyError(f"no event at log index {index}")
        return bytes(raw)

    def committed_ids(self) -> Container[bytes]:
        """The ids of every committed event, as the `committed` container the rules take."""
        return _CommittedIds(self._txn, self._store._ids)

    def event_index(self, event_id: bytes) -> int | None:
        raw = self._txn.get(event_id, db=self._store._ids)
        return None if raw is None else schema.from_u64(raw)

    def block_height_of(self, index: int) -> int:
        """The height of the block that appended log index `index` (binary search over headers)."""
        lo, hi = 1, self.height
        if index >= self.log_size:
            raise KeyError(f"no event at log index {index}")
        while lo < hi:
            mid = (lo + hi) // 2
            if self.header(mid).log_size > index:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def validator_set(self, height: int) -> ValidatorSet:
        """The set that certifies block `height` (the latest set scheduled at or below it)."""
        with self._txn.cursor(db=self._store._valsets) as cursor:
            if not cursor.set_range(schema.u64(height + 1)):
                if not cursor.last():
                    raise StorageError("no validator set stored: the store is not initialized")
            elif not cursor.prev():
                raise StorageError(f"no validator set for height {height}")
            return codec.decode(ValidatorSet, bytes(cursor.value()))

    def validator_changes(self) -> list[tuple[int, ValidatorSet]]:
        """Every validator set with the height from which it certifies, in order (the genesis set first)."""
        with self._txn.cursor(db=self._store._valsets) as cursor:
            return [(schema.from_u64(k), codec.decode(ValidatorSet, bytes(v))) for k, v in cursor]

    @property
    def oldest_state_height(self) -> int:
        """The oldest height whose state can still be read and proved (0 unless the state history is bounded)."""
        oldest = self._store.state.oldest_version(self._txn)
        return 0 if oldest is None else oldest

    def state_view(self, version: int | None = None) -> _StateAt:
        return _StateAt(self._store, self._txn, self.height if version is None else version)

    def state_root(self, version: int | None = None) -> bytes:
        return self._store.state.root(self._txn, self.height if version is None else version)

    def prove_state(self, key: bytes, version: int | None = None) -> tuple[bytes | None, StateProof]:
        """The value under `key` and its proof, as of `version` (default: the latest block); `StatePruned` for a
        version before the state history the store keeps."""
        return self._store.state.get_proven(self._txn, key, self.height if version is None else version)

    def state_proof_parts(
        self, key: bytes, version: int | None = None
    ) -> tuple[bytes | None, tuple[bytes, bytes] | None, list[bytes]]:
        """`prove_state` without the proof record: the value, the proof's leaf as (key, value hash) or None, and
        its siblings, lowest first (`StateMap.get_proof_parts`)."""
        return self._store.state.get_proof_parts(self._txn, key, self.height if version is None else version)

    def log_root(self, size: int | None = None) -> bytes:
        return self._store.log.root(self._txn, size)

    def inclusion_proof(self, index: int, size: int, shared: SharedPaths | None = None) -> list[bytes]:
        """The inclusion proof of entry `index` in the log of `size` entries, through `shared` if it is at that
        size (proofs at one size share their upper parts)."""
        if shared is not None and shared.size == size:
            return shared.inclusion_proof(self._txn, index)
        return self._store.log.inclusion_proof(self._txn, index, size)

    def shared_paths(self, size: int) -> SharedPaths:
        """A keeper of the parts inclusion proofs in the log of `size` entries share, for `inclusion_proof`."""
        return self._store.log.shared_paths(self._txn, size)

    def consistency_proof(self, size1: int, size2: int) -> list[bytes]:
        return self._store.log.consistency_proof(self._txn, size1, size2)

    def node_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        """Complete nodes [start, end) of tree `level` (a `ledger.tiles.NodeHashes`)."""
        return self._store.log.node_hashes(self._txn, level, start, end)
