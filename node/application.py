"""The node's chain: the store, the mempool, admission, and the consensus `Application`.

Theory of operation
-------------------
Everything here is synchronous and runs on the node's event loop thread; the I/O shell (API, peers, consensus
driver) calls in and never touches the store directly for writes.

Admission (`admit`, `admit_batch`) decodes events, refuses duplicates and anything the rules refuse against the
committed state *plus the effects of the events already pending*, so a client may submit an issue and, before it
commits, a revoke of the same credential. A batch meets the rules in one pass over one snapshot. Each admitted
event's signature is verified exactly once: its leaf hash goes into `verified`, which block validation and commit
pass to the rules so they skip re-checking it. Admission only enqueues: listeners registered with `on_admit` (the
consensus driver) hear of each admitted event and decide when to build a block.

The rules also say, for each admitted event, which state keys it read or wrote and what it wrote (its `Trace`).
After every commit the block's events leave the mempool, and the rest are re-checked in arrival order only where
something they depend on may have changed: an event that read or wrote a key the block wrote (or a key an earlier
pending event wrote before it was dropped or re-checked), or one old enough for its time window to have closed.
Those the block invalidated are dropped; the pending overlay is rebuilt from the survivors' writes.
Listeners registered with `on_commit` hear about every committed block (the API resolves `?wait=commit`
requests that way).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from credledger.ledger.block import Block, CertifiedBlock, Header
from credledger.ledger.errors import DecodeError, InvalidBlock, InvalidEvent
from credledger.ledger.events import Event, decode_event
from credledger.ledger.genesis import Genesis
from credledger.ledger.rules import BlockEffects, Trace, select_events
from credledger.ledger.state import StateView
from credledger.ledger.storage.bundles import SharedParts
from credledger.ledger.storage.store import Snapshot, Store
from credledger.ledger.validators import ValidatorSet
from credledger.node.mempool import DuplicateEvent, Mempool, MempoolError, MempoolFull, Pending
from credledger.node.metrics import Metrics

_E = TypeVar("_E", bound=BaseException)

#: Validated proposals remembered, so a block that is validated and then committed is applied at most twice.
MAX_VERIFIED_CACHE = 1_000_000
#: Committed state entries kept for admission and re-checks (the same member and key records serve every event;
#: each entry costs about 300 bytes).
MAX_STATE_CACHE = 50_000
#: Blocks of one height whose rules' outcome is remembered (one per round proposed, rarely more than a few).
MAX_RULED_BLOCKS = 16


@dataclass(frozen=True, slots=True)
class Admitted:
    event_id: bytes
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class Committed:
    """What a committed block did, for listeners."""

    height: int
    first_index: int
    event_ids: tuple[bytes, ...]
    checkpoint: str


class _Overlay:
    """The committed state with pending writes on top."""

    def __init__(self, base: StateView, changes: dict[bytes, bytes | None]) -> None:
        self._base = base
        self._changes = changes

    def get(self, key: bytes, /) -> bytes | None:
        if key in self._changes:
            return self._changes[key]
        return self._base.get(key)


class _StateCache:
    """Entries of the latest committed state, as admission and the mempool re-check read them (present or absent).

    Kept exact across commits: `LedgerApplication.commit` hands it each block's changes, and the entries it holds take
    their new values. A snapshot at any other height than the one the cache follows (a commit that did not pass through
    `LedgerApplication.commit`) empties it first. When it is full it is emptied too, and the records every event needs
    (members, issuer keys) come back at the next read.
    """

    def __init__(self, limit: int = MAX_STATE_CACHE) -> None:
        self._limit = limit
        self._values: dict[bytes, bytes | None] = {}
        self._height = -1

    def view(self, snap: Snapshot) -> StateView:
        """The committed state of `snap`, read through the cache."""
        if snap.height != self._height:
            self._values.clear()
            self._height = snap.height
        return _CachedView(snap.state_view(), self._values, self._limit)

    def committed(self, height: int, changes: Mapping[bytes, bytes | None]) -> None:
        """Block `height` was committed with these state changes: cached entries take their new values."""
        if height != self._height + 1:
            self._values.clear()
        values = self._values
        for key, value in changes.items():
            if key in values:
                values[key] = value
        self._height = height


class _CachedView:
    """A state view reading through `_StateCache`'s entries."""

    def __init__(self, base: StateView, values: dict[bytes, bytes | None], limit: int) -> None:
        self._base = base
        self._values = values
        self._limit = limit

    def get(self, key: bytes, /) -> bytes | None:
        try:
            return self._values[key]
        except KeyError:
            value = self._base.get(key)
            if len(self._values) >= self._limit:
                self._values.clear()
            self._values[key] = value
            return value


class _RuledBlocks:
    """What the rules made of the blocks proposed at the current height, so that building, validating and
    committing one block runs them once.

    The rules are a pure function of the state before the block, the block's height and time, and its events
    (DESIGN §3). The key names all of them: the previous block's hash (which fixes the state and the committed
    ids), the height, the time, and the events' exact bytes, each named by its log leaf hash (which the node has
    computed for every event anyway). A block that differs from the one the rules ran on in any of these misses
    and meets the rules afresh; one that differs only in its roots or certificate still has them checked by the
    store, against the roots these effects give. `events` are always the block's own, decoded from its bytes.
    """

    def __init__(self, limit: int = MAX_RULED_BLOCKS) -> None:
        self._limit = limit
        self._effects: dict[bytes, BlockEffects] = {}

    @staticmethod
    def _key(header: Header, events: Sequence[Event]) -> bytes:
        digest = hashlib.sha256(header.prev_hash)
        digest.update(header.height.to_bytes(8, "big") + header.time_ms.to_bytes(8, "big"))
        digest.update(b"".join([event.leaf_hash() for event in events]))
        return digest.digest()

    def get(self, header: Header, events: Sequence[Event]) -> BlockEffects | None:
        return self._effects.get(self._key(header, events))

    def put(self, header: Header, events: Sequence[Event], effects: BlockEffects) -> None:
        if len(self._effects) >= self._limit:
            self._effects.clear()
        self._effects[self._key(header, events)] = effects

    def clear(self) -> None:
        self._effects.clear()


class LedgerApplication:
    def __init__(
        self,
        store: Store,
        genesis: Genesis,
        *,
        mempool: Mempool[Event],
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        store.initialize(genesis)
        self.store = store
        self.genesis = genesis
        #: The network's identity, which every proof bundle names (hashed once, not per request).
        self.genesis_hash = genesis.hash()
        self.params = genesis.params
        self.mempool = mempool
        self.metrics = metrics or Metrics()
        self.clock = clock
        self._verified: set[bytes] = set()
        self._state = _StateCache()
        #: Pending events by their encoding, and the last validated block with its events: each event is decoded
        #: once per node, not again by validation and commit (of that very block: header and event bytes equal).
        self._decoded: dict[bytes, Event] = {}
        self._validated: tuple[Block, list[Event]] | None = None
        self._pending_changes: dict[bytes, bytes | None] = {}
        self._pending_ids: set[bytes] = set()
        #: What each pending event read and wrote at admission (or its last re-check).
        self._traces: dict[bytes, Trace] = {}
        self._ruled = _RuledBlocks()
        #: What every proof bundle served at the latest height shares (the API's bundle route reads it).
        self.bundle_parts = SharedParts()
        self._listeners: list[Callable[[Committed], None]] = []
        self._admit_listeners: list[Callable[[Admitted, bytes, str | None], None]] = []
        self._refresh_metrics()

    # --- reading ------------------------------------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self.store.height()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def on_commit(self, listener: Callable[[Committed], None]) -> None:
        self._listeners.append(listener)

    def on_admit(self, listener: Callable[[Admitted, bytes, str | None], None]) -> None:
        """Hear of every admitted event with its encoding and where it came from (a peer's member id, or None)."""
        self._admit_listeners.append(listener)

    # --- admission ----------------------------------------------------------------------------------------------

    def admit(self, data: bytes | Event, *, source: str | None = None) -> Admitted:
        """Admit one event to the mempool, or raise the precise refusal (nothing changes on refusal).

        `source` names the peer that gossiped the event (None: a client of this node)."""
        outcome = self._admit_many([data], source)[0]
        if isinstance(outcome, Admitted):
            return outcome
        raise outcome

    def admit_batch(
        self, items: Sequence[bytes | Event], *, source: str | None = None
    ) -> list[Admitted | InvalidEvent | DecodeError | MempoolError]:
        """Admit each event in order; a refusal of one (a duplicate or a full mempool too) does not stop the others.

        The whole batch meets the rules in one pass over one snapshot, each event seeing the ones before it."""
        results = self._admit_many(items, source)
        if source is None:
            for outcome in results:
                if not isinstance(outcome, Admitted):
                    self.metrics.events_rejected.labels(getattr(outcome, "rule", outcome.code)).inc()
        return results

    def _admit_many(
        self, items: Sequence[bytes | Event], source: str | None
    ) -> list[Admitted | InvalidEvent | DecodeError | MempoolError]:
        results: list[Admitted | InvalidEvent | DecodeError | MempoolError | None] = [None] * len(items)
        candidates: list[tuple[int, Event, bytes]] = []
        seen: set[bytes] = set()
        limit_events, limit_bytes = self.mempool.max_events, self.mempool.max_bytes
        room_events, room_bytes = limit_events - len(self.mempool), limit_bytes - self.mempool.size_bytes
        for position, item in enumerate(items):
            if isinstance(item, Event):
                event, encoded = item, item.encode()
            else:
                try:
                    event = decode_event(item)
                except DecodeError as exc:
                    results[position] = _detached(exc)
                    continue
                encoded = item
            if event.id in self.mempool or event.id in seen:
                results[position] = DuplicateEvent(f"event {event.id.hex()} is already pending")
            elif room_events <= 0:
                results[position] = MempoolFull(
                    f"mempool holds its limit of {self.mempool.max_events} events; retry later"
                )
            elif len(encoded) > room_bytes:
                results[position] = MempoolFull(
                    f"mempool holds its limit of {self.mempool.max_bytes} bytes; retry later"
                )
            else:
                seen.add(event.id)
                room_events -= 1
                room_bytes -= len(encoded)
                candidates.append((position, event, encoded))
        if candidates:
            self._admit_checked(candidates, results, source)
        return [outcome for outcome in results if outcome is not None]

    def _admit_checked(
        self,
        candidates: list[tuple[int, Event, bytes]],
        results: list[Admitted | InvalidEvent | DecodeError | MempoolError | None],
        source: str | None,
    ) -> None:
        """Run the rules over `candidates` in one pass and admit those they accept."""
        with self.store.snapshot() as snap:
            selection = select_events(
                _Overlay(self._state.view(snap), self._pending_changes),
                [event for _, event, _ in candidates],
                origin=self.genesis.origin,
                height=snap.height + 1,
                block_time_ms=self.now_ms(),
                first_index=snap.log_size + len(self.mempool),
                params=self.params,
                committed=_Either(snap.committed_ids(), self._pending_ids),
                verified=self._verified,
                trace=True,
            )
        # Drop the refusals' tracebacks now: their frames hold the snapshot, and through reference cycles (a frame
        # holding the list its own exception went into) would keep its LMDB reader slot until the next collection.
        refused = {id(event): _detached(exc) for event, exc in selection.refused}
        traces = iter(selection.traces)
        now = self.clock()
        admitted: list[tuple[Admitted, bytes]] = []
        for position, event, encoded in candidates:
            exc = refused.get(id(event))
            if exc is not None:
                results[position] = _detached(type(exc)(exc.rule, f"event 0 ({event.id.hex()}): {exc.detail}"))
                continue
            trace = next(traces)
            leaf = event.leaf_hash()
            self.mempool.add(event.id, encoded, event, now)
            self._decoded[encoded] = event
            self._traces[event.id] = trace
            self._verified.add(leaf)
            self._pending_changes.update(trace.writes)
            self._pending_ids.add(event.id)
            note = results[position] = Admitted(event.id, leaf)
            admitted.append((note, encoded))
        self._refresh_mempool_metrics()
        for note, encoded in admitted:
            for listener in self._admit_listeners:
                listener(note, encoded, source)

    # --- consensus Application ----------------------------------------------------------------------------------

    def validators(self, height: int) -> ValidatorSet:
        with self.store.snapshot() as snap:
            return snap.validator_set(height)

    def has_pending_events(self) -> bool:
        return len(self.mempool) > 0

    def build_block(self, height: int, round_: int, time_ms: int, proposer: str) -> Block:
        if height != self.height + 1:
            raise InvalidBlock(f"cannot build height {height}: the chain is at {self.height}")
        pending = self.mempool.take(self.params.max_block_events, self.params.max_block_bytes)
        block, selection = self.store.build_block(
            [p.event for p in pending],
            proposer=proposer,
            round=round_,
            time_ms=time_ms,
            verified=self._verified,
        )
        if block.header.time_ms == time_ms:  # the rules ran at the header's time: what they gave holds for it
            self._ruled.put(block.header, selection.events, selection.effects)
        return block

    def validate_block(self, block: Block) -> None:
        header = block.header
        if header.height != self.height + 1:
            raise InvalidBlock(f"block {header.height} does not follow height {self.height}")
        if header.time_ms > self.now_ms() + self.params.max_clock_skew_ms:
            raise InvalidBlock(f"block {header.height} is timed {header.time_ms - self.now_ms()} ms in the future")
        if sum(len(e) for e in block.events) > self.params.max_block_bytes:
            raise InvalidBlock(f"block {header.height} exceeds {self.params.max_block_bytes} bytes of events")
        if len(block.events) > self.params.max_block_events:
            raise InvalidBlock(f"block {header.height} carries more than {self.params.max_block_events} events")
        try:
            events = self._decode(block.events)
        except DecodeError as exc:
            raise InvalidBlock(f"block {header.height}: {exc}") from None
        ruled = self._ruled.get(header, events)
        preview = self.store.preview(header, events, verified=self._verified, effects=ruled)
        if ruled is None:
            self._ruled.put(header, events, preview.effects)
        if (preview.log_size, preview.log_root, preview.state_root) != (
            header.log_size,
            header.log_root,
            header.state_root,
        ):
            raise InvalidBlock(f"block {header.height}: the header's roots do not match its events")
        # Signatures are now checked: remember them so commit does not verify them again.
        self._remember(event.leaf_hash() for event in events)
        self._validated = (block, events)

    def _decode(self, encoded: Sequence[bytes]) -> list[Event]:
        """The events of a block, taken from the mempool where they are pending, else decoded."""
        return [self._decoded.get(raw) or decode_event(raw) for raw in encoded]

    # --- commit -------------------------------------------------------------------------------------------------

    def commit(self, certified: CertifiedBlock, *, consensus: Mapping[bytes, bytes] | None = None) -> BlockEffects:
        """Commit a certified block (decided here or fetched from a peer), then prune and re-check the mempool.

        `consensus` entries (the next height's proposer schedule) are stored in the same transaction."""
        block = certified.block
        validated, self._validated = self._validated, None
        events = validated[1] if validated is not None and validated[0] == block else self._decode(block.events)
        effects = self.store.commit_block(
            block,
            certified.certificate,
            verified=self._verified,
            consensus=consensus,
            events=events,
            effects=self._ruled.get(block.header, events),
        )
        self._ruled.clear()
        self._state.committed(block.header.height, effects.changes)
        leaves = [event.leaf_hash() for event in events]
        ids = tuple(e.id for e in events)
        now = self.clock()
        for event_id in ids:
            pending = self.mempool.get(event_id)
            if pending is not None:  # admitted here, not only seen in the block
                self.metrics.commit_latency.observe(now - pending.admitted_at)
        self.mempool.remove(ids)
        for raw in block.events:
            self._decoded.pop(raw, None)
        self._verified.difference_update(leaves)
        for event_id in ids:
            self._traces.pop(event_id, None)
        self._revalidate_pending(effects.changes)
        header = block.header
        self.metrics.height.set(header.height)
        self.metrics.log_size.set(header.log_size)
        self.metrics.blocks_committed.inc()
        self.metrics.events_committed.inc(len(ids))
        note = Committed(header.height, header.log_size - len(ids), ids, certified.certificate)
        for listener in self._listeners:
            listener(note)
        return effects

    def _revalidate_pending(self, changed: Iterable[bytes]) -> None:
        """Re-check, in arrival order, the pending events a commit may have invalidated: those that read or wrote a
        state key the block (or an earlier pending event that changed or left) wrote, and those old enough for
        the time window to have run out. The others keep their admission's outcome and writes."""
        dirty = set(changed)
        stale_before = self.now_ms() - self.params.max_clock_skew_ms
        running: dict[bytes, bytes | None] = {}
        survivors: set[bytes] = set()
        dropped: list[Pending[Event]] = []
        with self.store.snapshot() as snap:
            base = self._state.view(snap)
            committed = snap.committed_ids()
            for item in self.mempool.take(len(self.mempool), self.mempool.size_bytes):
                old = self._traces.get(item.event_id)
                if old is not None and old.touched.isdisjoint(dirty) and item.event.time_ms >= stale_before:
                    running.update(old.writes)
                    survivors.add(item.event_id)
                    continue
                selection = select_events(
                    _Overlay(base, running),
                    [item.event],
                    origin=self.genesis.origin,
                    height=snap.height + 1,
                    block_time_ms=self.now_ms(),
                    first_index=snap.log_size,
                    params=self.params,
                    committed=_Either(committed, survivors),
                    verified=self._verified,
                    trace=True,
                )
                if old is not None:
                    dirty.update(old.writes)  # what it wrote before may now differ, or be gone
                if selection.refused:
                    dropped.append(item)
                    continue
                new = selection.traces[0]
                dirty.update(new.writes)
                self._traces[item.event_id] = new
                running.update(new.writes)
                survivors.add(item.event_id)
        self.mempool.remove(item.event_id for item in dropped)
        for item in dropped:
            self._verified.discard(item.event.leaf_hash())
            self._decoded.pop(item.encoded, None)
            self._traces.pop(item.event_id, None)
        self._pending_changes = running
        self._pending_ids = survivors
        self._refresh_mempool_metrics()

    def _remember(self, leaves: Iterable[bytes]) -> None:
        if len(self._verified) > MAX_VERIFIED_CACHE:
            # Keep what the mempool needs; block caches rebuild themselves by re-verifying.
            self._verified = {p.event.leaf_hash() for p in self.mempool.take(len(self.mempool), 1 << 62)}
        self._verified.update(leaves)

    def _refresh_mempool_metrics(self) -> None:
        self.metrics.mempool_events.set(len(self.mempool))
        self.metrics.mempool_bytes.set(self.mempool.size_bytes)

    def _refresh_metrics(self) -> None:
        with self.store.snapshot() as snap:
            self.metrics.height.set(snap.height)
            self.metrics.log_size.set(snap.log_size)


def _detached(error: _E) -> _E:
    """`error` without its traceback (nor those of the errors it was raised from), so that keeping it keeps no
    frame alive: the frames of a refused admission hold its store snapshot, whose LMDB reader slot stays taken for
    as long as they live. A batch keeps every refusal until it is answered."""
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__traceback__ = None
        link = link.__cause__ or link.__context__
    return error


class _Either:
    """Committed ids, or ids pending in the mempool."""

    def __init__(self, first: Container[bytes], second: set[bytes]) -> None:
        self._first = first
        self._second = second

    def __contains__(self, item: object) -> bool:
        return item in self._second or item in self._first
