"""What the machine asks its driver to do. The driver executes a returned list in order.

`PersistSafety` must be durable (written and synced) before the driver goes on to the next action: it always
precedes the `Broadcast` of the statement it protects. `Decide` must be stored (block, certificate and the next
schedule in one transaction) before the driver calls `Machine.start` for the next height.
"""

from __future__ import annotations

from dataclasses import dataclass

from credledger.consensus.proposer import ProposerSchedule
from credledger.consensus.safety import SafetyRecord
from credledger.consensus.timeouts import Timeout
from credledger.ledger.block import CertifiedBlock
from credledger.ledger.votes import Evidence, Message


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send `message` to every validator (the machine has already counted it itself)."""

    message: Message


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """Call `Machine.on_timeout(timeout)` after `delay_ms`. Timeouts of past heights or rounds are ignored."""

    timeout: Timeout
    delay_ms: int


@dataclass(frozen=True, slots=True)
class PersistSafety:
    """Make `record` durable before executing any later action."""

    record: SafetyRecord


@dataclass(frozen=True, slots=True)
class RecordEvidence:
    """Keep `evidence` of equivocation and submit it for inclusion in the chain."""

    evidence: Evidence


@dataclass(frozen=True, slots=True)
class Decide:
    """`certified` is decided: store it with `next_schedule` (the proposer schedule of the next height)."""

    certified: CertifiedBlock
    next_schedule: ProposerSchedule


Action = Broadcast | ScheduleTimeout | PersistSafety | RecordEvidence | Decide
