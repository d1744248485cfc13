"""Timeouts: what the machine asks the driver to schedule, and how long each one lasts.

Tendermint's timeouts grow with the round (timeout(r) = base + r * delta), so that after the network settles a
round eventually lasts longer than the message delay and every honest validator hears from every other one in
time (the partial-synchrony argument of the paper, §3). The defaults are the network's genesis defaults: on a
loopback devnet a healthy round never waits on a timeout (blocks follow as fast as the votes arrive, well under a
second), and on a WAN a lost proposer costs 3 s before the next round. Growth is capped so a long outage does
not leave rounds minutes long once the network heals.

Two timeouts are not in the paper: `HEARTBEAT` holds round 0 of a height while no events are waiting (DESIGN §6:
a block when events wait, otherwise every heartbeat), and `REBROADCAST` re-sends the votes the validator signed at
the current height, which is how votes lost on the way (the paper assumes reliable gossip) are recovered.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from credledger.ledger.genesis import Params


class TimeoutKind(enum.IntEnum):
    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2
    HEARTBEAT = 3
    REBROADCAST = 4


@dataclass(frozen=True, slots=True)
class Timeout:
    """A timeout the machine asked for; the driver hands it back to `Machine.on_timeout` when it expires."""

    height: int
    round: int
    kind: TimeoutKind


@dataclass(frozen=True, slots=True)
class TimeoutConfig:
    """Timeout lengths in milliseconds (base + round * delta, capped at `max_ms`)."""

    propose_ms: int = 3_000
    propose_delta_ms: int = 500
    prevote_ms: int = 1_000
    prevote_delta_ms: int = 500
    precommit_ms: int = 1_000
    precommit_delta_ms: int = 500
    #: Round 0 waits at most this long for events before proposing an empty block; 0 proposes at once.
    heartbeat_ms: int = 5_000
    #: How often a validator re-sends its own statements of the current round.
    rebroadcast_ms: int = 1_000
    max_ms: int = 60_000

    def __post_init__(self) -> None:
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise ValueError(f"timeout {name} must be a non-negative integer, got {value!r}")
        if self.rebroadcast_ms == 0:
            raise ValueError("rebroadcast_ms must be positive")

    @classmethod
    def from_params(cls, params: Params, *, rebroadcast_ms: int = 1_000) -> TimeoutConfig:
        """The timeouts a network's genesis parameters fix."""
        return cls(
            propose_ms=params.timeout_propose_ms,
            propose_delta_ms=params.timeout_propose_delta_ms,
            prevote_ms=params.timeout_prevote_ms,
            prevote_delta_ms=params.timeout_prevote_delta_ms,
            precommit_ms=params.timeout_precommit_ms,
            precommit_delta_ms=params.timeout_precommit_delta_ms,
            heartbeat_ms=params.heartbeat_ms,
            rebroadcast_ms=rebroadcast_ms,
        )

    def delay_ms(self, kind: TimeoutKind, round_: int) -> int:
        """How long `kind` lasts in round `round_`."""
        if kind is TimeoutKind.PROPOSE:
            base, delta = self.propose_ms, self.propose_delta_ms
        elif kind is TimeoutKind.PREVOTE:
            base, delta = self.prevote_ms, self.prevote_delta_ms
        elif kind is TimeoutKind.PRECOMMIT:
            base, delta = self.precommit_ms, self.precommit_delta_ms
        elif kind is TimeoutKind.HEARTBEAT:
            return self.heartbeat_ms
        else:  # re-sending slows down as rounds lengthen, like the timeouts it backs up
            base, delta = self.rebroadcast_ms, self.precommit_delta_ms
        return min(base + round_ * delta, max(self.max_ms, base))
