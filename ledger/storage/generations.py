"""A bounded map for caches of immutable things, kept in two generations.

New entries go into the young generation; when it holds half the bound, it becomes the old one and the previous
old one is dropped whole. A hit in the old generation promotes the entry, so what is in steady use survives
every turn-over, and at most the bound is held however much passes through. No per-entry bookkeeping: a hit in
the young generation costs one dict lookup, which is why the state map's node reads use it on their hot path.
"""

from __future__ import annotations

from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TwoGenerations(Generic[K, V]):
    """At most `size` entries; `get` promotes an old entry, `add` turns the generations over when the young fills.
    A size below 2 keeps nothing."""

    __slots__ = ("_half", "_old", "_young")

    def __init__(self, size: int) -> None:
        self._half = size // 2
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        found = self._young.get(key)
        if found is None:
            found = self._old.get(key)
            if found is not None:
                self.add(key, found)
        return found

    def add(self, key: K, value: V) -> None:
        if self._half <= 0:
            return
        young = self._young
        young[key] = value
        if len(young) >= self._half:
            self._old = young
            self._young = {}
