"""The message log of one height: proposals and votes, counted by voting power, bounded by construction.

Each validator has one slot per (round, step): the first verified statement in it is kept and counted; a
different one later is equivocation (the caller turns it into evidence) and is never counted. So a Byzantine
validator occupies at most its own slots and can neither inflate a tally nor grow memory beyond
rounds x steps x validators. Votes for rounds beyond the machine's window keep only each validator's latest
statement (`ahead`), which is all the round-skip rule (L55) needs.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from credledger.ledger.block import Block
from credledger.ledger.validators import ValidatorSet
from credledger.ledger.votes import BlockRef, Message, Precommit, Prevote, Proposal

V = TypeVar("V", Prevote, Precommit)


class Added(enum.Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"


class VoteTally(Generic[V]):
    """The votes of one step in one round.

    `votes` holds each validator's first vote; `total` counts each validator once ("2f + 1 of any value"). The
    power behind a value counts the distinct validators that voted for it, including a second, conflicting
    vote from an equivocator when the caller admits it (for a block it holds, or nil): a quorum for a value
    means at least f + 1 honest validators voted for it whatever else the Byzantine ones signed, so counting
    those votes is safe, and without them a polka that others saw could stay invisible here for ever.
    """

    def __init__(self) -> None:
        self.votes: dict[str, V] = {}
        self.by_value: dict[Hashable, dict[str, V]] = {}
        self.power: dict[Hashable, int] = {}
        self.total = 0

    def add(self, vote: V, power: int, admit: Callable[[Hashable], bool]) -> tuple[Added, V]:
        """Count `vote`; on a conflict count it for its value only if `admit(value)`. Returns the first vote."""
        value = value_of(vote)
        first = self.votes.get(vote.signer)
        if first is None:
            self.votes[vote.signer] = vote
            self.total += power
            self._count(value, vote, power)
            return Added.NEW, vote
        voters = self.by_value.get(value)
        if first == vote or (voters is not None and vote.signer in voters):
            return Added.DUPLICATE, first
        if admit(value):
            self._count(value, vote, power)
        return Added.CONFLICT, first

    def _count(self, value: Hashable, vote: V, power: int) -> None:
        self.by_value.setdefault(value, {})[vote.signer] = vote
        self.power[value] = self.power.get(value, 0) + power

    def holds(self, vote: V) -> bool:
        voters = self.by_value.get(value_of(vote))
        return voters is not None and voters.get(vote.signer) == vote

    def power_for(self, value: Hashable) -> int:
        return self.power.get(value, 0)

    def block_with(self, quorum: int) -> Hashable | None:
        """The non-nil value holding at least `quorum` power, if one does."""
        for value, power in self.power.items():
            if value is not None and power >= quorum:
                return value
        return None

    def voters_for(self, value: Hashable) -> list[V]:
        """The votes for `value`, by member id."""
        voters = self.by_value.get(value, {})
        return [voters[name] for name in sorted(voters)]


def value_of(vote: Prevote | Precommit) -> Hashable:
    """What a vote counts for: a header hash for prevotes, the whole checkpoint reference for precommits.

    A precommit whose log size or root disagrees with its header hash signs a different checkpoint body, so it
    must never be counted with the others: its signature would break the commit certificate.
    """
    return vote.block_hash if isinstance(vote, Prevote) else vote.block


class HeightLog:
    """Everything received (and sent) at one height."""

    def __init__(self, height: int, validators: ValidatorSet) -> None:
        self.height = height
        self.validators = validators
        self.proposals: dict[int, Proposal] = {}
        self.blocks: dict[bytes, Block] = {}
        self.prevotes: dict[int, VoteTally[Prevote]] = {}
        self.precommits: dict[int, VoteTally[Precommit]] = {}
        #: Highest round each validator has sent anything for (L55 counts these).
        self.max_round: dict[str, int] = {}
        #: Per validator, its latest vote for a round beyond the window.
        self.ahead: dict[str, Prevote | Precommit] = {}
        #: (validator, round, step) already reported as equivocation.
        self.evidenced: set[tuple[str, int, int]] = set()

    def prevotes_at(self, round_: int) -> VoteTally[Prevote]:
        tally = self.prevotes.get(round_)
        if tally is None:
            tally = self.prevotes[round_] = VoteTally()
        return tally

    def precommits_at(self, round_: int) -> VoteTally[Precommit]:
        tally = self.precommits.get(round_)
        if tally is None:
            tally = self.precommits[round_] = VoteTally()
        return tally

    def contains(self, message: Message) -> bool:
        """Whether exactly this message (signature included) is kept already, so it needs no second look."""
        if isinstance(message, Proposal):
            return self.proposals.get(message.round) == message
        if self.ahead.get(message.signer) == message:
            return True
        if isinstance(message, Prevote):
            prevotes = self.prevotes.get(message.round)
            return prevotes is not None and prevotes.holds(message)
        precommits = self.precommits.get(message.round)
        return precommits is not None and precommits.holds(message)

    def saw(self, signer: str, round_: int) -> None:
        if round_ > self.max_round.get(signer, -1):
            self.max_round[signer] = round_

    def add_proposal(self, proposal: Proposal) -> tuple[Added, Proposal]:
        existing = self.proposals.get(proposal.round)
        if existing is not None:
            return (Added.DUPLICATE if existing == proposal else Added.CONFLICT), existing
        self.proposals[proposal.round] = proposal
        self.blocks.setdefault(proposal.block_hash, proposal.block)
        self.saw(proposal.proposer, proposal.round)
        return Added.NEW, proposal

    def add_vote(self, vote: Prevote | Precommit) -> tuple[Added, Prevote | Precommit]:
        validator = self.validators.get(vote.signer)
        assert validator is not None, "votes are verified before they are added"
        self.saw(vote.signer, vote.round)
        if isinstance(vote, Prevote):
            return self.prevotes_at(vote.round).add(vote, validator.power, self._known)
        return self.precommits_at(vote.round).add(vote, validator.power, self._known)

    def _known(self, value: Hashable) -> bool:
        """Whether a conflicting vote for `value` may count: nil, or a block this log holds (so bounded)."""
        if isinstance(value, BlockRef):
            value = value.header_hash
        return value is None or value in self.blocks

    def keep_ahead(self, vote: Prevote | Precommit) -> None:
        kept = self.ahead.get(vote.signer)
        if kept is None or vote.round > kept.round:
            self.ahead[vote.signer] = vote
        self.saw(vote.signer, vote.round)

    def release_ahead(self, last_round: int) -> list[Prevote | Precommit]:
        """Take out the kept votes whose round is now within the window (at most `last_round`)."""
        released = [v for v in self.ahead.values() if v.round <= last_round]
        for vote in released:
            del self.ahead[vote.signer]
        return released

    def skip_target(self, current_round: int, weak_quorum: int) -> int | None:
        """L55: the highest round above `current_round` that validators with f + 1 power have reached."""
        reached = sorted(
            ((r, self.validators.get(v)) for v, r in self.max_round.items() if r > current_round),
            key=lambda item: item[0],
            reverse=True,
        )
        power = 0
        for round_, validator in reached:
            power += validator.power if validator is not None else 0
            if power >= weak_quorum:
                return round_
        return None

    def quorum_certificate(self, round_: int, ref: BlockRef) -> list[Precommit]:
        """The precommits of `round_` for exactly `ref`, by member id."""
        tally = self.precommits.get(round_)
        return [] if tally is None else tally.voters_for(ref)
