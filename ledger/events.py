"""Events: the signed leaves of the log (DESIGN §3).

An event is an origin (the chain it is meant for), its signer's clock time, a payload of one of the kinds below,
and one or more signatures. Everything except the signatures is the *unsigned event*; its canonical encoding is
what every signature covers (after the `domains.EVENT` prefix) and what the event id hashes. So adding or
re-making signatures never changes the id, and a committed id can never be committed again.

Payload kinds carry only what the rules need: credentials are named by a 32-byte digest, never by personal data.
Shape checks that need no ledger state (member-id syntax, duplicate components, a credential stacking itself)
live here in `__post_init__`, so a malformed payload cannot even be decoded. Everything that depends on the
ledger's state lives in `ledger.rules`.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Annotated, ClassVar

import msgpack

from credledger.ledger import codec, domains, merkle
from credledger.ledger.achievement import MAX_DEFINITION_BYTES, parse_definition
from credledger.ledger.codec import Bytes32, Bytes64, KeyId, Range, Size
from credledger.ledger.errors import DecodeError
from credledger.ledger.keys import SigningKey
from credledger.ledger.limits import (
    MAX_ANY_EVENT_BYTES,
    MAX_COMPONENTS,
    MAX_ISSUER_KEYS,
    MAX_NAME,
    MAX_ORIGIN,
    MAX_SIGNATURES,
    MAX_STATUS_EVENT_BYTES,
    MAX_STATUS_LISTS,
    STATUS_LIST_ENTRIES,
)
from credledger.ledger.recognition import MAX_RECOGNITION_BYTES, parse_recognition
from credledger.ledger.validators import MemberId, Power, check_member_id
from credledger.ledger.vc.did import MAX_DID, check_did, default_did
from credledger.ledger.votes import Evidence

Origin = Annotated[str, Size(1, MAX_ORIGIN)]
Name = Annotated[str, Size(1, MAX_NAME)]
ReasonCode = Annotated[int, Range(0, 255)]
StatusListNumber = Annotated[int, Range(0, MAX_STATUS_LISTS - 1)]
StatusListIndex = Annotated[int, Range(0, STATUS_LIST_ENTRIES - 1)]
#: A member's DID: ``did:web`` or ``did:key`` (DESIGN §13).
Did = Annotated[str, Size(1, MAX_DID)]
AchievementId = Annotated[str, Size(1, MAX_NAME)]


class Reason(enum.IntEnum):
    """Well-known reason codes for `revoke` and `suspend` (after RFC 5280 CRLReason). Others in 0..255 are allowed."""

    UNSPECIFIED = 0
    KEY_COMPROMISE = 1
    AFFILIATION_CHANGED = 3
    SUPERSEDED = 4
    CESSATION = 5
    ON_HOLD = 6
    ISSUED_IN_ERROR = 16
    FRAUD = 17


def reason_label(code: int) -> str:
    """A reason code as people write it: "key-compromise", "superseded", ...; a code without a name as its number."""
    try:
        return Reason(code).name.lower().replace("_", "-")
    except ValueError:
        return str(code)


def check_member_did(did: str | None, member_id: str) -> None:
    """Raise ValueError unless `did` is a DID credledger accepts, or None where `member_id` has a default DID."""
    if did is None:
        default_did(member_id)
        return
    try:
        check_did(did)
    except DecodeError as exc:
        raise ValueError(f"did: {exc}") from None


def check_name(name: str) -> None:
    """Raise ValueError unless `name` is a usable display name: printable, not blank."""
    if not name.strip() or not name.isprintable():
        raise ValueError(f"name {name!r} must be printable and not blank")


# --- credential payloads ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issue:
    """Create a credential. `components` are digests of credentials this one stacks. A signed standard credential
    names its place in the issuer's status lists: entry `status_index` of list `status_list` (DESIGN §13)."""

    TAG: ClassVar[str] = "issue"
    digest: Bytes32
    issuer: MemberId
    expires_ms: int | None
    components: Annotated[tuple[Bytes32, ...], Size(0, MAX_COMPONENTS)]
    status_list: StatusListNumber | None = None
    status_index: StatusListIndex | None = None
    #: The issuer's achievement (id and version) this credential awards, if it names one (DESIGN §14).
    achievement: AchievementId | None = None
    achievement_version: int | None = None

    def __post_init__(self) -> None:
        check_member_id(self.issuer)
        if (self.status_list is None) != (self.status_index is None):
            raise ValueError("status_list and status_index are given together")
        if self.status_index is not None and not 0 <= self.status_index < STATUS_LIST_ENTRIES:
            raise ValueError(f"status_index {self.status_index} is outside a list of {STATUS_LIST_ENTRIES} entries")
        if self.status_list is not None and not 0 <= self.status_list < MAX_STATUS_LISTS:
            raise ValueError(f"status_list {self.status_list} is outside [0, {MAX_STATUS_LISTS})")
        if (self.achievement is None) != (self.achievement_version is None):
            raise ValueError("achievement and achievement_version go together")
        if len(set(self.components)) != len(self.components):
            raise ValueError("components must not repeat a digest")
        if self.digest in self.components:
            raise ValueError("a credential cannot be one of its own components")


@dataclass(frozen=True, slots=True)
class Revoke:
    """End a credential for good."""

    TAG: ClassVar[str] = "revoke"
    digest: Bytes32
    reason: ReasonCode


@dataclass(frozen=True, slots=True)
class Suspend:
    """Put an active credential on hold."""

    TAG: ClassVar[str] = "suspend"
    digest: Bytes32
    reason: ReasonCode


@dataclass(frozen=True, slots=True)
class Reinstate:
    """Lift a suspension."""

    TAG: ClassVar[str] = "reinstate"
    digest: Bytes32


# --- catalogue payloads (DESIGN §14) -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AchievementPublish:
    """Publish a version of one of `member`'s achievement definitions (RFC 8785 JSON, see `ledger.achievement`)."""

    TAG: ClassVar[str] = "achievement.publish"
    member: MemberId
    definition: Annotated[bytes, Size(1, MAX_DEFINITION_BYTES)]

    def __post_init__(self) -> None:
        check_member_id(self.member)
        parse_definition(self.definition, self.member)


@dataclass(frozen=True, slots=True)
class AchievementRetire:
    """Stop issuing against one of `member`'s achievements; what was awarded stays valid."""

    TAG: ClassVar[str] = "achievement.retire"
    member: MemberId
    achievement: AchievementId

    def __post_init__(self) -> None:
        check_member_id(self.member)


@dataclass(frozen=True, slots=True)
class RecognitionPublish:
    """`member` recognises another member's achievements in its own rules (RFC 8785 JSON, see `ledger.recognition`)."""

    TAG: ClassVar[str] = "recognition.publish"
    member: MemberId
    definition: Annotated[bytes, Size(1, MAX_RECOGNITION_BYTES)]

    def __post_init__(self) -> None:
        check_member_id(self.member)
        parse_recognition(self.definition, self.member)


@dataclass(frozen=True, slots=True)
class RecognitionWithdraw:
    """Withdraw one of `member`'s recognitions: later awards no longer count it; earlier ones stay valid."""

    TAG: ClassVar[str] = "recognition.withdraw"
    member: MemberId
    recognition: AchievementId

    def __post_init__(self) -> None:
        check_member_id(self.member)


# --- membership payloads (governance only) ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberAdd:
    """Admit a member (or re-admit a removed one) with its node key and first issuer keys. `did` is its issuer DID;
    None means ``did:web:<member id>``."""

    TAG: ClassVar[str] = "member.add"
    member: MemberId
    name: Name
    power: Power
    node_key: Bytes32
    issuer_keys: Annotated[tuple[Bytes32, ...], Size(1, MAX_ISSUER_KEYS)]
    did: Did | None = None

    def __post_init__(self) -> None:
        check_member_id(self.member)
        check_name(self.name)
        check_member_did(self.did, self.member)
        if not self.issuer_keys:
            raise ValueError("a member needs at least one issuer key")
        if len(set(self.issuer_keys)) != len(self.issuer_keys):
            raise ValueError("issuer keys must not repeat")
        if self.node_key in self.issuer_keys:
            raise ValueError("the node key must not also be an issuer key")


@dataclass(frozen=True, slots=True)
class MemberUpdate:
    """Replace a member's display name, voting power and node key, and its DID unless `did` is None."""

    TAG: ClassVar[str] = "member.update"
    member: MemberId
    name: Name
    power: Power
    node_key: Bytes32
    did: Did | None = None

    def __post_init__(self) -> None:
        check_member_id(self.member)
        check_name(self.name)
        if self.did is not None:
            check_member_did(self.did, self.member)


@dataclass(frozen=True, slots=True)
class MemberRemove:
    """Deactivate a member: it stops voting and issuing, and its issuer keys are retired."""

    TAG: ClassVar[str] = "member.remove"
    member: MemberId

    def __post_init__(self) -> None:
        check_member_id(self.member)


# --- issuer-key payloads ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyAdd:
    """Register a new issuer key for `member`; its key id is `keys.key_id(member, public_key)`."""

    TAG: ClassVar[str] = "key.add"
    member: MemberId
    public_key: Bytes32

    def __post_init__(self) -> None:
        check_member_id(self.member)


@dataclass(frozen=True, slots=True)
class KeyRetire:
    """Retire an issuer key; with `compromised_since` (governance only) also void what it signed from that height."""

    TAG: ClassVar[str] = "key.retire"
    member: MemberId
    key_id: KeyId
    compromised_since: int | None

    def __post_init__(self) -> None:
        check_member_id(self.member)


# --- status lists -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusPublish:
    """Put on record `member`'s signed ``BitstringStatusListCredential`` (JSON text, served byte for byte by every
    node) for its status list `list_number` and `purpose` (DESIGN §13)."""

    TAG: ClassVar[str] = "status.publish"
    member: MemberId
    list_number: StatusListNumber
    purpose: Annotated[str, Size(1, 16)]
    credential: Annotated[str, Size(2, MAX_STATUS_EVENT_BYTES)]

    def __post_init__(self) -> None:
        check_member_id(self.member)


# --- consensus evidence -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    """Put on record that a validator signed two conflicting consensus statements (DESIGN §7).

    The evidence authenticates itself (both statements carry the offender's signature); the event is signed by
    the node key of the member that reports it.
    """

    TAG: ClassVar[str] = "evidence"
    evidence: Evidence


Payload = (
    Issue
    | Revoke
    | Suspend
    | Reinstate
    | MemberAdd
    | MemberUpdate
    | MemberRemove
    | KeyAdd
    | KeyRetire
    | ReportEvidence
    | StatusPublish
    | AchievementPublish
    | AchievementRetire
    | RecognitionPublish
    | RecognitionWithdraw
)
MemberPayload = MemberAdd | MemberUpdate | MemberRemove


# --- envelopes ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Signature:
    """An Ed25519 signature by `member`'s key `key_id` (an issuer key, or its node key for governance)."""

    member: MemberId
    key_id: KeyId
    sig: Bytes64


@dataclass(frozen=True, slots=True)
class UnsignedEvent:
    """What every signature on an event covers."""

    origin: Origin
    time_ms: int
    payload: Payload

    def signed_bytes(self) -> bytes:
        """The canonical encoding that is signed (after `domains.EVENT`) and hashed into the id."""
        return codec.encode(self)

    @property
    def id(self) -> bytes:
        return event_id(self.signed_bytes())


@dataclass(frozen=True, slots=True)
class Event:
    """A signed event, as it is stored in the log."""

    origin: Origin
    time_ms: int
    payload: Payload
    signatures: Annotated[tuple[Signature, ...], Size(1, MAX_SIGNATURES)]
    # Derived on first use and kept: every node needs them for every event (signature checks, replay checks, the
    # log, the API). `decode_event` fills the encodings from the bytes it parsed, so a decoded event is never
    # encoded again.
    _signed: bytes = field(init=False, repr=False, compare=False)
    _id: bytes = field(init=False, repr=False, compare=False)
    _encoded: bytes = field(init=False, repr=False, compare=False)
    _leaf: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.signatures:
            raise ValueError("an event needs at least one signature")
        object.__setattr__(self, "_signed", b"")
        object.__setattr__(self, "_id", b"")
        object.__setattr__(self, "_encoded", b"")
        object.__setattr__(self, "_leaf", b"")

    @property
    def unsigned(self) -> UnsignedEvent:
        return UnsignedEvent(self.origin, self.time_ms, self.payload)

    @property
    def id(self) -> bytes:
        """SHA-256(domains.EVENT || signed bytes): the same however the event is signed."""
        if not self._id:
            object.__setattr__(self, "_id", event_id(self.signed_bytes()))
        return self._id

    def signed_bytes(self) -> bytes:
        if not self._signed:
            object.__setattr__(self, "_signed", self.unsigned.signed_bytes())
        return self._signed

    def encode(self) -> bytes:
        """The canonical encoding of the whole event, signatures included (the log entry)."""
        if not self._encoded:
            object.__setattr__(self, "_encoded", codec.encode(self))
        return self._encoded

    def leaf_hash(self) -> bytes:
        """The RFC 6962 leaf hash of `encode()`: names this exact signed encoding in the log and in the set of
        events whose signatures a node has checked."""
        if not self._leaf:
            object.__setattr__(self, "_leaf", merkle.leaf_hash(self.encode()))
        return self._leaf


def event_id(signed_bytes: bytes) -> bytes:
    """The id of the event whose unsigned encoding is `signed_bytes`."""
    return hashlib.sha256(domains.EVENT + signed_bytes).digest()


def decode_event(data: bytes, *, max_bytes: int = MAX_ANY_EVENT_BYTES) -> Event:
    """Parse one canonical event encoding, refusing more than `max_bytes` (the rules hold each kind to its limit)."""
    data = bytes(data)
    event, fields = codec.decode_fields(Event, data, max_bytes=max_bytes)
    # The decoder checked that `data` is exactly the canonical encoding, so it can stand in for re-encoding, and the
    # unsigned event's encoding is its first three fields, as unpacked, packed again as an array.
    object.__setattr__(event, "_encoded", data)
    object.__setattr__(event, "_signed", msgpack.packb(fields[:3], use_bin_type=True))
    return event


def sign_event(unsigned: UnsignedEvent, *keys: SigningKey) -> Event:
    """Sign `unsigned` with each key; a key's name is its member id. Signatures come out sorted by member id."""
    if not keys:
        raise ValueError("sign_event needs at least one key")
    message = unsigned.signed_bytes()
    signatures = sorted(
        (Signature(key.name, key.key_id, key.sign(domains.EVENT, message)) for key in keys),
        key=lambda s: s.member,
    )
    return Event(unsigned.origin, unsigned.time_ms, unsigned.payload, tuple(signatures))


def add_signatures(event: Event, *keys: SigningKey) -> Event:
    """The same event (same id) with more signatures, e.g. governance signers adding theirs one by one."""
    already = {s.member for s in event.signatures}
    repeated = sorted(k.name for k in keys if k.name in already)
    if repeated:
        raise ValueError(f"{', '.join(repeated)} signed this event already")
    extra = sign_event(event.unsigned, *keys).signatures
    signatures = sorted((*event.signatures, *extra), key=lambda s: s.member)
    return Event(event.origin, event.time_ms, event.payload, tuple(signatures))
