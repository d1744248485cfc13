"""The consensus driver: runs the pure `consensus.Machine` against the real world.

Theory of operation
-------------------
The driver is the only caller of the machine, and everything runs on the event loop thread, so the machine, the
chain and the store are never touched concurrently. Inputs reach the machine from three places: consensus
messages from peers (`receive`), expired timers (`loop.call_later`), and certified blocks fetched by the syncer
when this node is behind (`apply_certified`). Each input returns a list of actions, executed strictly in order:

- `PersistSafety`: the double-sign guard is written to the store in a durable LMDB transaction *before* the
  next action -- always the `Broadcast` of the vote it protects -- runs (its valid block only when that changed,
  see `node.safetystore`);
- `Broadcast`: the message is queued to every peer;
- `ScheduleTimeout`: a timer is set; when it fires the timeout goes back to the machine (stale ones are no-ops);
- `RecordEvidence`: conflicting signed statements are stored, logged, and submitted for the chain as an
  `evidence` event signed by this node's key;
- `Decide`: the certified block is committed together with the next height's proposer schedule in one
  transaction, and only then does the machine start the next height.

On start the driver restores the proposer schedule and the safety record from the store, so a restarted
validator resumes exactly where its durable state says and can never sign against what it signed before.
Admission is one-way: an admitted event only signals the driver, which coalesces the signals (at most one wake-up
is pending) and handles them on the next turn of the event loop, after the request that admitted the events has
been answered. Then the events this node's clients submitted since the last wake-up are relayed to the peers in
batches (one `EventBatch` frame each, bounded in bytes), and the machine is woken once, so round 0 need not wait
for the heartbeat and the proposer builds its block from whatever the mempool holds, up to the block limit: a
batch of N events becomes ceil(N / block limit) blocks, and no block is built, stored or voted on inside an API
request. A batch a peer relays waits in a queue and is admitted in slices of `ADMIT_SLICE` events, one slice per
turn of the event loop (each slice in one pass: one snapshot, one run of the rules), so a proposal or a vote that
arrives behind a backlog of relayed events is handled after one slice, not after all of them. An event a peer
passes on counts against that peer only if no honest node could have sent it (a forgery, another chain's
event); one refused for the state it meets here is dropped quietly.

What the peers send may be refused (the machine raises `MessageRejected` or `MessageOutOfWindow`, which the
caller counts or ignores); anything else that fails while the machine runs or its actions execute -- a durable
write that did not happen, a block that would not commit -- is this node's own failure. Going on would leave the
machine believing something the store does not hold, so the driver halts instead: it stops, and `watch()`
raises `NodeHalted`, which ends the node process (a restart resumes from the durable state).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

import structlog

from credledger.consensus.actions import Action, Broadcast, Decide, PersistSafety, RecordEvidence, ScheduleTimeout
from credledger.consensus.errors import MessageOutOfWindow, MessageRejected
from credledger.consensus.machine import Machine
from credledger.consensus.proposer import ProposerSchedule
from credledger.consensus.timeouts import Timeout, TimeoutConfig
from credledger.ledger import codec
from credledger.ledger.block import CertifiedBlock
from credledger.ledger.errors import CredledgerError, DecodeError, InvalidEvent, StorageError
from credledger.ledger.events import ReportEvidence, UnsignedEvent, sign_event
from credledger.ledger.keys import SigningKey
from credledger.ledger.votes import Evidence, decode_message, encode_message
from credledger.node.application import Admitted, LedgerApplication
from credledger.node.mempool import MempoolError
from credledger.node.peers import (
    KIND_CONSENSUS,
    KIND_EVENT,
    KIND_EVENTS,
    MAX_RELAY_BYTES,
    MAX_RELAY_EVENTS,
    EventBatch,
    PeerNetwork,
    relay_batches,
)
from credledger.node.safetystore import SafetyStore

SCHEDULE_KEY = b"schedule"
EVIDENCE_PREFIX = b"evidence/"
#: Refusals of a gossiped event that no honest peer could cause: the event is wrong whatever the state.
MISBEHAVIOUR_RULES = frozenset({"wrong-origin", "bad-signature", "signatures-not-sorted", "duplicate-signer"})
#: Largest consensus message accepted from a peer (a proposal carries a whole block).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: Largest relayed batch accepted from a peer: the events, and a few bytes of framing each.
MAX_BATCH_FRAME_BYTES = MAX_RELAY_BYTES + 8 * MAX_RELAY_EVENTS + 16
#: Relayed events admitted in one turn of the event loop: consensus messages that arrive meanwhile are handled
#: between two slices, never behind a whole backlog of relayed events (each costs a signature check and the rules).
ADMIT_SLICE = 64
#: Relayed events that may wait for admission; a batch arriving beyond this is admitted at once, after those
#: waiting, while the peer's connection waits (backpressure).
MAX_WAITING_EVENTS = 20_000

log = structlog.get_logger("credledger.driver")

#: What a peer's consensus message or certified block may be refused with: its fault, or not for now.
_REFUSALS = (MessageRejected, MessageOutOfWindow)


class NodeHalted(CredledgerError):
    """The node could not carry out a consensus step (a failed durable write, a block that would not commit) and
    stopped rather than go on with a machine that no longer matches its store."""

    code = "halted"


class Driver:
    """Feeds the machine, executes its actions, and tells the syncer when peers are ahead."""

    def __init__(
        self,
        chain: LedgerApplication,
        *,
        signer: SigningKey | None,
        peers: PeerNetwork | None = None,
        rebroadcast_ms: int = 1_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.chain = chain
        self.store = chain.store
        self.safety = SafetyStore(chain.store)
        self.peers = peers
        self.clock = clock
        self.behind = asyncio.Event()
        #: The highest height a peer has shown us (messages from the future), for the syncer.
        self.peer_height = 0
        self._timers: set[asyncio.TimerHandle] = set()
        self._queue: deque[Action] = deque()
        self._running = False
        self._executing = False
        self._halted: asyncio.Future[None] | None = None
        self._signer = signer
        #: Events this node's clients submitted, to relay at the next wake-up; and whether one is pending.
        self._relay: list[bytes] = []
        self._wake_pending = False
        #: Batches peers relayed, waiting to be admitted a slice per turn of the loop; how many events they hold,
        #: and whether a turn is scheduled.
        self._waiting: deque[tuple[str, list[bytes]]] = deque()
        self._waiting_events = 0
        self._admit_pending = False
        self.machine = Machine(
            origin=chain.genesis.origin,
            app=chain,
            schedule=self._load_schedule(),
            signer=signer,
            timeouts=TimeoutConfig.from_params(chain.params, rebroadcast_ms=rebroadcast_ms),
            safety=self.safety.load(),
        )
        chain.on_admit(self._admitted)

    @property
    def waiting_events(self) -> int:
        """Relayed events waiting to be admitted."""
        return self._waiting_events

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _load_schedule(self) -> ProposerSchedule:
        height = self.chain.height
        raw = self.store.get_consensus(SCHEDULE_KEY)
        if raw is None:
            if height:
                raise StorageError(f"the store holds {height} blocks but no proposer schedule")
            return ProposerSchedule.genesis(self.chain.validators(1))
        schedule = codec.decode(ProposerSchedule, raw)
        if schedule.height != height + 1:
            raise StorageError(f"stored proposer schedule is for height {schedule.height}, the chain is at {height}")
        return schedule

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin the next height. Call once, on the event loop."""
        self._halted = asyncio.get_running_loop().create_future()
        self._running = True
        height = self.chain.height + 1
        me = self._signer.name if self._signer is not None else None
        log.info(
            "consensus starting", height=height, member=me, voting=me is not None and me in self.machine.validators
        )
        self._run(self.machine.start(height, self._now_ms()))

    async def watch(self) -> None:
        """Wait for as long as the driver runs; raise `NodeHalted` if it halts."""
        if self._halted is None:
            raise RuntimeError("the driver has not been started")
        await self._halted

    def stop(self) -> None:
        """Stop taking inputs and cancel every timer."""
        self._running = False
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        self._waiting.clear()
        self._waiting_events = 0

    # --- inputs -------------------------------------------------------------------------------------------------

    def receive(self, member: str, kind: int, payload: bytes) -> None:
        """A frame from an authenticated peer. Refusals raise (the peer layer counts them against the peer)."""
        if kind == KIND_EVENT:
            self._gossiped(member, [payload])
            return
        if kind == KIND_EVENTS:
            self._relayed(member, list(codec.decode(EventBatch, payload, max_bytes=MAX_BATCH_FRAME_BYTES).events))
            return
        if kind != KIND_CONSENSUS or not self._running:
            return
        message = decode_message(payload, max_bytes=MAX_MESSAGE_BYTES)
        try:
            self._feed(lambda: self.machine.handle(message, self._now_ms()))
        except MessageOutOfWindow as exc:
            if not exc.stale and exc.height > self.machine.height:
                self.peer_height = max(self.peer_height, exc.height - 1)
                self.behind.set()

    def _relayed(self, member: str, events: list[bytes]) -> None:
        """Queue a peer's batch for admission a slice per turn of the loop; with no loop running, or the queue
        full, admit it now (what waits first), raising what counts against the peer as `_gossiped` does."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or self._waiting_events + len(events) > MAX_WAITING_EVENTS:
            self._admit_waiting(limit=None)
            self._gossiped(member, events)
            return
        self._waiting.append((member, events))
        self._waiting_events += len(events)
        if not self._admit_pending:
            self._admit_pending = True
            loop.call_soon(self._admit_waiting)

    def _admit_waiting(self, limit: int | None = ADMIT_SLICE) -> None:
        """Admit up to `limit` waiting relayed events (None: all), and schedule the next slice if more wait. A
        refusal that counts against a peer is counted and logged here, as the peer layer does for a frame."""
        self._admit_pending = False
        while self._waiting and (limit is None or limit > 0):
            member, events = self._waiting[0]
            if limit is not None and len(events) > limit:
                events, self._waiting[0] = events[:limit], (member, events[limit:])
            else:
                self._waiting.popleft()
            self._waiting_events -= len(events)
            if limit is not None:
                limit -= len(events)
            try:
                self._gossiped(member, events)
            except CredledgerError as exc:
                self.chain.metrics.peer_errors.labels(exc.code).inc()
                log.info("peer message refused", peer=member, reason=str(exc))
        if self._waiting and not self._admit_pending:
            self._admit_pending = True
            asyncio.get_running_loop().call_soon(self._admit_waiting)

    def _gossiped(self, member: str, events: list[bytes]) -> None:
        """Admit events a peer passed on, in one pass. Only what no honest peer would send counts against it (the
        first such refusal is raised once the rest are admitted): an event refused for the state it meets here
        (committed meanwhile, already pending, a conflicting event first, a full mempool) is dropped quietly, since
        the peer admitted it against its own, slightly different view."""
        blame: CredledgerError | None = None
        for outcome in self.chain.admit_batch(events, source=member):
            if isinstance(outcome, Admitted):
                continue
            if blame is None and (
                isinstance(outcome, DecodeError)
                or (isinstance(outcome, InvalidEvent) and outcome.rule in MISBEHAVIOUR_RULES)
            ):
                blame = outcome
            else:
                log.debug("gossiped event not admitted", peer=member, reason=str(outcome))
        if blame is not None:
            raise blame

    def apply_certified(self, certified: CertifiedBlock) -> None:
        """Commit a certified block fetched from a peer, through the machine (which checks it first). Raises
        `MessageRejected` if the block or its certificate is bad, `MessageOutOfWindow` if it is not for now."""
        self._feed(lambda: self.machine.commit_certified(certified, self._now_ms()))

    def _timeout(self, timeout: Timeout, handle: list[asyncio.TimerHandle]) -> None:
        self._timers.difference_update(handle)
        self._feed(lambda: self.machine.on_timeout(timeout, self._now_ms()))

    def _admitted(self, admitted: Admitted, encoded: bytes, source: str | None) -> None:
        """An event was admitted: note it for relaying (if a client of ours sent it) and ask for a wake-up."""
        if source is None and self.peers is not None:
            self._relay.append(encoded)
        if self._wake_pending:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: nothing runs concurrently, so wake at once
            self._wake()
            return
        self._wake_pending = True
        loop.call_soon(self._wake)

    def _wake(self) -> None:
        """Relay what clients submitted since the last wake-up, then wake the machine once for all of it."""
        self._wake_pending = False
        relay, self._relay = self._relay, []
        if self.peers is not None:
            for batch in relay_batches(relay):
                self.peers.broadcast(KIND_EVENTS, codec.encode(batch))
        if self.machine.height:
            # Events are waiting: round 0 need not hold for the heartbeat.
            self._feed(lambda: self.machine.wake(self._now_ms()))

    def _feed(self, step: Callable[[], list[Action]]) -> None:
        """Give the machine one input and execute what it asks; a refusal of a peer's input is raised to the
        caller, any other failure halts the driver."""
        if not self._running:
            return
        try:
            actions = step()
        except _REFUSALS:
            raise
        except Exception as exc:  # not swallowed: the node halts, and its process ends with it
            self._halt("the consensus machine failed", exc)
            return
        self._run(actions)

    def _halt(self, what: str, exc: Exception) -> None:
        """Stop for good and make `watch()` raise: the node process ends, and a restart resumes from disk."""
        log.error("node halting", reason=what, error=f"{type(exc).__name__}: {exc}", exc_info=exc)
        self._queue.clear()
        self.stop()
        if self._halted is not None and not self._halted.done():
            error = NodeHalted(f"{what}: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            self._halted.set_exception(error)

    # --- actions ------------------------------------------------------------------------------------------------

    def _run(self, actions: list[Action]) -> None:
        self._queue.extend(actions)
        if self._executing:
            return  # an outer call is executing the queue and will reach these, in order
        self._executing = True
        try:
            while self._queue and self._running:
                action = self._queue.popleft()
                try:
                    self._execute(action)
                except Exception as exc:  # not swallowed: the node halts, and its process ends with it
                    self._halt(f"executing {type(action).__name__} failed", exc)
        finally:
            self._executing = False
        self.chain.metrics.round.set(self.machine.round)

    def _execute(self, action: Action) -> None:
        if isinstance(action, PersistSafety):
            # Durable before the vote it protects is broadcast: LMDB syncs when the transaction commits.
            self.safety.save(action.record)
        elif isinstance(action, Broadcast):
            if self.peers is not None:
                self.peers.broadcast(KIND_CONSENSUS, encode_message(action.message))
        elif isinstance(action, ScheduleTimeout):
            self._schedule(action.timeout, action.delay_ms)
        elif isinstance(action, RecordEvidence):
            evidence = action.evidence
            self.store.put_consensus(EVIDENCE_PREFIX + evidence.id(), codec.encode(evidence))
            log.warning(
                "equivocation recorded", offender=evidence.offender, height=evidence.height, round=evidence.round
            )
            self._report(evidence)
        elif isinstance(action, Decide):
            self._decide(action)

    def _report(self, evidence: Evidence) -> None:
        """Submit evidence for the chain, signed by this node's key; the peers hear of it like any event."""
        if self._signer is None:
            return
        unsigned = UnsignedEvent(self.chain.genesis.origin, self.chain.now_ms(), ReportEvidence(evidence))
        try:
            self.chain.admit(sign_event(unsigned, self._signer))
        except (CredledgerError, MempoolError) as exc:
            # Typically another node's report of the same equivocation got there first.
            log.info("evidence not submitted", offender=evidence.offender, reason=str(exc))

    def _schedule(self, timeout: Timeout, delay_ms: int) -> None:
        loop = asyncio.get_running_loop()
        cell: list[asyncio.TimerHandle] = []
        handle = loop.call_later(delay_ms / 1000, self._timeout, timeout, cell)
        cell.append(handle)
        self._timers.add(handle)

    def _decide(self, action: Decide) -> None:
        certified = action.certified
        header = certified.header
        self.chain.commit(certified, consensus={SCHEDULE_KEY: codec.encode(action.next_schedule)})
        log.info("block committed", height=header.height, events=header.event_count, log_size=header.log_size)
        if header.height >= self.peer_height:
            self.behind.clear()
        self._queue.extend(self.machine.start(header.height + 1, self._now_ms()))
