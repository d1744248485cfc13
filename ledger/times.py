"""Times as people read them: the ledger keeps milliseconds since the Unix epoch (UTC); messages show dates."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_ms(ms: int) -> str:
    """`ms` as an ISO 8601 UTC date-time, to the second, or to the millisecond when it has a fraction of one
    (so two different times never print the same): 2030-01-01T00:00:00Z, 2026-11-26T13:40:01.250Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    text = moment.isoformat(timespec="milliseconds" if ms % 1000 else "seconds")
    return text.replace("+00:00", "Z")
