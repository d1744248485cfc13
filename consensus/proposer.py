"""Weighted round-robin proposer rotation, as CometBFT's proposer-selection spec describes it.

Theory of operation
-------------------
Each validator holds a priority. One *election*: if the priorities spread more than 2 * P apart (P = total
power) they are scaled down to within it; they are centred on their average; every validator's priority grows by
its power; the highest priority (ties: the smaller member id) is elected and pays P back. Over any P consecutive
elections with an unchanged set, each validator is elected as many times as it has power (the spec's R2).

A `ProposerSchedule` holds the priorities at the start of one height. The proposer of round r is the validator
elected in election r + 1 from there, so every validator computes the same proposer for every (height, round)
(R1). The next height's schedule starts one election on, whatever round decided, and carries priorities over
to the next validator set: a validator that stays keeps its priority (with its new power), one that leaves is
dropped, and one that joins starts at -1.125 * P so leaving and rejoining never jumps the queue.

The schedule is a deterministic function of the chain, but not of one block, so a node stores it beside each
committed block (`Decide.next_schedule`) and a node that syncs blocks computes it with `next_height`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from credledger.ledger.codec import Range, Size
from credledger.ledger.limits import MAX_MEMBERS
from credledger.ledger.validators import Validator, ValidatorSet

Priority = Annotated[int, Range(-(2**63), 2**63 - 1)]


@dataclass(frozen=True, slots=True)
class ProposerSchedule:
    """Proposer priorities at the start of `height`, one per validator in `validators` order."""

    height: int
    validators: ValidatorSet
    priorities: Annotated[tuple[Priority, ...], Size(1, MAX_MEMBERS)]

    def __post_init__(self) -> None:
        if len(self.priorities) != len(self.validators):
            raise ValueError(f"{len(self.priorities)} priorities for {len(self.validators)} validators")
        if self.height < 1:
            raise ValueError(f"schedule height must be at least 1, got {self.height}")

    @classmethod
    def genesis(cls, validators: ValidatorSet, height: int = 1) -> ProposerSchedule:
        """The schedule of the first height: every priority zero."""
        return cls(height, validators, (0,) * len(validators))

    def proposers(self, rounds: int) -> list[Validator]:
        """The proposers of rounds 0 .. rounds - 1."""
        powers = [v.power for v in self.validators.validators]
        priorities = list(self.priorities)
        elected = []
        for _ in range(rounds):
            priorities, index = _elect(powers, priorities)
            elected.append(self.validators.validators[index])
        return elected

    def proposer(self, round_: int) -> Validator:
        return self.proposers(round_ + 1)[-1]

    def next_height(self, validators: ValidatorSet) -> ProposerSchedule:
        """The schedule of `height + 1`, whose validator set is `validators`."""
        powers = [v.power for v in self.validators.validators]
        after, _ = _elect(powers, list(self.priorities))
        carried = {v.member_id: p for v, p in zip(self.validators.validators, after, strict=True)}
        total = validators.total_power
        newcomer = -(total + (total >> 3))
        priorities = tuple(carried.get(v.member_id, newcomer) for v in validators.validators)
        return ProposerSchedule(self.height + 1, validators, priorities)


class Rotation:
    """The proposers of one height, computed lazily and kept, so round r costs O(n) once."""

    def __init__(self, schedule: ProposerSchedule) -> None:
        self._validators = schedule.validators.validators
        self._powers = [v.power for v in self._validators]
        self._priorities = list(schedule.priorities)
        self._elected: list[str] = []

    def proposer(self, round_: int) -> str:
        while len(self._elected) <= round_:
            self._priorities, index = _elect(self._powers, self._priorities)
            self._elected.append(self._validators[index].member_id)
        return self._elected[round_]


def _elect(powers: list[int], priorities: list[int]) -> tuple[list[int], int]:
    """One election: scale, centre, add powers, pick the highest; return new priorities and the index elected."""
    total = sum(powers)
    window = 2 * total
    spread = max(priorities) - min(priorities)
    if spread > window:
        ratio = -(-spread // window)  # ceiling division, as the spec's (diff + window - 1) / window
        priorities = [_truncating_div(p, ratio) for p in priorities]
    average = sum(priorities) // len(priorities)
    priorities = [p - average + power for p, power in zip(priorities, powers, strict=True)]
    best = 0
    for i in range(1, len(priorities)):
        if priorities[i] > priorities[best]:  # strict: on a tie the earlier (smaller member id) wins
            best = i
    priorities[best] -= total
    return priorities, best


def _truncating_div(value: int, divisor: int) -> int:
    quotient = abs(value) // divisor
    return quotient if value >= 0 else -quotient
