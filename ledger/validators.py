"""Validator sets: who certifies blocks, with how much voting power.

A validator set is the active members with power > 0, ordered by member id. Its hash (which block headers carry
for the set certifying the block and the next one) is SHA-256 over a domain prefix and its canonical encoding.
A commit certificate needs signatures from validators holding strictly more than 2/3 of the total power.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Annotated

from credledger.ledger import codec, domains
from credledger.ledger.codec import Bytes32, Range, Size
from credledger.ledger.keys import PublicKey
from credledger.ledger.limits import MAX_MEMBER_ID, MAX_MEMBERS, MAX_POWER, MEMBER_ID_PATTERN

MemberId = Annotated[str, Size(1, MAX_MEMBER_ID)]
Power = Annotated[int, Range(0, MAX_POWER)]


def check_member_id(member_id: str) -> None:
    """Raise ValueError unless `member_id` has the form DESIGN §2 requires."""
    if not _is_member_id(member_id):
        raise ValueError(f"member id {member_id!r} must match {MEMBER_ID_PATTERN.pattern}")


@functools.lru_cache(maxsize=1024)
def _is_member_id(member_id: str) -> bool:
    # Cached: the same few member ids are checked in every event and record a node decodes.
    return MEMBER_ID_PATTERN.fullmatch(member_id) is not None


@dataclass(frozen=True, slots=True)
class Validator:
    member_id: MemberId
    power: Power
    node_key: Bytes32

    def __post_init__(self) -> None:
        check_member_id(self.member_id)
        if not 0 < self.power <= MAX_POWER:
            raise ValueError(f"validator {self.member_id}: power {self.power} outside 1..{MAX_POWER}")

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(self.member_id, self.node_key)


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    validators: Annotated[tuple[Validator, ...], Size(1, MAX_MEMBERS)]
    _by_id: dict[str, Validator] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ids = [v.member_id for v in self.validators]
        if not ids:
            raise ValueError("a validator set needs at least one validator")
        if ids != sorted(ids) or len(set(ids)) != len(ids):
            raise ValueError("validators must be sorted by member id without duplicates")
        object.__setattr__(self, "_by_id", {v.member_id: v for v in self.validators})

    @property
    def total_power(self) -> int:
        return sum(v.power for v in self.validators)

    @property
    def quorum(self) -> int:
        """The least power that is strictly more than 2/3 of the total."""
        return self.total_power * 2 // 3 + 1

    @property
    def weak_quorum(self) -> int:
        """The least power that is strictly more than 1/3 of the total (f + 1 in the paper)."""
        return self.total_power // 3 + 1

    def get(self, member_id: str) -> Validator | None:
        return self._by_id.get(member_id)

    def __contains__(self, member_id: object) -> bool:
        return member_id in self._by_id

    def __len__(self) -> int:
        return len(self.validators)

    def hash(self) -> bytes:
        return hashlib.sha256(domains.VALIDATOR_SET + codec.encode(self)).digest()

    @classmethod
    def of(cls, validators: list[Validator] | tuple[Validator, ...]) -> ValidatorSet:
        """A set from validators in any order."""
        return cls(tuple(sorted(validators, key=lambda v: v.member_id)))
