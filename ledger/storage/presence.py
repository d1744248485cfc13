"""The state map's presence filter: a Bloom filter of the keys it holds, whose "absent" is certain
(`ledger.storage.statemap` says when it answers for a version)."""

from __future__ import annotations

import struct
from collections.abc import Iterator

#: How many recent roots the presence filter remembers covering (a node's previews and commits of recent blocks).
FILTER_ROOTS = 64


class PresenceFilter:
    """A Bloom filter of 32-byte keys: `might_contain` is False only for a key never added.

    State keys are SHA-256 outputs (and arbitrary keys are still spread well enough), so the bit positions are
    simply the key's first seven 4-byte words, modulo the layer's size. Ten bits and seven positions per key
    give about 1% false "maybe"s at capacity. It grows without a rescan: when its newest layer is full, a layer
    twice as large takes the next keys, and a key is "maybe" present if any layer says so.
    """

    BITS_PER_KEY = 10
    #: The first layer's capacity, in keys (1.25 MiB of bits).
    FIRST_CAPACITY = 1 << 20

    __slots__ = ("_layers", "covered")

    def __init__(self) -> None:
        #: (bits, size in bits, capacity in keys, keys added), oldest first; new keys go to the last.
        self._layers: list[tuple[bytearray, int, int, list[int]]] = []
        self._grow(self.FIRST_CAPACITY)
        #: Roots (refs) whose keys have all been added, oldest first, at most FILTER_ROOTS of them.
        self.covered: dict[bytes, None] = {}

    @classmethod
    def scanned(cls, items: Iterator[tuple[bytes, bytes]], root: bytes) -> PresenceFilter:
        """A filter of every key in `items` (the map under `root`)."""
        presence = cls()
        for key, _ in items:
            presence.add(key)
        presence.cover(root)
        return presence

    def cover(self, root: bytes) -> None:
        """Record that every key under `root` has been added."""
        self.covered[root] = None
        if len(self.covered) > FILTER_ROOTS:
            del self.covered[next(iter(self.covered))]

    def add(self, key: bytes) -> None:
        bits, size, capacity, added = self._layers[-1]
        if added[0] >= capacity:
            self._grow(2 * capacity)
            bits, size, capacity, added = self._layers[-1]
        for word in _WORDS(key):
            position = word % size
            bits[position >> 3] |= 1 << (position & 7)
        added[0] += 1

    def might_contain(self, key: bytes) -> bool:
        words = _WORDS(key)
        for bits, size, _, _ in reversed(self._layers):
            for word in words:
                position = word % size
                if not bits[position >> 3] & (1 << (position & 7)):
                    break
            else:
                return True
        return False

    def _grow(self, capacity: int) -> None:
        size = capacity * self.BITS_PER_KEY
        self._layers.append((bytearray((size + 7) // 8), size, capacity, [0]))


#: The seven 32-bit words of a key's first 28 bytes: a presence filter's bit positions before the modulo.
_WORDS = struct.Struct(">7I").unpack_from
