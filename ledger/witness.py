"""C2SP tlog-witness v1.0.0 `add-checkpoint`, both sides, with no I/O.

Theory of operation
-------------------
A witness keeps, per log origin, the (size, root) of the latest checkpoint it cosigned. `add_checkpoint` takes the
raw request body and runs the spec's checks in order (c2sp.org/tlog-witness §add-checkpoint):

1. the body parses (old size line, at most 63 base64 proof lines, blank line, checkpoint note) ........ else 400
2. the origin is one of the configured logs ......................................................... else 404
3. the log's keys sign it: a known key that fails, or fewer valid signatures than the log's quorum ...... else 403
4. old size <= checkpoint size ...................................................................... else 400
5. old size == the size last cosigned (0 if none) .............................. else 409, body "<known size>\\n"
6. a checkpoint of the recorded size has the recorded root (size 0: the empty root) ...... else 409 (a fork)
7. old 0 has an empty proof; otherwise the consistency proof from the recorded root verifies ........ else 422
8. the new (size, root) is recorded with compare-and-set, with the note as cosigned, then answered ...... 200

The record is the caller's (`WitnessState`: get and compare-and-set), so this module holds no state and the test
suite drives it with a dict. Because the record moves only by compare-and-set from the exact value the checks saw,
two concurrent requests can never roll it back (the race the spec describes), a size is never cosigned with two
roots, and the recorded size never decreases. A checkpoint of the recorded size and root is cosigned again (with a
fresh timestamp) even if its extension lines differ: credledger's heartbeat blocks keep the log size and root.

The submitting side is `add_checkpoint_body` and `read_witness_answer`: a 409 answer becomes `Resubmit(size)`, so
the log can send a consistency proof from the witness's size.

The record also keeps the checkpoint as the witness cosigned it (the log's verified signature lines and the
witness's cosignatures), so the witness can show what it holds: a monitor compares it with what a log's nodes
serve. It takes no part in the checks (`LogRecord` equality is the size and root).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from credledger.ledger.cosignature import Cosignature, CosignerKey, cosign, verify_cosignature
from credledger.ledger.errors import CredledgerError, DecodeError, VerificationError
from credledger.ledger.keys import PublicKey, SigningKey
from credledger.ledger.merkle import EMPTY_ROOT, HASH_SIZE, b64, verify_consistency
from credledger.ledger.note import MAX_NOTE_BYTES, NoteSignature, SignedNote, verify_note_signature
from credledger.ledger.treehead import MAX_TREE_SIZE, TreeHead

#: tlog-witness §add-checkpoint: "The client MUST NOT send more than 63 consistency proof lines."
MAX_PROOF_LINES = 63
#: The old size line, 63 proof lines of 45 bytes, the blank line and a note of at most MAX_NOTE_BYTES.
MAX_REQUEST_BYTES = MAX_NOTE_BYTES + 64 * 45 + 32
#: A 409 answer body is one decimal line; anything longer is not a size.
MAX_SIZE_ANSWER_BYTES = 32
#: Largest refusal body read as an RFC 9457 problem for its detail.
MAX_PROBLEM_BYTES = 16 * 1024
#: How often `add_checkpoint` re-runs its checks when a concurrent request moved the record under it.
MAX_ATTEMPTS = 8
#: tlog-witness §add-checkpoint: the 409 answer's media type.
SIZE_CONTENT_TYPE = "text/x.tlog.size"
COSIGNATURE_CONTENT_TYPE = "text/plain; charset=utf-8"
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")


@dataclass(frozen=True, slots=True)
class WitnessedLog:
    """A log the witness follows: its origin, its note keys, and how many of them must sign a checkpoint."""

    origin: str
    keys: tuple[PublicKey, ...]
    quorum: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.quorum <= len(self.keys):
            raise ValueError(f"log {self.origin}: signature quorum must be in [1, {len(self.keys)}], got {self.quorum}")


@dataclass(frozen=True, slots=True)
class LogRecord:
    """The latest checkpoint a witness cosigned for one log, and its note as cosigned ("" if not kept)."""

    size: int
    root: bytes
    note: str = field(default="", compare=False)


class WitnessState(Protocol):
    """The witness's durable record per origin. `compare_and_set` must be atomic (tlog-witness §add-checkpoint)."""

    def get(self, origin: str) -> LogRecord | None: ...

    def compare_and_set(self, origin: str, expected: LogRecord | None, new: LogRecord) -> bool:
        """Store `new` if the record is still `expected` (None: no record); say whether it did."""
        ...


@dataclass(frozen=True, slots=True)
class AddCheckpointRequest:
    """An add-checkpoint request body: the size the client believes the witness holds, a proof, the checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    note: SignedNote

    def format(self) -> bytes:
        lines = [f"old {self.old_size}\n", *(base64.b64encode(h).decode() + "\n" for h in self.proof), "\n"]
        return ("".join(lines) + self.note.format()).encode()

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpointRequest:
        """Parse a request body strictly; `DecodeError` says what is wrong."""
        if len(body) > MAX_REQUEST_BYTES:
            raise DecodeError(f"add-checkpoint: {len(body)} bytes exceeds the limit of {MAX_REQUEST_BYTES}")
        header, blank, rest = body.partition(b"\n\n")
        if not blank:
            raise DecodeError("add-checkpoint: no blank line before the checkpoint")
        try:
            lines = header.decode("ascii").split("\n")
        except UnicodeDecodeError:
            raise DecodeError("add-checkpoint: the old size and proof lines must be ASCII") from None
        size_line, proof_lines = lines[0], lines[1:]
        if not size_line.startswith("old ") or not _DECIMAL.fullmatch(size_line[4:]):
            raise DecodeError(f"add-checkpoint: expected 'old <size>' without leading zeros, got {size_line[:40]!r}")
        old_size = int(size_line[4:])
        if old_size > MAX_TREE_SIZE:
            raise DecodeError(f"add-checkpoint: old size {old_size} exceeds 2^63 - 1")
        if len(proof_lines) > MAX_PROOF_LINES:
            raise DecodeError(f"add-checkpoint: {len(proof_lines)} proof lines exceeds the limit of {MAX_PROOF_LINES}")
        proof = tuple(_parse_proof_line(number, line) for number, line in enumerate(proof_lines, 1))
        return cls(old_size, proof, SignedNote.parse(rest))


def _parse_proof_line(number: int, line: str) -> bytes:
    try:
        value = base64.b64decode(line, validate=True)
    except binascii.Error:
        raise DecodeError(f"add-checkpoint: proof line {number} is not base64") from None
    if len(value) != HASH_SIZE or base64.b64encode(value).decode() != line:
        raise DecodeError(f"add-checkpoint: proof line {number} must be a {HASH_SIZE}-byte hash in canonical base64")
    return value


@dataclass(frozen=True, slots=True)
class Cosigned:
    """A 200 answer: the witness's cosignature lines."""

    cosignatures: tuple[Cosignature, ...]

    def body(self) -> bytes:
        return "".join(c.line() for c in self.cosignatures).encode()


@dataclass(frozen=True, slots=True)
class Refused:
    """A refusal with the spec's HTTP status; `known_size` is set for the 409 of an old size the witness does not
    hold, and is then the whole answer body (the 409 of a fork at the size it holds carries `detail` instead)."""

    status: int
    detail: str
    known_size: int | None = None

    def body(self) -> bytes:
        """The size answer the spec mandates (the known size and a newline); other refusals carry `detail`."""
        if self.known_size is not None:
            return f"{self.known_size}\n".encode()
        return self.detail.encode()


def add_checkpoint(
    body: bytes,
    logs: Mapping[str, WitnessedLog],
    state: WitnessState,
    signers: Sequence[SigningKey],
    now: int,
) -> Cosigned | Refused:
    """Decide an add-checkpoint request: cosign it with every signer at POSIX time `now`, or refuse it."""
    if not signers:
        raise ValueError("a witness needs at least one signing key")
    if now <= 0:
        raise ValueError(f"cosignature time must be positive (the spec forbids a zero timestamp), got {now}")
    try:
        request, head, signed = _admit(body, logs)
        for _ in range(MAX_ATTEMPTS):
            record = state.get(head.origin)
            _check_against_record(request, head, record)
            cosigned = Cosigned(tuple(cosign(request.note.text, signer, now) for signer in signers))
            held = SignedNote(request.note.text, (*signed, *(c.note_signature() for c in cosigned.cosignatures)))
            if state.compare_and_set(head.origin, record, LogRecord(head.size, head.root, held.format())):
                return cosigned
        known = state.get(head.origin) or LogRecord(0, EMPTY_ROOT)
        raise _Refusal(Refused(409, f"the record of {head.origin} kept changing; now size {known.size}", known.size))
    except _Refusal as refusal:
        return refusal.answer


class _Refusal(Exception):
    """Carries a refusal out of the checks to `add_checkpoint` (never leaves this module)."""

    def __init__(self, answer: Refused) -> None:
        super().__init__(answer.detail)
        self.answer = answer


def _admit(
    body: bytes, logs: Mapping[str, WitnessedLog]
) -> tuple[AddCheckpointRequest, TreeHead, tuple[NoteSignature, ...]]:
    """Steps 1-4: a well-formed request for a known log, signed by it, with old size <= size; and the log's
    signature lines that verified."""
    try:
        request = AddCheckpointRequest.parse(body)
        head = TreeHead.parse(request.note.text)
    except DecodeError as exc:
        raise _Refusal(Refused(400, str(exc))) from None
    log = logs.get(head.origin)
    if log is None:
        raise _Refusal(Refused(404, f"unknown log origin {head.origin!r}"))
    try:
        signed = _check_log_signatures(request.note, log)
    except VerificationError as exc:
        raise _Refusal(Refused(403, str(exc))) from None
    if request.old_size > head.size:
        raise _Refusal(Refused(400, f"old size {request.old_size} is larger than the checkpoint size {head.size}"))
    return request, head, signed


def _check_against_record(request: AddCheckpointRequest, head: TreeHead, record: LogRecord | None) -> None:
    """Steps 5-7: the old size is the recorded one and the checkpoint is consistent with the recorded root."""
    known = LogRecord(0, EMPTY_ROOT) if record is None else record
    if request.old_size != known.size:
        raise _Refusal(Refused(409, f"the witness last cosigned size {known.size}, not {request.old_size}", known.size))
    if head.size == known.size and head.root != known.root:
        # tlog-witness: "If the old size matches the checkpoint size, the witness MUST check that the root hashes
        # are also identical. If they don't match, the witness MUST respond with a 409 Conflict".
        raise _Refusal(
            Refused(
                409,
                f"a fork of what the witness holds: it cosigned size {known.size} with root {b64(known.root)}, this "
                f"checkpoint gives that size root {b64(head.root)}",
            )
        )
    try:
        _check_consistency(request, head, known)
    except VerificationError as exc:
        raise _Refusal(Refused(422, str(exc))) from None


def _check_log_signatures(note: SignedNote, log: WitnessedLog) -> tuple[NoteSignature, ...]:
    """The note's valid signature lines of the log's keys (one per key), if they reach the log's quorum."""
    known = {(k.name, k.key_id): k for k in log.keys}
    signed: dict[tuple[str, bytes], NoteSignature] = {}
    for sig in note.signatures:
        key = known.get((sig.name, sig.key_id))
        if key is None:
            continue  # signed-note: ignore unknown keys (cosignatures included)
        verify_note_signature(note.text, sig, key)
        signed.setdefault((sig.name, sig.key_id), sig)
    if len(signed) < log.quorum:
        raise VerificationError(
            f"checkpoint of {log.origin} carries {len(signed)} valid signatures from its keys, needs {log.quorum}"
        )
    return tuple(signed.values())


def _check_consistency(request: AddCheckpointRequest, head: TreeHead, known: LogRecord) -> None:
    if request.old_size == 0:
        if request.proof:
            raise VerificationError(f"old size 0 needs an empty proof, got {len(request.proof)} lines")
        return
    verify_consistency(request.old_size, head.size, request.proof, known.root, head.root)


# --- The submitting side ---------------------------------------------------------------------------------------


class WitnessRefused(CredledgerError):
    """A witness refused a checkpoint (or answered something that is not a valid answer)."""

    code = "witness-refused"

    def __init__(self, witness: str, status: int, detail: str) -> None:
        super().__init__(f"witness {witness} answered {status}: {detail}")
        self.witness = witness
        self.status = status


@dataclass(frozen=True, slots=True)
class Resubmit:
    """A 409 answer: the witness holds `old_size`; send a consistency proof from there."""

    old_size: int


def add_checkpoint_body(old_size: int, proof: Sequence[bytes], note: SignedNote) -> bytes:
    """The add-checkpoint request body for a witness that last cosigned `old_size` (0 and no proof if unknown)."""
    if len(proof) > MAX_PROOF_LINES or (old_size == 0 and proof):
        raise ValueError(f"a proof from size {old_size} of {len(proof)} hashes cannot be sent")
    return AddCheckpointRequest(old_size, tuple(proof), note).format()


def read_witness_answer(
    status: int, body: bytes, note: SignedNote, witness: CosignerKey, *, content_type: str | None = None
) -> Cosignature | Resubmit:
    """Interpret a witness's answer to add-checkpoint for `note`.

    200 → the witness's verified cosignature (other keys' lines ignored); 409 → `Resubmit` with its size (a size
    past the checkpoint's is refused: the log cannot prove consistency backwards); anything else →
    `WitnessRefused`.
    """
    head = TreeHead.parse(note.text)
    if status == 200:
        return _read_cosignature(body, note, witness)
    if status == 409:
        if content_type is not None and content_type.split(";")[0].strip() != SIZE_CONTENT_TYPE:
            # A 409 with no size: a fork of what the witness holds (tlog-witness defines no body for it).
            detail = _problem_detail(body) or f"expected {SIZE_CONTENT_TYPE}, got {content_type[:60]!r}"
            raise WitnessRefused(witness.name, status, detail)
        text = body[:MAX_SIZE_ANSWER_BYTES].decode("ascii", errors="replace")
        if len(body) > MAX_SIZE_ANSWER_BYTES or not text.endswith("\n") or not _DECIMAL.fullmatch(text[:-1]):
            raise WitnessRefused(witness.name, status, f"expected '<size>\\n', got {text[:40]!r}")
        size = int(text[:-1])
        if size > head.size:
            raise WitnessRefused(witness.name, status, f"it holds size {size}, past this checkpoint's {head.size}")
        return Resubmit(size)
    detail = _problem_detail(body) or body[:200].decode("utf-8", errors="replace")
    raise WitnessRefused(witness.name, status, detail or "no detail")


def _problem_detail(body: bytes) -> str | None:
    """The `detail` of an RFC 9457 problem answer (at most 200 characters), None if the body is not one."""
    try:
        problem = json.loads(body[:MAX_PROBLEM_BYTES]) if len(body) <= MAX_PROBLEM_BYTES else None
    except (ValueError, RecursionError):
        return None
    detail = problem.get("detail") if isinstance(problem, dict) else None
    return detail[:200] if isinstance(detail, str) and detail else None


def _read_cosignature(body: bytes, note: SignedNote, witness: CosignerKey) -> Cosignature:
    try:
        lines = SignedNote.parse(note.text.encode() + b"\n" + body).signatures
    except DecodeError as exc:
        raise WitnessRefused(witness.name, 200, f"the answer is not note signature lines ({exc})") from None
    found: Cosignature | None = None
    for sig in lines:
        if (sig.name, sig.key_id) == (witness.name, witness.key_id):
            try:
                found = verify_cosignature(note.text, sig, witness)
            except VerificationError as exc:
                raise WitnessRefused(witness.name, 200, str(exc)) from None
    if found is None:
        raise WitnessRefused(witness.name, 200, f"no cosignature from {witness.name}+{witness.key_id.hex()}")
    if found.timestamp == 0:
        raise WitnessRefused(witness.name, 200, "the cosignature has a zero timestamp")
    return found
