"""What the consensus machine needs from the ledger: the Application protocol.

The machine decides *which* block comes next; the application knows what a block may contain. Every method is
a pure function of the committed chain (plus, for `build_block`, the events waiting), so every honest node
answers alike. The driver applies a decided block before starting the next height, so `build_block` and
`validate_block` always see the state after the previous block.
"""

from __future__ import annotations

from typing import Protocol

from credledger.ledger.block import Block
from credledger.ledger.validators import ValidatorSet


class Application(Protocol):
    def validators(self, height: int) -> ValidatorSet:
        """The validator set certifying `height`. Asked for heights up to the committed height + 2 (DESIGN §7:
        governance committed at H takes effect at H + 2, so that set is known once H is committed)."""
        ...

    def has_pending_events(self) -> bool:
        """Whether events are waiting, so round 0 of a new height proposes at once instead of at the heartbeat."""
        ...

    def build_block(self, height: int, round_: int, time_ms: int, proposer: str) -> Block:
        """A block for (height, round) from the waiting events, built on the committed chain.

        The header names `round_` and `proposer`, a time no earlier than `time_ms` and later than the previous
        block's, the log and state roots after the events, `validators(height).hash()` and
        `validators(height + 1).hash()`.
        """
        ...

    def validate_block(self, block: Block) -> None:
        """Raise `InvalidBlock` or `InvalidEvent` unless `block` may follow the committed chain.

        Checks everything the ledger rules fix (previous hash, time, events, log and state roots, validator-set
        hashes); the machine itself checks the origin, height, validator hashes and proposer.
        """
        ...
