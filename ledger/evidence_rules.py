"""The rule for consensus evidence: a validator's two conflicting signed statements, put on record (DESIGN §7).

Anyone can check the evidence: both statements verify under the offender's node key and sign different payloads
for one (height, round, step). The chain keeps one record per offender and slot, so the same equivocation
reported by several nodes is recorded once. What follows from it (lowering power, removal) is for governance.
"""

from __future__ import annotations

from credledger.ledger.authority import Context, Reporter
from credledger.ledger.errors import InvalidEvent, Unauthorized, VerificationError
from credledger.ledger.events import ReportEvidence
from credledger.ledger.state import EquivocationRecord, evidence_key, validator_set
from credledger.ledger.votes import verify_evidence


def apply_report_evidence(ctx: Context, payload: ReportEvidence) -> None:
    authority = ctx.authority
    if not isinstance(authority, Reporter):
        raise Unauthorized("reporter-signature-required", "evidence is reported with one node-key signature")
    evidence = payload.evidence
    if evidence.height > ctx.height:
        raise InvalidEvent(
            "evidence-from-the-future", f"evidence is for height {evidence.height}, the chain is deciding {ctx.height}"
        )
    try:
        # The offender must still be a validator with the same node key: its signatures are checked against it.
        verify_evidence(evidence, validator_set(ctx.view), ctx.event.origin)
    except VerificationError as exc:
        raise InvalidEvent("evidence-invalid", str(exc)) from None
    key = evidence_key(evidence.offender, evidence.height, evidence.round, int(evidence.step))
    if ctx.view.get(key) is not None:
        raise InvalidEvent(
            "evidence-duplicate",
            f"{evidence.offender}'s equivocation at height {evidence.height} round {evidence.round} is on record",
        )
    record = EquivocationRecord(
        offender=evidence.offender,
        height=evidence.height,
        round=evidence.round,
        step=int(evidence.step),
        evidence_id=evidence.id(),
        index=ctx.index,
        reported_by=authority.member.id,
    )
    ctx.view.put(key, record)
