"""The double-sign guard: what a validator must remember across a crash so it never contradicts itself.

Theory of operation
-------------------
A validator signs at most one statement per (height, round, step), and slots only move forward: (height, round,
step) ordered lexicographically, PROPOSE < PREVOTE < PRECOMMIT. Before a signed statement leaves the node, the
`SafetyRecord` naming its slot is made durable (the machine emits `PersistSafety` before the `Broadcast`). After a
restart the machine is built from the last record and refuses to sign in any slot at or below it, except to
re-send the very statement the record holds for that slot (it may never have left before the crash).

The record holds every statement the validator signed at its height, not only the last. Tendermint's liveness
assumes every message a correct validator sent is eventually delivered; a validator that crashed and lost the
prevote it sent two rounds ago could otherwise leave the others one vote short of a quorum forever. The machine
re-sends them all while the height lasts (`TimeoutKind.REBROADCAST`).

The record also keeps the lock (locked round and block hash) and the valid value (round and block). Tendermint's
safety rests on locks as much as on single votes: a validator that precommitted a block and then forgot it could
prevote a conflicting block in a later round. The valid block is kept whole so that, even if every validator
restarts at once, a proposer can still re-propose the block a quorum is locked on. (On disk the node keeps that
block once, under its own key, rather than in every record: see `node.safetystore`.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from credledger.ledger.block import Block
from credledger.ledger.codec import Bytes32, Range, Size
from credledger.ledger.votes import Height, PolRound, Round, Step, Vote

Slot = tuple[int, int, int]

#: Most statements a record keeps (three per round for 4096 rounds); beyond it the oldest are dropped.
MAX_STATEMENTS = 3 * 4096


@dataclass(frozen=True, slots=True)
class SafetyRecord:
    """The last slot signed at, every statement signed at that height, and the height's lock and valid value."""

    height: Height
    round: Round
    step: Annotated[int, Range(0, 2)]
    signed: Annotated[tuple[Vote, ...], Size(1, MAX_STATEMENTS)]
    locked_round: PolRound = -1
    locked_hash: Bytes32 | None = None
    valid_round: PolRound = -1
    valid_block: Block | None = None

    def __post_init__(self) -> None:
        last = self.signed[-1]
        if (last.height, last.round, int(last.step)) != self.slot:
            raise ValueError("safety record slot does not match its last statement")
        if any(s.height != self.height for s in self.signed):
            raise ValueError("a safety record holds statements of its own height only")
        if (self.locked_round == -1) != (self.locked_hash is None):
            raise ValueError("a lock needs both a round and a block hash")
        if (self.valid_round == -1) != (self.valid_block is None):
            raise ValueError("a valid value needs both a round and a block")

    @property
    def slot(self) -> Slot:
        return (self.height, self.round, self.step)

    @property
    def last(self) -> Vote:
        """The statement signed in the record's slot."""
        return self.signed[-1]

    def permits(self, height: int, round_: int, step: Step) -> bool:
        """Whether a new statement may be signed in this slot (strictly after the recorded one)."""
        return (height, round_, int(step)) > self.slot
