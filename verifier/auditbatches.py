"""The audit's work beside the replay, in a process pool on every core: signature checks ahead of it, comparisons
of a node's files behind it (DESIGN §10, §12).

Theory of operation
-------------------
`Batches` reads certified blocks from the source in order and cuts their events into tasks of about
`BATCH_EVENTS`; a worker runs `verify_batch` on each, checking every signature under the key its (member, key id)
names in the *key directory* the task carries. The directory is the genesis keys plus every key a member.add,
member.update or key.add event carried, learned (`Keys.learn`) from the workers' results in log order. A key id
is derived from the key, and an id two keys would share is dropped for good, so "verified" here means what the
rules' own check means: the leaf hashes a result lists may go to `Store.commit_block(verified=...)`. An event
whose key the directory does not know yet (added a few batches earlier) is left to the rules. A signature that
fails under a known key is reported at once.

Workers read events with msgpack's C unpacker rather than the strict codec: the replay decodes every event
strictly anyway. (Sending strictly decoded events back would cost the replay as much to unpickle as to decode.)

With a data directory, `Comparisons` hands each replayed block's comparison of the node's stored log and
state-map nodes with the replay's (`DataDir.compare_block`) to the pool too: it only reads both stores, so
it can trail the replay by a few blocks and keeps that reading off the replay's core.

Workers start from a fork server, never from a fork of a process holding LMDB maps, and run at
a lower priority than the replay, the one serial step.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from credledger.ledger import domains, merkle
from credledger.ledger.block import CertifiedBlock, Header, decode_header
from credledger.ledger.errors import BadSignature, DecodeError
from credledger.ledger.events import (
    Issue,
    KeyAdd,
    MemberAdd,
    MemberUpdate,
    Payload,
    Reinstate,
    Revoke,
    Suspend,
    decode_event,
)
from credledger.ledger.genesis import Genesis
from credledger.ledger.keys import key_id, verify_signature
from credledger.ledger.storage.datadir import AuditDiscrepancy, DataDir, Discrepancy, ReplayView
from credledger.verifier.auditsource import BlockSource

#: Events per task sent to a worker: large enough to amortise the pickling, small enough to keep all cores busy.
BATCH_EVENTS = 2_000
#: Batches in flight per worker, so no core waits for the replay to hand out work.
BATCHES_AHEAD = 3
#: How much lower the signature workers' scheduling priority is than the replay's.
WORKER_NICENESS = 5

KeyDirectory = dict[tuple[str, bytes], bytes]


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What a worker found in a batch of encoded events."""

    verified: tuple[bytes, ...]
    #: (position in the batch, what failed) for signatures that do not verify under the key their id names.
    bad: tuple[tuple[int, str], ...]
    #: Keys the batch's membership events carry, in log order.
    keys: tuple[tuple[str, bytes], ...]
    #: Payload kinds counted, and the credential events the summary needs (kind, digest, expiry).
    kinds: Mapping[str, int]
    credentials: tuple[tuple[str, bytes, int | None], ...]
    #: CPU seconds the worker spent on the batch.
    cpu: float = 0.0


def verify_batch(raws: Sequence[bytes], directory: Mapping[tuple[str, bytes], bytes]) -> BatchResult:
    """Check the signatures of encoded events under the keys `directory` names (runs in a worker process).

    Events are read with msgpack's C unpacker rather than the strict codec: the replay decodes every event
    strictly anyway, and for the canonical encoding it accepts, the bytes a signature covers are exactly the
    event's 4-item array cut before its signatures, re-headed as a 3-item array (`UnsignedEvent`). Anything
    unexpected here is left unverified, for the replay to judge.
    """
    started = time.process_time()
    verified: list[bytes] = []
    bad: list[tuple[int, str]] = []
    learned: list[tuple[str, bytes]] = []
    kinds: Counter[str] = Counter()
    credentials: list[tuple[str, bytes, int | None]] = []
    for position, raw in enumerate(raws):
        parsed = event_parts(raw)
        if parsed is None:
            continue
        signed, payload, signatures = parsed
        message = domains.EVENT + signed
        known = True
        for member, kid, signature in signatures:
            public = directory.get((member, kid))
            if public is None:
                known = False
                break
            try:
                verify_signature(public, message, signature)
            except BadSignature:
                bad.append((position, f"signature by {member}+{kid.hex()} does not verify"))
                known = False
                break
        if known:
            verified.append(merkle.leaf_hash(raw))
        tag = payload[0]
        kinds[tag] += 1
        if tag in _CREDENTIAL_TAGS:
            digest = payload[1]
            expires = payload[_ISSUE_EXPIRES] if tag == Issue.TAG else None
            if tag != Issue.TAG or expires is not None:
                credentials.append((tag, digest, expires))
        elif tag in _KEY_TAGS:
            try:
                learned.extend(_keys_carried(decode_event(raw).payload))
            except DecodeError:
                continue  # the replay names it, at its block
    cpu = time.process_time() - started
    return BatchResult(tuple(verified), tuple(bad), tuple(learned), dict(kinds), tuple(credentials), cpu)


#: Positions in a payload's encoding ([tag, fields...]), from the records' declared field order.
_ISSUE_EXPIRES = 1 + [f.name for f in dataclasses.fields(Issue)].index("expires_ms")
_CREDENTIAL_TAGS = frozenset(cls.TAG for cls in (Issue, Revoke, Suspend, Reinstate))
_KEY_TAGS = frozenset(cls.TAG for cls in (MemberAdd, MemberUpdate, KeyAdd))
_EVENT_ARRAY = 0x94  # the canonical header of an event's 4-field array
_UNSIGNED_ARRAY = b"\x93"  # ... and of the 3-field unsigned event


def event_parts(raw: bytes) -> tuple[bytes, tuple[Any, ...], list[tuple[str, bytes, bytes]]] | None:
    """(signed bytes, payload array, signatures) of an encoded event, or None if it does not look like one."""
    if not raw or raw[0] != _EVENT_ARRAY:
        return None
    unpacker = msgpack.Unpacker(raw=False, use_list=False, max_buffer_size=len(raw))
    unpacker.feed(raw[1:])
    try:
        unpacker.skip()  # origin
        unpacker.skip()  # time
        payload = unpacker.unpack()
        cut = unpacker.tell()
        signatures = unpacker.unpack()
    except (ValueError, msgpack.UnpackException):
        return None
    well_formed = (
        isinstance(payload, tuple)
        and payload
        and isinstance(payload[0], str)
        and isinstance(signatures, tuple)
        and signatures
        and all(
            isinstance(sig, tuple)
            and len(sig) == 3
            and isinstance(sig[0], str)
            and isinstance(sig[1], bytes)
            and isinstance(sig[2], bytes)
            for sig in signatures
        )
    )
    if not well_formed:
        return None
    checked = [(sig[0], sig[1], sig[2]) for sig in signatures]
    return _UNSIGNED_ARRAY + raw[1 : 1 + cut], payload, checked


def _keys_carried(payload: Payload) -> list[tuple[str, bytes]]:
    if isinstance(payload, MemberAdd):
        return [(payload.member, payload.node_key), *((payload.member, k) for k in payload.issuer_keys)]
    if isinstance(payload, MemberUpdate):
        return [(payload.member, payload.node_key)]
    if isinstance(payload, KeyAdd):
        return [(payload.member, payload.public_key)]
    return []


class Keys:
    """The key directory: (member, key id) -> public key, with ids that two keys claim dropped for good."""

    def __init__(self, genesis: Genesis) -> None:
        self.directory: KeyDirectory = {}
        self._ambiguous: set[tuple[str, bytes]] = set()
        for member in genesis.members:
            self.learn([(member.member, member.node_key), *((member.member, k) for k in member.issuer_keys)])

    def learn(self, keys: Iterable[tuple[str, bytes]]) -> None:
        for member, public in keys:
            slot = (member, key_id(member, public))
            if slot in self._ambiguous:
                continue
            known = self.directory.get(slot)
            if known is None:
                self.directory[slot] = public
            elif known != public:
                del self.directory[slot]
                self._ambiguous.add(slot)


class Batches:
    """Blocks in order with their workers' results, keeping the pool busy BATCHES_AHEAD batches ahead.

    Blocks are grouped into tasks of about BATCH_EVENTS events (many small blocks, or one block split in several);
    each block is yielded once all its events' results are in.
    """

    def __init__(
        self,
        source: BlockSource,
        start: int,
        target: int,
        *,
        pool: Executor | None,
        keys: Keys,
        ahead: int,
    ) -> None:
        self._source = source
        self._next = start + 1
        self._target = target
        self._pool = pool
        self._keys = keys
        self._ahead = ahead
        # Each entry: a block and the futures (or results) of the batches covering its events, in order.
        self._queue: deque[tuple[CertifiedBlock, list[Future[BatchResult] | BatchResult]]] = deque()
        self._tasks = 0

    def __iter__(self) -> Batches:
        return self

    def __next__(self) -> tuple[CertifiedBlock, BatchResult]:
        self._fill()
        if not self._queue:
            raise StopIteration
        block, parts = self._queue.popleft()
        results = [p.result() if isinstance(p, Future) else p for p in parts]
        self._tasks -= sum(1 for p in parts if isinstance(p, Future))
        return block, _merge(results)

    def _fill(self) -> None:
        while self._next <= self._target and (not self._queue or self._tasks < self._ahead):
            block = self._source.block(self._next)
            if block.header.height != self._next:
                found = Discrepancy(self._next, "block", f"asked for block {self._next}, got {block.header.height}")
                raise AuditDiscrepancy(found)
            self._next += 1
            events = block.block.events
            parts: list[Future[BatchResult] | BatchResult] = []
            for offset in range(0, len(events), BATCH_EVENTS):
                chunk = events[offset : offset + BATCH_EVENTS]
                if self._pool is None:
                    parts.append(verify_batch(chunk, self._keys.directory))
                else:
                    parts.append(self._pool.submit(verify_batch, chunk, dict(self._keys.directory)))
                    self._tasks += 1
            self._queue.append((block, parts))
            if self._pool is None:
                return


def _merge(results: list[BatchResult]) -> BatchResult:
    if len(results) == 1:
        return results[0]
    verified: list[bytes] = []
    bad: list[tuple[int, str]] = []
    keys: list[tuple[str, bytes]] = []
    kinds: Counter[str] = Counter()
    credentials: list[tuple[str, bytes, int | None]] = []
    offset = 0
    for result in results:
        verified.extend(result.verified)
        bad.extend((offset + position, detail) for position, detail in result.bad)
        keys.extend(result.keys)
        kinds.update(result.kinds)
        credentials.extend(result.credentials)
        offset += BATCH_EVENTS
    cpu = sum(result.cpu for result in results)
    return BatchResult(tuple(verified), tuple(bad), tuple(keys), dict(kinds), tuple(credentials), cpu)


def make_pool(workers: int, events: int) -> ProcessPoolExecutor | None:
    """A pool of `workers` signature checkers for `events` events; None (check in-line) for too few to be worth
    starting processes for."""
    if workers <= 0 or events <= BATCH_EVENTS // 4:
        return None
    # forkserver: workers start from a clean process, never from a fork of one holding LMDB maps and threads.
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_yield_to_the_replay)


def _yield_to_the_replay() -> None:
    """Run a worker at a lower priority: the replay is the one serial step, so it should never wait for a core
    while workers, already ahead, check signatures it will need only later."""
    os.nice(WORKER_NICENESS)


# --- comparing a node's files, beside the replay -------------------------------------------------------------------

#: In a worker process: the data directories and replay stores it has opened read-only, by (node path, replay path).
_OPENED: dict[tuple[str, str], tuple[DataDir, ReplayView]] = {}


def compare_in_worker(node_dir: str, replay_dir: str, raw_header: bytes) -> tuple[Discrepancy | None, float]:
    """`DataDir.compare_block` for one replayed block, run in a worker: the first discrepancy (or None), and the
    CPU seconds it took.

    Both stores are opened read-only once per worker process. The replay store is written by the auditor's
    process; LMDB readers in other processes see each transaction it has committed.
    """
    opened = _OPENED.get((node_dir, replay_dir))
    if opened is None:
        opened = _OPENED[(node_dir, replay_dir)] = (
            DataDir(node_dir),
            ReplayView.open(replay_dir),
        )
    stored, view = opened
    started = time.process_time()
    try:
        stored.compare_block(view, decode_header(raw_header))
    except AuditDiscrepancy as exc:
        return exc.discrepancy, time.process_time() - started
    return None, time.process_time() - started


class Comparisons:
    """The per-block comparisons of a node's data directory with the replay, run in the pool when there is one.

    They read the replay store after the block is committed, and only read, so they can trail the replay by a
    few blocks; `check` raises the first discrepancy among those finished, `drain` waits for all of them.
    """

    def __init__(self, stored: DataDir, view: ReplayView, replay_dir: Path, pool: Executor | None) -> None:
        self._stored = stored
        self._view = view
        self._replay_dir = os.fspath(replay_dir)
        self._pool = pool
        self._pending: deque[Future[tuple[Discrepancy | None, float]]] = deque()
        #: CPU seconds the workers spent comparing (comparisons made in this process are not counted here).
        self.cpu = 0.0

    def submit(self, header: Header) -> None:
        """Compare the node's files for `header`'s block (which the replay has committed)."""
        if self._pool is None:
            self._stored.compare_block(self._view, header)
            return
        self._pending.append(self._pool.submit(compare_in_worker, self._stored.name, self._replay_dir, header.encode()))
        self.check()

    def check(self) -> None:
        """Raise the first discrepancy among the comparisons finished so far (in block order)."""
        while self._pending and self._pending[0].done():
            self._raise(self._pending.popleft())

    def drain(self) -> None:
        """Wait for every comparison submitted; raise the first discrepancy."""
        while self._pending:
            self._raise(self._pending.popleft())

    def finish(self, log_size: int) -> None:
        """After the last block: wait for every comparison, then compare what the node keeps for the latest state
        only (`DataDir.compare_tail`), with the replay's log at `log_size`."""
        self.drain()
        self._stored.compare_tail(self._view, log_size)

    def _raise(self, future: Future[tuple[Discrepancy | None, float]]) -> None:
        found, cpu = future.result()
        self.cpu += cpu
        if found is not None:
            raise AuditDiscrepancy(found)
