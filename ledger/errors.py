"""One error hierarchy for the whole project.

Every refusal is a subclass of `CredledgerError` whose message says what was expected and what was found. The
CLI maps these to exit codes and the API to RFC 9457 problems; nothing is silently turned into `False`.
"""

from __future__ import annotations


class CredledgerError(Exception):
    """Base of every error credledger raises on purpose."""

    #: Short machine-readable slug, used as the RFC 9457 problem type suffix.
    code = "error"


class DecodeError(CredledgerError):
    """Bytes that are not a canonical encoding of the expected record."""

    code = "malformed"


class VerificationError(CredledgerError):
    """A proof, signature, note or certificate failed a check."""

    code = "verification-failed"


class BadSignature(VerificationError):
    """An Ed25519 signature does not verify under the claimed key."""

    code = "bad-signature"


class InvalidEvent(CredledgerError):
    """An event breaks a ledger rule. `rule` names the rule (DESIGN §3)."""

    code = "invalid-event"

    def __init__(self, rule: str, detail: str) -> None:
        super().__init__(f"{rule}: {detail}")
        self.rule = rule
        self.detail = detail


class Unauthorized(InvalidEvent):
    """An event signed by someone not allowed to make it."""

    code = "unauthorized"


class InvalidBlock(CredledgerError):
    """A block (header, events or certificate) that must not be committed."""

    code = "invalid-block"


class StorageError(CredledgerError):
    """The store is inconsistent, or a write would break its invariants."""

    code = "storage"


class StoreUnavailable(StorageError):
    """The store could not be read just now (its reader table is full, the disk failed): retry, nothing changed."""

    code = "store-unavailable"


class StatePruned(StorageError):
    """The state as of a height the node no longer keeps: it lies before its bounded state history."""

    code = "state-pruned"

    def __init__(self, height: int, oldest: int) -> None:
        super().__init__(
            f"the state as of height {height} is no longer kept: this node keeps state history from height {oldest}"
        )
        self.height = height
        self.oldest = oldest


class ConfigError(CredledgerError):
    """A configuration or genesis file is missing, malformed or inconsistent."""

    code = "config"


class PeerMisbehaved(CredledgerError):
    """A peer sent something that breaks the protocol."""

    code = "peer-misbehaved"
