"""C2SP signed notes and tlog checkpoints.

A signed note (c2sp.org/signed-note) is UTF-8 text ending in a newline, a blank line, then one or more lines
``— <key name> base64(4-byte key id || signature)``. Ed25519 signatures are over the text, including its final
newline. The text is separated from the signatures by the *last* blank line, so the text may itself hold blank
lines.

A checkpoint (c2sp.org/tlog-checkpoint) is a note whose text is the log origin, the tree size in decimal, the
base64 root hash, and optional extension lines. credledger's checkpoints carry exactly one extension line,
``credledger <height> <round> <base64 header hash>``, binding the log head to the certified block header, so a
validator's signature on the checkpoint is its precommit for the block (DESIGN §6).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from credledger.ledger import domains, encoding
from credledger.ledger.errors import BadSignature, DecodeError, VerificationError
from credledger.ledger.keys import KEY_ID_SIZE, SIGNATURE_SIZE, PublicKey, SigningKey

EM_DASH = "\u2014"
SIGNATURE_PREFIX = EM_DASH + " "
#: Largest note text or whole note credledger will parse.
MAX_NOTE_BYTES = 64 * 1024
#: Most signature lines a note may carry (C2SP requires accepting at least 16).
MAX_NOTE_SIGNATURES = 512
HASH_SIZE = 32

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line of a note."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode()
        return f"{SIGNATURE_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True, slots=True)
class SignedNote:
    """Note text plus its signature lines, in the order they appeared."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def format(self) -> str:
        """The note as it travels: text, blank line, signature lines."""
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def with_signatures(self, extra: Iterable[NoteSignature]) -> SignedNote:
        """A copy carrying additional signatures (an existing name+key id is not repeated)."""
        seen = {(s.name, s.key_id) for s in self.signatures}
        added = [s for s in extra if (s.name, s.key_id) not in seen]
        return SignedNote(self.text, self.signatures + tuple(added))

    @classmethod
    def parse(cls, data: str | bytes, *, max_bytes: int = MAX_NOTE_BYTES) -> SignedNote:
        """Parse a signed note, strictly (DecodeError on any deviation from the format)."""
        if isinstance(data, bytes):
            if len(data) > max_bytes:
                raise DecodeError(f"note: {len(data)} bytes exceeds the limit of {max_bytes}")
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError("note: not valid UTF-8") from None
        if len(data.encode()) > max_bytes:
            raise DecodeError(f"note: exceeds the limit of {max_bytes} bytes")
        _check_characters(data)
        split = data.rfind("\n\n")
        if split < 0:
            raise DecodeError("note: no blank line separating the text from the signatures")
        text, block = data[: split + 1], data[split + 2 :]
        if not block:
            raise DecodeError("note: no signature lines")
        if not block.endswith("\n"):
            raise DecodeError("note: the last signature line does not end in a newline")
        lines = block[:-1].split("\n")
        if len(lines) > MAX_NOTE_SIGNATURES:
            raise DecodeError(f"note: {len(lines)} signatures exceeds the limit of {MAX_NOTE_SIGNATURES}")
        return cls(text, tuple(_parse_signature_line(line) for line in lines))


def _check_characters(data: str) -> None:
    for ch in data:
        if ch < " " and ch != "\n":
            raise DecodeError(f"note: control character {ord(ch):#04x} is not allowed")


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(SIGNATURE_PREFIX):
        raise DecodeError(f"note: signature line must start with an em dash and a space, got {line[:20]!r}")
    parts = line[len(SIGNATURE_PREFIX) :].split(" ")
    if len(parts) != 2 or not parts[0] or "+" in parts[0]:
        raise DecodeError(f"note: malformed signature line {line[:80]!r}")
    name, b64 = parts
    if any(ch.isspace() for ch in name):
        raise DecodeError(f"note: key name {name!r} contains a space")
    # Canonical: unused trailing bits would let the same signature be written several ways.
    blob = encoding.from_base64(b64, f"note: signature of {name}")
    if len(blob) <= KEY_ID_SIZE:
        raise DecodeError(f"note: signature of {name} is only {len(blob)} bytes")
    return NoteSignature(name, blob[:KEY_ID_SIZE], blob[KEY_ID_SIZE:])


def sign_note(text: str, key: SigningKey) -> NoteSignature:
    """An Ed25519 note signature over `text` (which must end in a newline)."""
    if not text.endswith("\n"):
        raise ValueError("note text must end with a newline")
    return NoteSignature(key.name, key.key_id, key.sign(b"", text.encode()))


def verify_note_signature(text: str, signature: NoteSignature, key: PublicKey) -> None:
    """Raise unless `signature` is `key`'s valid Ed25519 signature on `text`."""
    if signature.name != key.name or signature.key_id != key.key_id:
        raise VerificationError(
            f"signature is by {signature.name}+{signature.key_id.hex()}, expected {key.name}+{key.key_id.hex()}"
        )
    if len(signature.signature) != SIGNATURE_SIZE:
        raise BadSignature(f"signature of {key.name} is {len(signature.signature)} bytes, expected {SIGNATURE_SIZE}")
    key.verify(b"", text.encode(), signature.signature)


def open_note(note: SignedNote, keys: Iterable[PublicKey]) -> list[PublicKey]:
    """Verify a note against known keys, as C2SP prescribes; return the keys whose signatures verified.

    Signatures from unknown keys (name and key id not both matching) are ignored. A signature from a known key
    that fails to verify rejects the whole note. If no known key signed, the note is rejected.
    """
    known = {(k.name, k.key_id): k for k in keys}
    verified: dict[tuple[str, bytes], PublicKey] = {}
    for sig in note.signatures:
        key = known.get((sig.name, sig.key_id))
        if key is None or (sig.name, sig.key_id) in verified:
            continue
        verify_note_signature(note.text, sig, key)
        verified[(sig.name, sig.key_id)] = key
    if not verified:
        raise VerificationError("note carries no signature from a known key")
    return list(verified.values())


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The body of a credledger checkpoint note (DESIGN §6)."""

    origin: str
    size: int
    root: bytes
    height: int
    round: int
    header_hash: bytes

    def __post_init__(self) -> None:
        if not self.origin or "\n" in self.origin or not self.origin.isprintable():
            raise ValueError(f"checkpoint origin {self.origin!r} must be one non-empty printable line")
        if len(self.root) != HASH_SIZE or len(self.header_hash) != HASH_SIZE:
            raise ValueError("checkpoint root and header hash must be 32 bytes")
        if min(self.size, self.height, self.round) < 0:
            raise ValueError("checkpoint size, height and round must be non-negative")

    def body(self) -> str:
        root = base64.b64encode(self.root).decode()
        header = base64.b64encode(self.header_hash).decode()
        ext = f"{domains.CHECKPOINT_EXTENSION} {self.height} {self.round} {header}"
        return f"{self.origin}\n{self.size}\n{root}\n{ext}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """Parse checkpoint text strictly; DecodeError names the offending line."""
        if not text.endswith("\n"):
            raise DecodeError("checkpoint: text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) != 4:
            raise DecodeError(f"checkpoint: expected 4 lines (origin, size, root, credledger line), got {len(lines)}")
        origin, size_text, root_text, ext = lines
        size = parse_decimal(size_text, "size")
        root = parse_hash(root_text, "root hash")
        fields = ext.split(" ")
        if len(fields) != 4 or fields[0] != domains.CHECKPOINT_EXTENSION:
            raise DecodeError(f"checkpoint: expected 'credledger <height> <round> <header hash>', got {ext[:80]!r}")
        height = parse_decimal(fields[1], "height")
        round_ = parse_decimal(fields[2], "round")
        header_hash = parse_hash(fields[3], "header hash")
        try:
            return cls(origin, size, root, height, round_, header_hash)
        except ValueError as exc:
            raise DecodeError(f"checkpoint: {exc}") from None


def parse_decimal(text: str, what: str) -> int:
    """A checkpoint field in decimal: no sign, no leading zeros, below 2^63 (tlog-checkpoint §Note text)."""
    if not _DECIMAL.fullmatch(text):
        raise DecodeError(f"checkpoint: {what} must be a decimal without leading zeros, got {text[:30]!r}")
    value = int(text)
    if value >= 2**63:
        raise DecodeError(f"checkpoint: {what} {value} is out of range")
    return value


def parse_hash(text: str, what: str) -> bytes:
    """A 32-byte hash in canonical standard base64, as checkpoints write it."""
    raw = encoding.from_base64(text, f"checkpoint: {what}")
    if len(raw) != HASH_SIZE:
        raise DecodeError(f"checkpoint: {what} must be 32 bytes, got {len(raw)}")
    return raw
