"""Errors of the credential standards layer, each naming what failed."""

from __future__ import annotations

from credledger.ledger.errors import DecodeError, VerificationError


class DocumentRefused(DecodeError):
    """A JSON-LD document asked for a context or document that is not shipped with credledger."""

    code = "context-refused"


class CanonicalizationError(DecodeError):
    """A document could not be turned into canonical N-Quads (bad JSON-LD, too large, or too much work)."""

    code = "canonicalization-failed"


class ProofError(VerificationError):
    """A Data Integrity proof failed the check named by `check`."""

    code = "proof-invalid"

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail


class StatusListError(DecodeError):
    """A Bitstring Status List value (``encodedList``, index, purpose) that breaks the specification."""

    code = "status-list-invalid"
