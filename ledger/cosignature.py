"""C2SP tlog-cosignature v1.0.1: timestamped Ed25519 witness cosignatures on checkpoints, as pure functions.

A cosignature (c2sp.org/tlog-cosignature §Format) is a note signature line on a checkpoint,
``— <cosigner name> base64(key id || timestamp || signature)``, whose key id is
SHA-256(name || "\\n" || 0x04 || Ed25519 public key)[:4] (signature type 0x04, c2sp.org/signed-note §Signature
types), whose 72-byte body is a big-endian u64 POSIX timestamp and a 64-byte Ed25519 signature, and whose signed
message (§Ed25519 signed message) is ``cosignature/v1\\ntime <timestamp>\\n`` followed by the whole checkpoint
body. Because the type byte differs, a cosignature never matches a log key of type 0x01 with the same name and
public key: `ledger.note.open_note` and `ledger.block.verify_certificate` ignore cosignature lines.

The ML-DSA-44 cosignature type of later drafts (type 0x06) is not implemented.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from credledger.ledger.errors import BadSignature, DecodeError, VerificationError
from credledger.ledger.keys import KEY_ID_SIZE, PUBLIC_KEY_SIZE, SIGNATURE_SIZE, PublicKey, SigningKey, verify_signature
from credledger.ledger.note import NoteSignature, SignedNote

#: c2sp.org/signed-note §Signature types: 0x04, timestamped Ed25519 witness cosignatures.
COSIGNATURE_TYPE = 0x04
#: tlog-cosignature §Ed25519 signed message: the header line, for domain separation.
COSIGNATURE_HEADER = "cosignature/v1"
#: tlog-cosignature §Format: a u64 timestamp then the Ed25519 signature.
TIMESTAMPED_SIGNATURE_SIZE = 8 + SIGNATURE_SIZE
#: tlog-cosignature §Format: the timestamp "MUST NOT exceed 2^63 - 1".
MAX_TIMESTAMP = 2**63 - 1
_U64 = struct.Struct(">Q")


class QuorumNotMet(VerificationError):
    """Fewer valid cosignatures than the policy requires; `missing` names the witnesses that did not cosign."""

    code = "quorum-not-met"

    def __init__(self, message: str, missing: Sequence[str]) -> None:
        super().__init__(message)
        self.missing = tuple(missing)


def cosigner_key_id(name: str, public_key: bytes) -> bytes:
    """tlog-cosignature §Format: SHA-256(<name> || "\\n" || 0x04 || 32-byte Ed25519 public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([COSIGNATURE_TYPE]) + public_key).digest()[:KEY_ID_SIZE]


@dataclass(frozen=True, slots=True)
class CosignerKey:
    """A witness's (cosigner's) name and Ed25519 public key."""

    name: str
    raw: bytes

    def __post_init__(self) -> None:
        # The same name rules as a note key (non-empty, printable, no '+' or spaces).
        PublicKey(self.name, self.raw)

    @property
    def key_id(self) -> bytes:
        return cosigner_key_id(self.name, self.raw)

    def vkey(self) -> str:
        """The vkey with signature type 0x04 (tlog-cosignature §Format; signed-note §Verifier keys)."""
        encoded = base64.b64encode(bytes([COSIGNATURE_TYPE]) + self.raw).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, text: str) -> CosignerKey:
        """Parse a cosigner vkey, checking the type byte (0x04) and that the key id matches."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise DecodeError(f"cosigner vkey must be <name>+<hex id>+<base64 key>, got {text[:100]!r}")
        name, hex_id, b64 = parts
        try:
            blob = base64.b64decode(b64, validate=True)
            claimed_id = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise DecodeError(f"cosigner vkey {name!r}: bad hex key id or base64 key") from None
        if not blob or blob[0] != COSIGNATURE_TYPE:
            kind = f"{blob[0]:#04x}" if blob else "nothing"
            raise DecodeError(f"cosigner vkey {name!r}: expected signature type 0x04 (Ed25519 cosignature), got {kind}")
        if len(blob) != 1 + PUBLIC_KEY_SIZE:
            raise DecodeError(f"cosigner vkey {name!r}: expected a {PUBLIC_KEY_SIZE}-byte Ed25519 key")
        try:
            key = cls(name, blob[1:])
        except ValueError as exc:
            raise DecodeError(f"cosigner vkey: {exc}") from None
        if claimed_id != key.key_id:
            raise DecodeError(f"cosigner vkey {name!r}: key id {hex_id} does not match the key ({key.key_id.hex()})")
        return key

    @classmethod
    def of(cls, signer: SigningKey) -> CosignerKey:
        """The cosigner public key of a signing key (same name and Ed25519 key, type 0x04)."""
        return cls(signer.name, signer.public.raw)


@dataclass(frozen=True, slots=True)
class Cosignature:
    """One decoded cosignature line."""

    name: str
    key_id: bytes
    timestamp: int
    signature: bytes

    def note_signature(self) -> NoteSignature:
        return NoteSignature(self.name, self.key_id, _U64.pack(self.timestamp) + self.signature)

    def line(self) -> str:
        """The note signature line, ending in a newline."""
        return self.note_signature().line()

    @classmethod
    def from_note_signature(cls, sig: NoteSignature) -> Cosignature:
        """Decode the timestamped_signature of a note signature line (`DecodeError` if it is not 72 bytes)."""
        if len(sig.signature) != TIMESTAMPED_SIGNATURE_SIZE:
            raise DecodeError(
                f"cosignature of {sig.name}: expected {TIMESTAMPED_SIGNATURE_SIZE} bytes after the key id, "
                f"got {len(sig.signature)}"
            )
        (timestamp,) = _U64.unpack_from(sig.signature)
        if timestamp > MAX_TIMESTAMP:
            raise DecodeError(f"cosignature of {sig.name}: timestamp {timestamp} exceeds 2^63 - 1")
        return cls(sig.name, sig.key_id, timestamp, sig.signature[8:])


def signed_message(body: str, timestamp: int) -> bytes:
    """tlog-cosignature §Ed25519 signed message: header line, timestamp line, then the checkpoint body."""
    if not body.endswith("\n"):
        raise ValueError("checkpoint body must end with a newline")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError(f"cosignature timestamp must be in [0, 2^63 - 1], got {timestamp}")
    return f"{COSIGNATURE_HEADER}\ntime {timestamp}\n{body}".encode()


def cosign(body: str, signer: SigningKey, timestamp: int) -> Cosignature:
    """`signer`'s cosignature on the checkpoint `body` at POSIX time `timestamp`.

    c2sp.org/signed-note: the same Ed25519 key should not also sign notes (type 0x01); give a witness its own key.
    """
    signature = signer.sign(b"", signed_message(body, timestamp))
    return Cosignature(signer.name, cosigner_key_id(signer.name, signer.public.raw), timestamp, signature)


def verify_cosignature(body: str, sig: NoteSignature, key: CosignerKey) -> Cosignature:
    """Check that `sig` is `key`'s valid cosignature on checkpoint `body`; return it decoded."""
    if sig.name != key.name or sig.key_id != key.key_id:
        raise VerificationError(
            f"cosignature is by {sig.name}+{sig.key_id.hex()}, expected {key.name}+{key.key_id.hex()}"
        )
    try:
        cosignature = Cosignature.from_note_signature(sig)
    except DecodeError as exc:
        raise BadSignature(str(exc)) from None
    try:
        verify_signature(key.raw, signed_message(body, cosignature.timestamp), cosignature.signature)
    except BadSignature:
        raise BadSignature(f"cosignature of {key.name}+{key.key_id.hex()} does not verify") from None
    return cosignature


def verified_cosignatures(note: SignedNote, witnesses: Iterable[CosignerKey]) -> dict[str, Cosignature]:
    """The valid cosignatures on `note` from `witnesses`, by witness name.

    As c2sp.org/signed-note says, lines from unknown keys (name and key id not both matching) are ignored, and a
    line from a known witness that fails to verify rejects the whole note (`BadSignature`).
    """
    known = {(w.name, w.key_id): w for w in witnesses}
    found: dict[str, Cosignature] = {}
    for sig in note.signatures:
        key = known.get((sig.name, sig.key_id))
        if key is not None:
            found.setdefault(key.name, verify_cosignature(note.text, sig, key))
    return found


def require_cosignatures(
    note: SignedNote, witnesses: Sequence[CosignerKey], quorum: int, *, not_after: int | None = None
) -> dict[str, Cosignature]:
    """Check that `note` carries valid cosignatures from at least `quorum` of `witnesses`; return them by name.

    Raises `QuorumNotMet` naming the witnesses that did not cosign, `BadSignature` if a known witness's line is
    invalid, and `VerificationError` if a cosignature is dated after `not_after` (the spec lets verifiers refuse
    timestamps in the future).
    """
    if not 0 <= quorum <= len(witnesses):
        raise ValueError(f"witness quorum must be in [0, {len(witnesses)}], got {quorum}")
    found = verified_cosignatures(note, witnesses)
    if not_after is not None:
        for name, cosignature in found.items():
            if cosignature.timestamp > not_after:
                raise VerificationError(
                    f"cosignature of {name} is dated {cosignature.timestamp}, after the latest accepted {not_after}"
                )
    if len(found) < quorum:
        missing = [w.name for w in witnesses if w.name not in found]
        raise QuorumNotMet(
            f"checkpoint carries {len(found)} of the {quorum} required witness cosignatures; "
            f"missing: {', '.join(missing)}",
            missing,
        )
    return found
