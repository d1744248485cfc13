"""A simulated node: the driver a real node would be, around one consensus `Machine`.

It executes the machine's actions in order, as the real driver must: `PersistSafety` writes the record to the
node's "disk" before any later action runs, `Decide` commits the block to the node's LMDB store (the proposer
schedule of the next height goes to disk with it) and then starts the next height. A crash can strike between
any two actions; a restart rebuilds the machine from what is on disk only: the chain in the store, the schedule
and the last safety record.

Byzantine nodes run the same driver but tamper with what leaves them (see `Behaviour`).
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from credledger.consensus.actions import Action, Broadcast, Decide, PersistSafety, RecordEvidence, ScheduleTimeout
from credledger.consensus.machine import Machine
from credledger.consensus.proposer import ProposerSchedule
from credledger.consensus.safety import SafetyRecord
from credledger.consensus.timeouts import Timeout, TimeoutConfig
from credledger.ledger import codec
from credledger.ledger.block import CertifiedBlock, Header
from credledger.ledger.errors import InvalidBlock
from credledger.ledger.keys import SigningKey
from credledger.ledger.votes import (
    Evidence,
    Message,
    Prevote,
    Proposal,
    encode_message,
    sign_precommit,
    sign_prevote,
    sign_proposal,
)
from tests.sim.app import LedgerApp

if TYPE_CHECKING:
    from tests.sim.world import World

#: Wire framing of the simulator: one byte saying what follows.
CONSENSUS = b"M"
BLOCK = b"B"


class Behaviour(enum.Enum):
    SILENT = "silent"
    EQUIVOCATE = "equivocate"
    GARBAGE = "garbage"
    REPLAY = "replay"


@dataclass
class Disk:
    """What survives a crash."""

    safety: SafetyRecord | None = None
    schedule: ProposerSchedule | None = None


class SimNode:
    """One validator process."""

    def __init__(
        self,
        world: World,
        name: str,
        key: SigningKey,
        app: LedgerApp,
        timeouts: TimeoutConfig,
        *,
        behaviours: frozenset[Behaviour] = frozenset(),
    ) -> None:
        self.world = world
        self.name = name
        self.key = key
        self.app = app
        self.timeouts = timeouts
        self.behaviours = behaviours
        self.disk = Disk()
        self.machine: Machine | None = None
        self.epoch = 0
        self.crashes = 0
        self.evidence: list[Evidence] = []
        self.rejected: dict[str, int] = {}
        self.heard: list[bytes] = []
        self.equivocations = 0
        self.garbage_sent = 0
        self._crash_after: int | None = None

    @property
    def honest(self) -> bool:
        return not self.behaviours

    @property
    def up(self) -> bool:
        return self.machine is not None

    @property
    def height(self) -> int:
        return self.app.height

    # -- life cycle --------------------------------------------------------------------------------------------

    def boot(self) -> None:
        """Start (or restart) from disk: the chain, the proposer schedule and the safety record."""
        height = self.app.height + 1
        schedule = self.disk.schedule
        if schedule is None or schedule.height != height:
            schedule = ProposerSchedule.genesis(self.app.validators(1))
            assert height == 1, "a node with blocks always has the schedule stored with the last one"
        self.machine = Machine(
            origin=self.app.genesis.origin,
            app=self.app,
            schedule=schedule,
            signer=self.key,
            timeouts=self.timeouts,
            safety=self.disk.safety,
        )
        self.run(lambda m: m.start(height, self.world.now))

    def crash(self, *, after_actions: int | None = None) -> None:
        """Crash now, or part-way through the next batch of actions (after `after_actions` of them)."""
        if after_actions is not None:
            self._crash_after = after_actions
            return
        self.machine = None
        self.epoch += 1
        self.crashes += 1
        self.app.pending.clear()
        self.app.verified.clear()

    def cancel_crash(self) -> None:
        """Forget a crash planned part-way through a batch of actions that has not come yet."""
        self._crash_after = None

    # -- inputs ------------------------------------------------------------------------------------------------

    def run(self, step: Callable[[Machine], list[Action]]) -> None:
        """Feed the machine one input and execute what it returns (and what those actions lead to)."""
        machine = self.machine
        if machine is None:
            return
        queue: deque[Action] = deque(step(machine))
        while queue and self.machine is machine:
            if self._crash_after is not None:
                if self._crash_after == 0:
                    self._crash_after = None
                    self.crash()
                    return
                self._crash_after -= 1
            queue.extend(self._execute(machine, queue.popleft()))

    def _execute(self, machine: Machine, action: Action) -> list[Action]:
        world = self.world
        if isinstance(action, PersistSafety):
            self.disk.safety = action.record
            world.observe_signed(self, action.record.last)
        elif isinstance(action, Broadcast):
            world.observe_signed(self, action.message)
            self.send_out(action.message)
        elif isinstance(action, ScheduleTimeout):
            world.schedule_timeout(self, action.timeout, action.delay_ms)
        elif isinstance(action, RecordEvidence):
            self.evidence.append(action.evidence)
            world.observe_evidence(self, action.evidence)
        elif isinstance(action, Decide):
            world.observe_decision(self, action.certified)
            try:
                self.app.commit(action.certified)
            except InvalidBlock as exc:
                world.commit_failed(self, exc)
                return []
            self.disk.schedule = action.next_schedule
            return machine.start(action.certified.header.height + 1, world.now)
        return []

    def on_timeout(self, timeout: Timeout) -> None:
        self.run(lambda m: m.on_timeout(timeout, self.world.now))

    def wake(self) -> None:
        self.run(lambda m: m.wake(self.world.now))

    # -- what leaves the node ----------------------------------------------------------------------------------

    def send_out(self, message: Message) -> None:
        if Behaviour.SILENT in self.behaviours:
            return
        world = self.world
        if Behaviour.EQUIVOCATE in self.behaviours:
            twin = self._conflicting(message)
            if twin is not None:
                self.equivocations += 1
                self._split(message, twin)
                return
        world.broadcast(self, CONSENSUS + encode_message(message))
        if Behaviour.GARBAGE in self.behaviours:
            for data in self._garbage(message):
                self.garbage_sent += 1
                world.send(self, world.rng.choice(world.names), data)
        if Behaviour.REPLAY in self.behaviours and self.heard:
            for _ in range(3):
                world.send(self, world.rng.choice(world.names), world.rng.choice(self.heard))

    def _split(self, message: Message, twin: Message) -> None:
        """Send one version to some peers, the other to the rest, and both to a few (at least one)."""
        world = self.world
        first, second = CONSENSUS + encode_message(message), CONSENSUS + encode_message(twin)
        witness = world.rng.choice([n for n in world.names if n != self.name])
        for peer in world.names:
            if peer == self.name:
                continue
            roll = world.rng.random()
            if roll < 0.3 or peer == witness:
                world.send(self, peer, first)
                world.send(self, peer, second)
            else:
                world.send(self, peer, first if roll < 0.65 else second)

    def _conflicting(self, message: Message) -> Message | None:
        """A second, different statement for the same slot, signed with this node's key behind the guard's back."""
        origin, key, rng = self.app.genesis.origin, self.key, self.world.rng
        if isinstance(message, Proposal):
            block = message.block
            header = replace(block.header, time_ms=block.header.time_ms + 1 + rng.randrange(1000))
            other = replace(block, header=header)
            return sign_proposal(key, origin, message.height, message.round, other, pol_round=message.pol_round)
        if isinstance(message, Prevote):
            target = None if message.block_hash is not None else rng.randbytes(32)
            return sign_prevote(key, origin, message.height, message.round, target)
        if message.block is None:
            return sign_precommit(key, origin, message.height, message.round, self._phantom_header(message))
        return sign_precommit(key, origin, message.height, message.round, None)

    def _phantom_header(self, message: Message) -> Header:
        """A header for no real block: a precommit for it conflicts with a nil precommit all the same."""
        rng = self.world.rng
        return Header(
            origin=self.app.genesis.origin,
            height=message.height,
            round=message.round,
            time_ms=self.world.now,
            prev_hash=rng.randbytes(32),
            proposer=self.name,
            log_size=0,
            log_root=rng.randbytes(32),
            state_root=rng.randbytes(32),
            event_count=0,
            validators_hash=rng.randbytes(32),
            next_validators_hash=rng.randbytes(32),
        )

    def _garbage(self, message: Message) -> list[bytes]:
        """Malformed, forged and out-of-range variants of a genuine message."""
        rng = self.world.rng
        raw = encode_message(message)
        flipped = bytearray(raw)
        flipped[-1] ^= 0x01
        forged_name = rng.choice([n for n in self.world.names if n != self.name])
        out = [
            CONSENSUS + rng.randbytes(rng.randrange(1, 64)),
            CONSENSUS + raw[: max(1, len(raw) // 2)],
            CONSENSUS + bytes(flipped),
            BLOCK + rng.randbytes(40),
        ]
        if isinstance(message, Prevote):
            impostor = replace(message, validator=forged_name)
            far = sign_prevote(self.key, self.app.genesis.origin, message.height, 2**31 - 1, message.block_hash)
            outsider = sign_prevote(
                SigningKey("outsider.test", bytes(32)),
                self.app.genesis.origin,
                message.height,
                message.round,
                None,
            )
            out += [CONSENSUS + encode_message(m) for m in (impostor, far, outsider)]
        return out

    # -- what arrives ------------------------------------------------------------------------------------------

    def receive(self, sender: SimNode, data: bytes) -> None:
        if self.machine is None:
            return
        self.world.deliver(self, sender, data)

    def remember(self, data: bytes) -> None:
        """A replaying node keeps what it hears, to send it again later."""
        if Behaviour.REPLAY in self.behaviours:
            if len(self.heard) >= 256:
                self.heard[self.world.rng.randrange(256)] = data
            else:
                self.heard.append(data)

    def count_rejection(self, code: str) -> None:
        self.rejected[code] = self.rejected.get(code, 0) + 1


def certified_bytes(certified: CertifiedBlock) -> bytes:
    return BLOCK + codec.encode(certified)
