"""Events admitted but not yet committed, bounded in count and bytes.

Events leave in arrival order, which keeps dependent events (an issue, then a revoke of the same credential) in
an order the rules accept. After every committed block the node drops the events the block included and
re-checks the rest against the new state, dropping those the block invalidated.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from credledger.ledger.errors import CredledgerError

T = TypeVar("T")


class MempoolError(CredledgerError):
    """The mempool refused an event."""


class DuplicateEvent(MempoolError):
    code = "duplicate-event"


class MempoolFull(MempoolError):
    code = "mempool-full"


@dataclass(slots=True)
class Pending(Generic[T]):
    """One pending event, built once per admitted event and never changed after (not frozen: that costs a call per
    field)."""

    event_id: bytes
    encoded: bytes
    event: T
    admitted_at: float


class Mempool(Generic[T]):
    def __init__(self, *, max_events: int, max_bytes: int) -> None:
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._items: OrderedDict[bytes, Pending[T]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._items

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def add(self, event_id: bytes, encoded: bytes, event: T, now: float) -> None:
        """Admit an event; raise DuplicateEvent or MempoolFull without changing anything."""
        if event_id in self._items:
            raise DuplicateEvent(f"event {event_id.hex()} is already pending")
        if len(self._items) >= self.max_events:
            raise MempoolFull(f"mempool holds its limit of {self.max_events} events; retry later")
        if self._bytes + len(encoded) > self.max_bytes:
            raise MempoolFull(f"mempool holds its limit of {self.max_bytes} bytes; retry later")
        self._items[event_id] = Pending(event_id, encoded, event, now)
        self._bytes += len(encoded)

    def take(self, max_events: int, max_bytes: int) -> list[Pending[T]]:
        """The oldest pending events that fit the limits (they stay pending until removed)."""
        out: list[Pending[T]] = []
        total = 0
        for item in self._items.values():
            if len(out) >= max_events or total + len(item.encoded) > max_bytes:
                break
            out.append(item)
            total += len(item.encoded)
        return out

    def get(self, event_id: bytes) -> Pending[T] | None:
        return self._items.get(event_id)

    def remove(self, event_ids: Iterable[bytes]) -> None:
        for event_id in event_ids:
            item = self._items.pop(event_id, None)
            if item is not None:
                self._bytes -= len(item.encoded)

    def retain(self, keep: Callable[[Pending[T]], bool]) -> list[Pending[T]]:
        """Drop every event for which `keep` is false, in order; return the dropped ones."""
        dropped = [item for item in self._items.values() if not keep(item)]
        self.remove(item.event_id for item in dropped)
        return dropped
