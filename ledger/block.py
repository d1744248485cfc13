"""Block headers, certified blocks, and commit-certificate verification.

A block is a header plus the encoded events it appends to the log. The header commits to the events through
the log root after the block, to the state through the state root, to the chain through the previous header
hash (block 1 links to the genesis hash), and to who certifies it through the validator-set hashes.

A block's commit certificate is its checkpoint note (DESIGN §6) carrying signature lines from validators that
together hold more than 2/3 of the certifying set's voting power. Verification ignores signers outside the set
(as C2SP requires for unknown keys), counts each validator once however often it appears, rejects the whole
certificate if a signature from a validator's key fails, and names the power it found.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated

from credledger.ledger import codec, domains
from credledger.ledger.codec import Bytes32, Size
from credledger.ledger.errors import DecodeError, VerificationError
from credledger.ledger.keys import SigningKey
from credledger.ledger.limits import MAX_ANY_EVENT_BYTES, MAX_BLOCK_EVENTS, MAX_ORIGIN
from credledger.ledger.note import Checkpoint, NoteSignature, SignedNote, sign_note, verify_note_signature
from credledger.ledger.validators import MemberId, ValidatorSet

Origin = Annotated[str, Size(1, MAX_ORIGIN)]
EncodedEvent = Annotated[bytes, Size(1, MAX_ANY_EVENT_BYTES)]


@dataclass(frozen=True, slots=True)
class Header:
    """A block header (DESIGN §6). `round` is the round in which the proposer built the block."""

    origin: Origin
    height: int
    round: int
    time_ms: int
    prev_hash: Bytes32
    proposer: MemberId
    log_size: int
    log_root: Bytes32
    state_root: Bytes32
    event_count: int
    validators_hash: Bytes32
    next_validators_hash: Bytes32

    def __post_init__(self) -> None:
        # The origin heads the checkpoint note this header is certified by: one printable line.
        if "\n" in self.origin or not self.origin.isprintable():
            raise ValueError(f"header origin {self.origin[:80]!r} must be one printable line")

    def encode(self) -> bytes:
        return codec.encode(self)

    def hash(self) -> bytes:
        return hashlib.sha256(domains.HEADER + codec.encode(self)).digest()

    def checkpoint(self, decision_round: int) -> Checkpoint:
        """The checkpoint body validators sign to precommit this block in `decision_round`."""
        return Checkpoint(self.origin, self.log_size, self.log_root, self.height, decision_round, self.hash())


@dataclass(frozen=True, slots=True)
class Block:
    """A proposed block: header and the encoded events it appends, in log order."""

    header: Header
    events: Annotated[tuple[EncodedEvent, ...], Size(0, MAX_BLOCK_EVENTS)]

    def __post_init__(self) -> None:
        if len(self.events) != self.header.event_count:
            raise ValueError(f"header counts {self.header.event_count} events, block carries {len(self.events)}")

    def hash(self) -> bytes:
        return self.header.hash()


@dataclass(frozen=True, slots=True)
class CertifiedBlock:
    """A committed block with its commit certificate (the checkpoint note text with signatures)."""

    block: Block
    certificate: Annotated[str, Size(1, 256 * 1024)]

    @property
    def header(self) -> Header:
        return self.block.header

    def note(self) -> SignedNote:
        return SignedNote.parse(self.certificate)


def sign_checkpoint(header: Header, decision_round: int, key: SigningKey) -> NoteSignature:
    """A validator's precommit for `header`: its note signature on the block's checkpoint."""
    return sign_note(header.checkpoint(decision_round).body(), key)


def verify_certificate(note: SignedNote, validators: ValidatorSet) -> tuple[Checkpoint, int]:
    """Check that `note` is a checkpoint certified by more than 2/3 of `validators`' power.

    Returns the parsed checkpoint and the power that signed it. Raises VerificationError naming what failed.
    """
    try:
        checkpoint = Checkpoint.parse(note.text)
    except DecodeError as exc:
        raise VerificationError(f"certificate: {exc}") from None
    signed: set[str] = set()
    power = 0
    for sig in note.signatures:
        validator = validators.get(sig.name)
        if validator is None or sig.name in signed:
            continue  # a signer outside the set, or a validator counted already
        key = validator.public_key
        if sig.key_id != key.key_id:
            continue  # same name, different key: not this validator's signature (C2SP: ignore)
        try:
            verify_note_signature(note.text, sig, key)
        except VerificationError as exc:
            raise VerificationError(f"certificate: signature of validator {sig.name} is invalid ({exc})") from None
        signed.add(sig.name)
        power += validator.power
    if power < validators.quorum:
        raise VerificationError(
            f"certificate: signers hold {power} of {validators.total_power} voting power, "
            f"need more than 2/3 ({validators.quorum})"
        )
    return checkpoint, power


def verify_certified_header(header: Header, note: SignedNote, validators: ValidatorSet) -> Checkpoint:
    """Verify the certificate and that it certifies exactly this header."""
    if header.validators_hash != validators.hash():
        raise VerificationError(
            f"header {header.height} names validator set {header.validators_hash.hex()[:16]}, "
            f"certifying set is {validators.hash().hex()[:16]}"
        )
    checkpoint, _ = verify_certificate(note, validators)
    expected = header.checkpoint(checkpoint.round)
    if checkpoint != expected:
        raise VerificationError(
            f"certificate is for height {checkpoint.height} header {checkpoint.header_hash.hex()[:16]} "
            f"size {checkpoint.size}; expected height {header.height} header {header.hash().hex()[:16]} "
            f"size {header.log_size}"
        )
    return checkpoint


def decode_header(data: bytes) -> Header:
    return codec.decode(Header, data, max_bytes=4096)
