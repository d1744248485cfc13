"""The deterministic chain the crash test writes: block h issues credentials c{h}-0 ... c{h}-{n-1}."""

from __future__ import annotations

from credledger.ledger.events import Event
from tests.factories import BLOCK_INTERVAL_MS, T0, digest, issue, make_network

NETWORK = make_network(4)
EVENTS_PER_BLOCK = 25


def events_for(height: int) -> list[Event]:
    issuer = NETWORK[NETWORK.ids[height % len(NETWORK.ids)]]
    when = T0 + height * BLOCK_INTERVAL_MS
    return [issue(issuer, digest(f"c{height}-{j}"), time_ms=when) for j in range(EVENTS_PER_BLOCK)]
