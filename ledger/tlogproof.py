"""The existence part of a proof bundle as a C2SP `tlog-proof` (c2sp.org/tlog-proof@v1) file.

A tlog-proof is the text::

    c2sp.org/tlog-proof@v1
    extra <base64 opaque data>            (optional)
    index <decimal log index>
    <base64 hash>                         (zero or more: the RFC 6962 inclusion proof, leaf's sibling first)
    <blank line>
    <the checkpoint note, verbatim>

credledger writes the credential's issue event (its canonical encoding) as the extra data: the spec provides the
line for "data necessary to reconstruct the record hash", and the leaf hash is SHA-256(0x00 || event). The
checkpoint is the commit certificate, signed by the validators' node keys, so any C2SP tool holding their vkeys
can check that the issue event is in the certified log. It says nothing about revocation: that is the bundle's
state proof, which the full `credledger-proof/v1` bundle carries.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from credledger.ledger import encoding, merkle
from credledger.ledger.block import verify_certificate
from credledger.ledger.bundle import Bundle
from credledger.ledger.errors import DecodeError, VerificationError
from credledger.ledger.limits import MAX_EVENT_BYTES
from credledger.ledger.note import MAX_NOTE_BYTES, Checkpoint, SignedNote
from credledger.ledger.validators import ValidatorSet

HEADER = "c2sp.org/tlog-proof@v1"
#: The file extension the spec recommends.
EXTENSION = ".tlog-proof"
#: Most inclusion-proof lines: a tree of at most 2^64 leaves has at most 64 levels.
MAX_PROOF_LINES = 64
#: Largest tlog-proof parsed: the header lines, the extra data (an event, in base64), the proof lines and a note.
MAX_TLOG_PROOF_BYTES = 4 * 1024 + 2 * MAX_EVENT_BYTES + MAX_PROOF_LINES * 64 + MAX_NOTE_BYTES

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True, slots=True)
class TlogProof:
    """A parsed tlog-proof: extra data (None if absent), entry index, inclusion proof and checkpoint note."""

    extra: bytes | None
    index: int
    proof: tuple[bytes, ...]
    checkpoint: str

    def format(self) -> str:
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {base64.b64encode(self.extra).decode()}")
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(h).decode() for h in self.proof)
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str) -> TlogProof:
        """Parse a tlog-proof strictly; DecodeError names the line that breaks the format."""
        if len(text) > MAX_TLOG_PROOF_BYTES:
            raise DecodeError(f"tlog-proof: {len(text)} characters exceeds the limit of {MAX_TLOG_PROOF_BYTES}")
        head, sep, note = text.partition("\n\n")
        if not sep:
            raise DecodeError("tlog-proof: no blank line before the checkpoint")
        lines = head.split("\n")
        if lines[0] != HEADER:
            raise DecodeError(f"tlog-proof: the first line must be {HEADER!r}, got {lines[0][:60]!r}")
        rest = lines[1:]
        extra = None
        if rest and rest[0].startswith("extra "):
            extra = _base64(rest.pop(0)[len("extra ") :], "extra data")
        if not rest or not rest[0].startswith("index "):
            raise DecodeError("tlog-proof: expected an 'index <decimal>' line")
        index_text = rest.pop(0)[len("index ") :]
        if not _DECIMAL.fullmatch(index_text) or int(index_text) >= 2**63:
            raise DecodeError(f"tlog-proof: index must be a decimal without leading zeros, got {index_text[:30]!r}")
        if len(rest) > MAX_PROOF_LINES:
            raise DecodeError(f"tlog-proof: {len(rest)} proof lines, more than {MAX_PROOF_LINES}")
        proof = tuple(_base64(line, "inclusion proof hash") for line in rest)
        if any(len(h) != merkle.HASH_SIZE for h in proof):
            raise DecodeError(f"tlog-proof: every inclusion proof line must be a {merkle.HASH_SIZE}-byte hash")
        return cls(extra, int(index_text), proof, note)


def from_bundle(bundle: Bundle) -> TlogProof:
    """The tlog-proof of the credential's issue event; ValueError if the bundle proves no issue (unknown)."""
    if not bundle.events:
        raise ValueError("the bundle proves the credential was never issued: there is no entry to prove")
    issue = bundle.events[0]
    return TlogProof(issue.event, issue.index, issue.proof, bundle.checkpoint)


def verify(proof: TlogProof, validators: ValidatorSet, entry: bytes | None = None) -> Checkpoint:
    """Check that `entry` (default: the extra data) is in the log the checkpoint certifies.

    `validators` is the set certifying the checkpoint's height; more than 2/3 of its power must have signed.
    Returns the checkpoint; raises VerificationError naming the failed check.
    """
    data = proof.extra if entry is None else entry
    if data is None:
        raise VerificationError("tlog-proof: no entry given and no extra data to rebuild the leaf from")
    try:
        note = SignedNote.parse(proof.checkpoint)
    except DecodeError as exc:
        raise VerificationError(f"tlog-proof: {exc}") from None
    checkpoint, _ = verify_certificate(note, validators)
    merkle.verify_inclusion(merkle.leaf_hash(data), proof.index, checkpoint.size, proof.proof, checkpoint.root)
    return checkpoint


def _base64(text: str, what: str) -> bytes:
    if not text:
        raise DecodeError(f"tlog-proof: {what} is empty")
    return encoding.from_base64(text, f"tlog-proof: {what}")
