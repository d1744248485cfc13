"""A seeded network: per-message delay (so reordering), loss, duplication, and partitions.

Every decision draws from the simulation's one `random.Random`, in the order events happen, so a seed fixes
the whole run. After `heal` the network is "healthy" in the paper's sense: no loss, no partitions, and delays
bounded by `healthy_delay_ms`.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """How links behave while faults are on."""

    min_delay_ms: int = 1
    max_delay_ms: int = 20
    drop: float = 0.0
    duplicate: float = 0.0
    partitions: bool = False


class Network:
    """Decides, per message, whether and when it arrives."""

    def __init__(self, rng: random.Random, nodes: list[str], profile: LinkProfile, healthy_delay_ms: int = 20) -> None:
        self._rng = rng
        self._nodes = nodes
        self._profile = profile
        self._healthy_delay_ms = healthy_delay_ms
        self._healthy = False
        self._group: dict[str, int] = dict.fromkeys(nodes, 0)
        self.sent = 0
        self.dropped = 0
        self.duplicated = 0
        self.partitions = 0

    @property
    def healthy(self) -> bool:
        return self._healthy

    def heal(self) -> None:
        self._healthy = True
        self._group = dict.fromkeys(self._nodes, 0)

    def repartition(self) -> None:
        """Split the nodes into two or three groups at random (or rejoin them, one time in four)."""
        if self._healthy or not self._profile.partitions:
            return
        if self._rng.random() < 0.25:
            self._group = dict.fromkeys(self._nodes, 0)
            return
        groups = self._rng.choice((2, 3))
        self._group = {node: self._rng.randrange(groups) for node in self._nodes}
        self.partitions += 1

    def delays(self, sender: str, receiver: str) -> list[int]:
        """Arrival delays of one message (empty: lost; two: duplicated)."""
        self.sent += 1
        if self._healthy:
            return [self._rng.randint(1, self._healthy_delay_ms)]
        profile = self._profile
        if self._group[sender] != self._group[receiver] or self._rng.random() < profile.drop:
            self.dropped += 1
            return []
        out = [self._rng.randint(profile.min_delay_ms, profile.max_delay_ms)]
        if self._rng.random() < profile.duplicate:
            self.duplicated += 1
            out.append(self._rng.randint(profile.min_delay_ms, profile.max_delay_ms * 3))
        return out
