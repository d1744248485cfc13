"""One machine under test, driven message by message with votes signed by the other validators' keys.

The scenario tests port CometBFT's state-machine scenarios (locking on a polka, moving the lock, proof-of-lock
re-proposal, round skipping, timeouts) onto this harness: validator m0.test is the machine, and the test plays
every other validator by signing their statements directly.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TypeVar

from credledger.consensus.actions import Action, Broadcast, Decide, PersistSafety, RecordEvidence, ScheduleTimeout
from credledger.consensus.machine import Machine
from credledger.consensus.proposer import ProposerSchedule
from credledger.consensus.safety import SafetyRecord
from credledger.consensus.timeouts import Timeout, TimeoutConfig, TimeoutKind
from credledger.ledger.block import Block
from credledger.ledger.votes import Message, Precommit, Prevote, Proposal, sign_precommit, sign_prevote, sign_proposal
from tests.factories import BLOCK_INTERVAL_MS, T0, make_network
from tests.sim.app import LedgerApp

M = TypeVar("M", Proposal, Prevote, Precommit)

TIMEOUTS = TimeoutConfig(heartbeat_ms=0)


class Harness:
    """Machine m0.test of an n-validator network, at a chosen height, fed by the test."""

    def __init__(
        self,
        path: Path,
        n: int = 4,
        *,
        powers: list[int] | None = None,
        timeouts: TimeoutConfig = TIMEOUTS,
        safety: SafetyRecord | None = None,
    ) -> None:
        self.network = make_network(n, powers=powers)
        self.ids = self.network.ids
        self.me = self.ids[0]
        self.origin = self.network.genesis.origin
        self.app = LedgerApp(self.network, path)
        self.timeouts = timeouts
        self.now = T0 + BLOCK_INTERVAL_MS
        self.machine = self._machine(safety)
        self.actions: list[Action] = []

    def _machine(self, safety: SafetyRecord | None) -> Machine:
        return Machine(
            origin=self.origin,
            app=self.app,
            schedule=ProposerSchedule.genesis(self.app.validators(1)),
            signer=self.network[self.me].node,
            timeouts=self.timeouts,
            safety=safety,
        )

    def restart(self, safety: SafetyRecord | None) -> list[Action]:
        """A new machine from `safety` (what was on disk), started at the same height."""
        self.machine = self._machine(safety)
        return self.start()

    # -- inputs ---------------------------------------------------------------------------------------------

    def start(self) -> list[Action]:
        return self._keep(self.machine.start(self.app.height + 1, self.now))

    def feed(self, *messages: Message) -> list[Action]:
        out: list[Action] = []
        for message in messages:
            out += self.machine.handle(message, self.now)
        return self._keep(out)

    def expire(self, kind: TimeoutKind, round_: int | None = None) -> list[Action]:
        round_ = self.machine.round if round_ is None else round_
        return self._keep(self.machine.on_timeout(Timeout(self.machine.height, round_, kind), self.now))

    def _keep(self, actions: list[Action]) -> list[Action]:
        self.actions += actions
        return actions

    # -- statements by the other validators ------------------------------------------------------------------

    def block(self, round_: int, *, proposer: str | None = None, salt: int = 0) -> Block:
        """A valid block for the current height built in `round_` (different `salt`, different block)."""
        proposer = proposer or self.machine.proposer(round_)
        return self.app.build_block(self.app.height + 1, round_, self.now + salt, proposer)

    def proposal(self, round_: int, block: Block, pol_round: int = -1, proposer: str | None = None) -> Proposal:
        proposer = proposer or self.machine.proposer(round_)
        key = self.network[proposer].node
        return sign_proposal(key, self.origin, block.header.height, round_, block, pol_round=pol_round)

    def prevotes(self, round_: int, block_hash: bytes | None, *who: str) -> list[Prevote]:
        height = self.app.height + 1
        return [sign_prevote(self.network[w].node, self.origin, height, round_, block_hash) for w in who]

    def precommits(self, round_: int, block: Block | None, *who: str) -> list[Precommit]:
        height, header = self.app.height + 1, None if block is None else block.header
        return [sign_precommit(self.network[w].node, self.origin, height, round_, header) for w in who]

    @property
    def others(self) -> list[str]:
        return self.ids[1:]


def sent(actions: list[Action], kind: type[M]) -> list[M]:
    """The messages of one kind the machine broadcast."""
    return [a.message for a in actions if isinstance(a, Broadcast) and isinstance(a.message, kind)]


def own(actions: list[Action], kind: type[M], round_: int | None = None, me: str = "m0.test") -> M:
    """The one statement of `kind` (in `round_`, if given) the machine signed itself in `actions`."""
    mine = [m for m in sent(actions, kind) if m.signer == me and round_ in (None, m.round)]
    assert len(mine) == 1, f"expected one {kind.__name__} by {me}, got {mine}"
    return mine[0]


def timeouts(actions: list[Action]) -> list[tuple[TimeoutKind, int, int]]:
    return [(a.timeout.kind, a.timeout.round, a.delay_ms) for a in actions if isinstance(a, ScheduleTimeout)]


def decisions(actions: list[Action]) -> list[Decide]:
    return [a for a in actions if isinstance(a, Decide)]


def evidence(actions: list[Action]) -> list[RecordEvidence]:
    return [a for a in actions if isinstance(a, RecordEvidence)]


def records(actions: list[Action]) -> list[SafetyRecord]:
    return [a.record for a in actions if isinstance(a, PersistSafety)]


def tampered(block: Block) -> Block:
    """The same block with a wrong state root: the ledger rules refuse it."""
    return replace(block, header=replace(block.header, state_root=bytes(32)))
