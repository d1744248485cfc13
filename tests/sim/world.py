"""The simulated world: a virtual clock, an event queue, the nodes, and the invariants checked after every step.

Theory of operation
-------------------
Everything that happens is an entry in one priority queue ordered by (virtual time, sequence number): a message
arriving, a timeout expiring, a crash, a restart, a partition, an event submitted by a client. `step` pops the
earliest entry, lets the node concerned act, and then checks the invariants that the step could have broken.
All randomness comes from one seeded `random.Random` drawn in queue order, so a seed replays a run exactly.

Invariants (any breach is recorded in `violations` with the virtual time):
- agreement: no two honest nodes commit different blocks at one height, and every commit certificate verifies
  with `ledger.block.verify_certified_header` against the height's validator set;
- validity: every committed block passes the ledger rules (the node's `Store.commit_block` re-checks the rules,
  roots and certificate) and links to the previous header;
- no double signing: no honest validator ever signs two different statements for one (height, round, step),
  across crashes (every statement that reaches the disk or the network is recorded);
- evidence is only ever recorded against Byzantine validators, and always verifies;
- honest messages are never rejected by honest nodes;
- liveness (checked by the scenario at the end): after the heal, every honest node commits new heights.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from credledger.consensus.errors import MessageOutOfWindow, MessageRejected
from credledger.consensus.timeouts import Timeout
from credledger.ledger import codec
from credledger.ledger.block import CertifiedBlock, verify_certified_header
from credledger.ledger.errors import DecodeError, InvalidBlock, VerificationError
from credledger.ledger.votes import Evidence, Message, Proposal, Vote, decode_message, signing_payload, verify_evidence
from tests.sim.node import BLOCK, CONSENSUS, SimNode


@dataclass
class Stats:
    messages: int = 0
    decisions: int = 0
    rejected: int = 0
    evidence: int = 0
    crashes: int = 0
    synced_blocks: int = 0
    max_round: int = 0


@dataclass(order=True)
class _Entry:
    time: int
    seq: int
    run: Callable[[], None] = field(compare=False)


class World:
    """N nodes on one virtual clock."""

    def __init__(self, rng: random.Random, origin: str, start_ms: int) -> None:
        self.rng = rng
        self.origin = origin
        self.now = start_ms
        self.start_ms = start_ms
        self.nodes: dict[str, SimNode] = {}
        self.names: list[str] = []
        self.violations: list[str] = []
        self.stats = Stats()
        self.committed: dict[int, CertifiedBlock] = {}
        self.signed: dict[tuple[str, int, int, int], tuple[bytes, bytes]] = {}
        self._queue: list[_Entry] = []
        self._seq = itertools.count()
        self._last_push: dict[tuple[str, str, int], int] = {}
        self.delays: Callable[[str, str], list[int]] = lambda sender, receiver: [1]

    def add(self, node: SimNode) -> None:
        self.nodes[node.name] = node
        self.names.append(node.name)

    @property
    def honest(self) -> list[SimNode]:
        return [n for n in self.nodes.values() if n.honest]

    # -- the queue -----------------------------------------------------------------------------------------------

    def at(self, time_ms: int, run: Callable[[], None]) -> None:
        heapq.heappush(self._queue, _Entry(max(time_ms, self.now), next(self._seq), run))

    def after(self, delay_ms: int, run: Callable[[], None]) -> None:
        self.at(self.now + delay_ms, run)

    def step(self) -> bool:
        if not self._queue:
            return False
        entry = heapq.heappop(self._queue)
        self.now = entry.time
        entry.run()
        return True

    def run_until(self, deadline_ms: int, stop: Callable[[], bool] = lambda: False) -> None:
        while self._queue and self._queue[0].time <= deadline_ms and not self.violations and not stop():
            self.step()
        self.now = max(self.now, min(deadline_ms, self._queue[0].time if self._queue else deadline_ms))

    # -- what nodes do to the world ------------------------------------------------------------------------------

    def send(self, sender: SimNode, receiver: str, data: bytes) -> None:
        if receiver == sender.name:
            return
        target = self.nodes[receiver]
        epoch = target.epoch

        def arrive() -> None:
            if target.epoch == epoch:  # a node that crashed meanwhile lost what was on its way to it
                target.receive(sender, data)

        for delay in self.delays(sender.name, receiver):
            self.after(delay, arrive)

    def broadcast(self, sender: SimNode, data: bytes) -> None:
        for name in self.names:
            self.send(sender, name, data)

    def schedule_timeout(self, node: SimNode, timeout: Timeout, delay_ms: int) -> None:
        epoch = node.epoch
        self.after(delay_ms, lambda: node.on_timeout(timeout) if node.epoch == epoch else None)

    def deliver(self, node: SimNode, sender: SimNode, data: bytes) -> None:
        """Hand bytes from the wire to a node's machine, as a node's transport would."""
        self.stats.messages += 1
        kind, body = data[:1], data[1:]
        if kind == CONSENSUS:
            try:
                message = decode_message(body)
            except DecodeError:
                self._rejected(node, sender, "malformed")
                return
            node.remember(data)
            self._handle(node, sender, message)
        elif kind == BLOCK:
            try:
                certified = codec.decode(CertifiedBlock, body)
            except DecodeError:
                self._rejected(node, sender, "malformed-block")
                return
            try:
                node.run(lambda m: m.commit_certified(certified, self.now))
                self.stats.synced_blocks += 1
            except MessageRejected as exc:
                self._rejected(node, sender, exc.code)
            except MessageOutOfWindow:
                pass
        else:
            self._rejected(node, sender, "unknown-frame")

    def _handle(self, node: SimNode, sender: SimNode, message: Message) -> None:
        try:
            node.run(lambda m: m.handle(message, self.now))
        except MessageRejected as exc:
            self._rejected(node, sender, exc.code, str(exc))
        except MessageOutOfWindow as exc:
            if exc.stale and exc.height < node.height + 1:
                self._push_block(node, sender, exc.height)

    def _push_block(self, node: SimNode, behind: SimNode, height: int) -> None:
        """Hand a peer that is behind the certified block it is missing (at most every 200 ms per peer)."""
        key = (node.name, behind.name, height)
        if self.now - self._last_push.get(key, -(10**9)) < 200 or height > node.height:
            return
        self._last_push[key] = self.now
        self.send(node, behind.name, BLOCK + codec.encode(node.app.certified(height)))

    def _rejected(self, node: SimNode, sender: SimNode, code: str, detail: str = "") -> None:
        self.stats.rejected += 1
        node.count_rejection(code)
        if sender.honest and node.honest:
            self.violate(f"{node.name} rejected a message from honest {sender.name}: {code} {detail}")

    # -- invariants ----------------------------------------------------------------------------------------------

    def violate(self, what: str) -> None:
        self.violations.append(f"t={self.now - self.start_ms}ms: {what}")

    def observe_signed(self, node: SimNode, statement: Message | Vote) -> None:
        """No honest validator signs two different statements for one slot, whatever crashes happen."""
        if not node.honest or statement.signer != node.name:
            return  # a validator forwarding others' votes (a proof of lock) signs nothing itself
        self.stats.max_round = max(self.stats.max_round, statement.round)
        slot = (statement.signer, statement.height, statement.round, int(statement.step))
        payload = signing_payload(statement.signed() if isinstance(statement, Proposal) else statement, self.origin)
        flat = (payload[0], payload[1])
        known = self.signed.setdefault(slot, flat)
        if known != flat:
            self.violate(f"honest {node.name} signed two different statements for {slot[1:]}")

    def observe_evidence(self, node: SimNode, evidence: Evidence) -> None:
        self.stats.evidence += 1
        if not node.honest:
            return
        offender = self.nodes.get(evidence.offender)
        if offender is None or offender.honest:
            self.violate(f"{node.name} recorded evidence against honest {evidence.offender}")
            return
        try:
            verify_evidence(evidence, node.app.validators(evidence.height), self.origin)
        except VerificationError as exc:
            self.violate(f"{node.name} recorded evidence that does not verify: {exc}")

    def observe_decision(self, node: SimNode, certified: CertifiedBlock) -> None:
        """Agreement, certificate and chain-link checks, before the node stores the block."""
        self.stats.decisions += 1
        header = certified.header
        if not node.honest:
            return
        try:
            verify_certified_header(header, certified.note(), node.app.validators(header.height))
        except (DecodeError, VerificationError) as exc:
            self.violate(f"{node.name} decided height {header.height} on a certificate that fails: {exc}")
        first = self.committed.setdefault(header.height, certified)
        if first.block.hash() != certified.block.hash():
            self.violate(f"agreement: {node.name} decided a different block at height {header.height}")
        previous = self.committed.get(header.height - 1)
        if previous is not None and header.prev_hash != previous.block.hash():
            self.violate(f"{node.name}'s block {header.height} does not link to block {header.height - 1}")

    def commit_failed(self, node: SimNode, error: InvalidBlock) -> None:
        self.violate(f"validity: {node.name} decided a block the ledger refuses: {error}")
