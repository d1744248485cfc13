"""The consensus `Application` over the real ledger: an LMDB `Store`, the ledger rules, and a small mempool.

Blocks are built and checked by the same code a node runs (`Store.build_block`, `Store.preview`, the rules),
and a decided block is committed with `Store.commit_block`, which checks the certificate once more. So the
simulator's "validity" invariant is checked by the ledger itself, not by a model of it.
"""

from __future__ import annotations

from pathlib import Path

from credledger.ledger.block import Block, CertifiedBlock
from credledger.ledger.errors import DecodeError, InvalidBlock, InvalidEvent
from credledger.ledger.events import Event, decode_event
from credledger.ledger.merkle import leaf_hash
from credledger.ledger.rules import check_event
from credledger.ledger.storage.store import Snapshot, Store
from credledger.ledger.validators import ValidatorSet
from tests.factories import Network


class LedgerApp:
    """One node's chain and waiting events."""

    def __init__(self, network: Network, path: Path) -> None:
        self.network = network
        self.genesis = network.genesis
        self.store = Store(path)
        with self.store.snapshot() as snap:
            fresh = snap.height == 0 and not snap.validator_changes()
        if fresh:
            self.store.initialize(self.genesis)
        self.pending: dict[bytes, Event] = {}
        #: Leaf hashes of events whose signatures this node checked at admission.
        self.verified: set[bytes] = set()
        self._valsets: dict[int, ValidatorSet] = {}

    def close(self) -> None:
        self.store.close()

    # -- the Application protocol ----------------------------------------------------------------------------

    def validators(self, height: int) -> ValidatorSet:
        cached = self._valsets.get(height)
        if cached is None:
            with self.store.snapshot() as snap:
                if height > snap.height + 2:
                    raise ValueError(f"validator set of height {height} is not known at height {snap.height}")
                cached = snap.validator_set(height)
            self._valsets[height] = cached
        return cached

    def has_pending_events(self) -> bool:
        return bool(self.pending)

    def build_block(self, height: int, round_: int, time_ms: int, proposer: str) -> Block:
        block, selection = self.store.build_block(
            list(self.pending.values()),
            proposer=proposer,
            round=round_,
            time_ms=time_ms,
            verified=frozenset(self.verified),
        )
        for event, _ in selection.refused:
            self.pending.pop(event.id, None)
        if block.header.height != height:
            raise RuntimeError(f"asked for a block of height {height}, the store is at {block.header.height - 1}")
        return block

    def validate_block(self, block: Block) -> None:
        header = block.header
        with self.store.snapshot() as snap:
            height = snap.height
            previous = snap.header(height) if height else None
        if header.height != height + 1:
            raise InvalidBlock(f"block of height {header.height} does not follow height {height}")
        prev_hash = previous.hash() if previous else self.genesis.hash()
        if header.prev_hash != prev_hash:
            raise InvalidBlock(f"block {header.height} does not link to the previous header")
        prev_time = previous.time_ms if previous else self.genesis.genesis_time_ms
        if header.time_ms < prev_time:
            raise InvalidBlock(f"block {header.height} time {header.time_ms} precedes {prev_time}")
        try:
            events = [decode_event(raw) for raw in block.events]
        except DecodeError as exc:
            raise InvalidBlock(f"block {header.height}: {exc}") from None
        preview = self.store.preview(header, events, verified=frozenset(self.verified))
        if (preview.log_size, preview.log_root, preview.state_root) != (
            header.log_size,
            header.log_root,
            header.state_root,
        ):
            raise InvalidBlock(f"block {header.height}: the header's log or state root does not match its events")

    # -- what the driver does around it ------------------------------------------------------------------------

    @property
    def height(self) -> int:
        with self.store.snapshot() as snap:
            return snap.height

    def certified(self, height: int) -> CertifiedBlock:
        with self.store.snapshot() as snap:
            return snap.block(height)

    def commit(self, certified: CertifiedBlock) -> None:
        """Store a decided block; drop its events (and any that no longer apply) from the waiting list."""
        self.store.commit_block(certified.block, certified.certificate, verified=frozenset(self.verified))
        self._valsets.clear()
        for raw in certified.block.events:
            self.pending.pop(decode_event(raw).id, None)

    def submit(self, event: Event, now_ms: int) -> bool:
        """Admit an event to the waiting list if the rules would take it now; False if they refuse it."""
        if event.id in self.pending:
            return True
        with self.store.snapshot() as snap:
            try:
                check_event(
                    snap.state_view(),
                    event,
                    origin=self.genesis.origin,
                    height=snap.height + 1,
                    now_ms=now_ms,
                    params=self.genesis.params,
                    committed=_Committed(snap),
                )
            except InvalidEvent:
                return False
        self.pending[event.id] = event
        self.verified.add(leaf_hash(event.encode()))
        return True


class _Committed:
    """Committed event ids, as the rules ask for them."""

    def __init__(self, snap: Snapshot) -> None:
        self._snap = snap

    def __contains__(self, event_id: object) -> bool:
        return isinstance(event_id, bytes) and self._snap.event_index(event_id) is not None
