"""Signed consensus messages and equivocation evidence: formats and pure verification (DESIGN §6, §7).

Theory of operation
-------------------
Three kinds of signed statement make up Tendermint consensus, each by a validator's node key:

- a **proposal** (``credledger/proposal/v1``) names one block for a (height, round), with the round of the
  prevote quorum that justifies re-proposing it (`pol_round`, -1 for a fresh block). What is signed is the
  block's header hash, not the block, so evidence can carry the compact `SignedProposal`;
- a **prevote** (``credledger/prevote/v1``) names a block's header hash, or nil;
- a **precommit** for a block is the validator's C2SP signed-note signature on the block's checkpoint body
  (DESIGN §6), so the precommits of a decision are the commit certificate's signature lines as they are. To
  rebuild that body a precommit carries the checkpoint's log size, log root and header hash (`BlockRef`). A nil
  precommit is signed over a binary payload (``credledger/precommit-nil/v1``), which can never parse as a note.

Every binary payload is the domain prefix followed by the canonical encoding of the statement without its
signature, and starts with the chain origin, so a vote cannot be replayed on another network.

An honest validator signs at most one statement per (height, round, step). Two different statements from one
validator for the same (height, round, step) are **evidence** of equivocation that anyone holding the validator
set can check with `verify_evidence`, without trusting whoever reported it. Verification raises
`VerificationError` (or `BadSignature`) naming the failed check; it never returns a bool.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, replace
from typing import Annotated, ClassVar

from credledger.ledger import codec, domains
from credledger.ledger.block import Block, Header, Origin
from credledger.ledger.codec import Bytes32, Bytes64, Range
from credledger.ledger.errors import DecodeError, VerificationError
from credledger.ledger.keys import SigningKey
from credledger.ledger.limits import MAX_RECORD_BYTES
from credledger.ledger.note import Checkpoint, NoteSignature, sign_note, verify_note_signature
from credledger.ledger.validators import MemberId, Validator, ValidatorSet

#: Heights start at 1 (block 1 links to the genesis hash).
Height = Annotated[int, Range(1, 2**63 - 1)]
Round = Annotated[int, Range(0, 2**31 - 1)]
#: The round of a proposal's proof of lock, or -1 for none.
PolRound = Annotated[int, Range(-1, 2**31 - 1)]

_NO_SIGNATURE = bytes(64)


class Step(enum.IntEnum):
    """The step of a round a signed statement belongs to; the double-sign guard orders slots by it."""

    PROPOSE = 0
    PREVOTE = 1
    PRECOMMIT = 2


@dataclass(frozen=True, slots=True)
class BlockRef:
    """What a precommit for a block names: enough to rebuild the checkpoint body it signs."""

    header_hash: Bytes32
    log_size: int
    log_root: Bytes32

    @classmethod
    def of(cls, header: Header) -> BlockRef:
        return cls(header.hash(), header.log_size, header.log_root)

    def checkpoint(self, origin: str, height: int, round_: int) -> Checkpoint:
        return Checkpoint(origin, self.log_size, self.log_root, height, round_, self.header_hash)


@dataclass(frozen=True, slots=True)
class SignedProposal:
    """What a proposer signs: the proposal with the block replaced by its header hash."""

    TAG: ClassVar[str] = "proposal"

    height: Height
    round: Round
    pol_round: PolRound
    block_hash: Bytes32
    proposer: MemberId
    signature: Bytes64

    @property
    def signer(self) -> str:
        return self.proposer

    @property
    def step(self) -> Step:
        return Step.PROPOSE


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposer's block for (height, round); `pol_round` >= 0 re-proposes a block prevoted by a quorum then."""

    TAG: ClassVar[str] = "proposal"

    height: Height
    round: Round
    block: Block
    pol_round: PolRound
    proposer: MemberId
    signature: Bytes64

    def __post_init__(self) -> None:
        if self.pol_round >= self.round:
            raise ValueError(f"proposal pol_round {self.pol_round} must be below its round {self.round}")
        if self.block.header.height != self.height:
            raise ValueError(f"proposal for height {self.height} carries a block of height {self.block.header.height}")

    @property
    def block_hash(self) -> bytes:
        return self.block.hash()

    @property
    def signer(self) -> str:
        return self.proposer

    @property
    def step(self) -> Step:
        return Step.PROPOSE

    def signed(self) -> SignedProposal:
        """The compact statement the signature covers."""
        return SignedProposal(self.height, self.round, self.pol_round, self.block_hash, self.proposer, self.signature)


@dataclass(frozen=True, slots=True)
class Prevote:
    """A validator's prevote for a block (its header hash) or for nil."""

    TAG: ClassVar[str] = "prevote"

    height: Height
    round: Round
    block_hash: Bytes32 | None
    validator: MemberId
    signature: Bytes64

    @property
    def signer(self) -> str:
        return self.validator

    @property
    def step(self) -> Step:
        return Step.PREVOTE


@dataclass(frozen=True, slots=True)
class Precommit:
    """A validator's precommit for a block (a note signature on its checkpoint) or for nil."""

    TAG: ClassVar[str] = "precommit"

    height: Height
    round: Round
    block: BlockRef | None
    validator: MemberId
    signature: Bytes64

    @property
    def block_hash(self) -> bytes | None:
        return None if self.block is None else self.block.header_hash

    @property
    def signer(self) -> str:
        return self.validator

    @property
    def step(self) -> Step:
        return Step.PRECOMMIT

    def note_signature(self, validator: Validator) -> NoteSignature:
        """This precommit as a signature line of the commit certificate."""
        return NoteSignature(validator.member_id, validator.public_key.key_id, self.signature)


#: What travels between validators.
Message = Proposal | Prevote | Precommit
#: A signed statement as evidence holds it (a proposal without its block).
Vote = SignedProposal | Prevote | Precommit


@dataclass(frozen=True, slots=True)
class _ProposalBody:
    origin: Origin
    height: Height
    round: Round
    pol_round: PolRound
    block_hash: Bytes32
    proposer: MemberId


@dataclass(frozen=True, slots=True)
class _PrevoteBody:
    origin: Origin
    height: Height
    round: Round
    block_hash: Bytes32 | None
    validator: MemberId


@dataclass(frozen=True, slots=True)
class _NilPrecommitBody:
    origin: Origin
    height: Height
    round: Round
    validator: MemberId


def signing_payload(vote: Vote | Proposal, origin: str) -> tuple[bytes, bytes]:
    """The (domain, message) pair a statement's signature covers; for a block precommit, the checkpoint body."""
    if isinstance(vote, Proposal):
        vote = vote.signed()
    if isinstance(vote, SignedProposal):
        body = _ProposalBody(origin, vote.height, vote.round, vote.pol_round, vote.block_hash, vote.proposer)
        return domains.PROPOSAL, codec.encode(body)
    if isinstance(vote, Prevote):
        return domains.PREVOTE, codec.encode(
            _PrevoteBody(origin, vote.height, vote.round, vote.block_hash, vote.validator)
        )
    if vote.block is None:
        return domains.PRECOMMIT_NIL, codec.encode(_NilPrecommitBody(origin, vote.height, vote.round, vote.validator))
    return b"", vote.block.checkpoint(origin, vote.height, vote.round).body().encode()


def same_statement(a: Vote | Proposal, b: Vote | Proposal, origin: str) -> bool:
    """Whether two statements sign exactly the same payload (signatures aside)."""
    return signing_payload(a, origin) == signing_payload(b, origin)


def sign_proposal(key: SigningKey, origin: str, height: int, round_: int, block: Block, *, pol_round: int) -> Proposal:
    unsigned = Proposal(height, round_, block, pol_round, key.name, _NO_SIGNATURE)
    return replace(unsigned, signature=key.sign(*signing_payload(unsigned, origin)))


def sign_prevote(key: SigningKey, origin: str, height: int, round_: int, block_hash: bytes | None) -> Prevote:
    unsigned = Prevote(height, round_, block_hash, key.name, _NO_SIGNATURE)
    return replace(unsigned, signature=key.sign(*signing_payload(unsigned, origin)))


def sign_precommit(key: SigningKey, origin: str, height: int, round_: int, header: Header | None) -> Precommit:
    """A precommit for `header`'s block (a note signature on its checkpoint), or a nil precommit."""
    if header is None:
        unsigned = Precommit(height, round_, None, key.name, _NO_SIGNATURE)
        return replace(unsigned, signature=key.sign(*signing_payload(unsigned, origin)))
    ref = BlockRef.of(header)
    signature = sign_note(ref.checkpoint(origin, height, round_).body(), key)
    return Precommit(height, round_, ref, key.name, signature.signature)


def verify_vote(vote: Vote | Proposal, validators: ValidatorSet, origin: str) -> Validator:
    """Check that `vote` is signed by a validator of `validators`; return that validator.

    `validators` must be the set of the vote's height. Raises `VerificationError` naming what failed.
    """
    validator = validators.get(vote.signer)
    if validator is None:
        raise VerificationError(f"{type(vote).__name__.lower()} signer {vote.signer!r} is not a validator")
    domain, message = signing_payload(vote, origin)
    if isinstance(vote, Precommit) and vote.block is not None:
        verify_note_signature(message.decode(), vote.note_signature(validator), validator.public_key)
    else:
        validator.public_key.verify(domain, message, vote.signature)
    return validator


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two different signed statements by one validator for the same (height, round, step)."""

    TAG: ClassVar[str] = "evidence"

    first: Vote
    second: Vote

    @property
    def offender(self) -> str:
        return self.first.signer

    @property
    def height(self) -> int:
        return self.first.height

    @property
    def round(self) -> int:
        return self.first.round

    @property
    def step(self) -> Step:
        return self.first.step

    def id(self) -> bytes:
        """SHA-256 over the evidence domain and the canonical encoding: one id per pair, whatever its order."""
        return hashlib.sha256(domains.EVIDENCE + codec.encode(self)).digest()


def make_evidence(a: Vote | Proposal, b: Vote | Proposal) -> Evidence:
    """Evidence from two conflicting statements, in canonical order (smaller encoding first)."""
    first = a.signed() if isinstance(a, Proposal) else a
    second = b.signed() if isinstance(b, Proposal) else b
    if codec.encode(_Pair(second)) < codec.encode(_Pair(first)):
        first, second = second, first
    return Evidence(first, second)


@dataclass(frozen=True, slots=True)
class _Pair:
    vote: Vote


def verify_evidence(evidence: Evidence, validators: ValidatorSet, origin: str) -> Validator:
    """Check that `evidence` proves equivocation by a validator of `validators` (the set of its height).

    Returns the offending validator. Raises `VerificationError` naming the check that failed.
    """
    a, b = evidence.first, evidence.second
    if type(a) is not type(b):
        raise VerificationError(f"evidence pairs a {type(a).__name__} with a {type(b).__name__}")
    if (a.height, a.round, a.signer) != (b.height, b.round, b.signer):
        raise VerificationError(
            f"evidence statements are by {a.signer} at {a.height}/{a.round} and {b.signer} at {b.height}/{b.round}"
        )
    if not codec.encode(_Pair(a)) < codec.encode(_Pair(b)):
        raise VerificationError("evidence statements are equal or not in canonical order")
    if same_statement(a, b, origin):
        raise VerificationError("evidence statements sign the same payload: no equivocation")
    validator = verify_vote(a, validators, origin)
    verify_vote(b, validators, origin)
    return validator


@dataclass(frozen=True, slots=True)
class Envelope:
    """The wire form of a consensus message: the message tagged with its kind."""

    message: Message


def encode_message(message: Message) -> bytes:
    return codec.encode(Envelope(message))


def decode_message(data: bytes, *, max_bytes: int = MAX_RECORD_BYTES) -> Message:
    """Parse a consensus message strictly; `DecodeError` names the field that is wrong."""
    return codec.decode(Envelope, data, max_bytes=max_bytes).message


def decode_evidence(data: bytes) -> Evidence:
    evidence = codec.decode(Evidence, data, max_bytes=64 * 1024)
    if type(evidence.first) is not type(evidence.second):
        raise DecodeError("evidence: both statements must be of one kind")
    return evidence
