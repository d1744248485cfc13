"""The records the state map holds, where they live, and typed access to them (DESIGN §5).

Theory of operation
-------------------
The state map is a sparse Merkle map from 32-byte keys to canonical record encodings. Keys are namespaced hashes:

    cred_key(digest)             = SHA-256("cred\\x00"   || digest)
    member_key(id)               = SHA-256("member\\x00" || id)
    issuer_key_key(member, kid)  = SHA-256("key\\x00"    || member || "\\x00" || kid)
    status_list_key(member, L)   = SHA-256("statuslist\\x00" || member || "\\x00" || L as 4 bytes)
    status_slot_key(member, L, i)= SHA-256("statusslot\\x00" || member || "\\x00" || L as 4 bytes || i as 4 bytes)
    status_of_key(digest)        = SHA-256("statusof\\x00"   || digest)
    status_published_key(member, L, purpose) = SHA-256("statuspub\\x00" || member || "\\x00" || L as 4 bytes || purpose)

A member's status list L (DESIGN §13) is one record holding both bitstrings (revocation, suspension) and how many
entries are taken; each taken entry has a slot record naming its credential, and each credential with an entry
a record naming it, so a status change finds its bits. The bits are a function of the credentials' status: the
revocation bit is set while the credential is revoked, the suspension bit while it is suspended.

One more record makes the map self-describing: the member *directory*, the sorted ids of the active members,
stored at ``member_key("")``. No member id is empty, so that key can never collide with a member record, and
with it the current validator set can be derived from the state alone (`validator_set`), as a verifier holding a
state proof can do too.

Records are never deleted: a revoked credential, a removed member and a retired key all stay, with their history
in the record, so a proof about an old credential can always be served. Readers here take any `StateView` (the
map at some height, an overlay of pending writes, or a plain dict in tests).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Protocol, TypeVar

from credledger.ledger import codec, domains, keys
from credledger.ledger.codec import Bytes32, KeyId, Range, Size
from credledger.ledger.errors import StorageError
from credledger.ledger.events import Did, Name
from credledger.ledger.limits import MAX_ISSUER_KEYS, MAX_MEMBERS, STATUS_LIST_ENTRIES
from credledger.ledger.validators import MemberId, Power, Validator, ValidatorSet, check_member_id

R = TypeVar("R")


class StateView(Protocol):
    """Read access to the state map (or to anything that behaves like it, such as a dict)."""

    def get(self, key: bytes, /) -> bytes | None: ...


# --- keys ---------------------------------------------------------------------------------------------------------


def cred_key(digest: bytes) -> bytes:
    """Where a credential's record lives."""
    return hashlib.sha256(domains.STATE_CRED + digest).digest()


@functools.lru_cache(maxsize=1024)
def member_key(member_id: str) -> bytes:
    """Where a member's record lives (cached: the rules look up the signer's record for every event)."""
    return hashlib.sha256(domains.STATE_MEMBER + member_id.encode()).digest()


@functools.lru_cache(maxsize=4096)
def issuer_key_key(member_id: str, key_id: bytes) -> bytes:
    """Where one of a member's issuer-key records lives (cached, as `member_key`)."""
    return hashlib.sha256(domains.STATE_KEY + member_id.encode() + b"\x00" + key_id).digest()


def evidence_key(offender: str, height: int, round_: int, step: int) -> bytes:
    """Where the record of `offender`'s equivocation in one consensus slot lives (one record per slot)."""
    slot = height.to_bytes(8, "big") + round_.to_bytes(8, "big") + bytes([step])
    return hashlib.sha256(domains.STATE_EVIDENCE + offender.encode() + b"\x00" + slot).digest()


def status_list_key(member_id: str, list_number: int) -> bytes:
    """Where a member's status list `list_number` lives (both purposes' bits and the count of taken entries)."""
    return hashlib.sha256(
        domains.STATE_STATUS_LIST + member_id.encode() + b"\x00" + list_number.to_bytes(4, "big")
    ).digest()


def status_slot_key(member_id: str, list_number: int, index: int) -> bytes:
    """Where the record of a taken status-list entry lives: present once the entry is used, never freed."""
    slot = list_number.to_bytes(4, "big") + index.to_bytes(4, "big")
    return hashlib.sha256(domains.STATE_STATUS_SLOT + member_id.encode() + b"\x00" + slot).digest()


def status_of_key(digest: bytes) -> bytes:
    """Where a credential's status-list entry is recorded."""
    return hashlib.sha256(domains.STATE_STATUS_OF + digest).digest()


def status_published_key(member_id: str, list_number: int, purpose: str) -> bytes:
    """Where the log position of the latest `status.publish` for a member's list and purpose is recorded."""
    number = list_number.to_bytes(4, "big")
    return hashlib.sha256(
        domains.STATE_STATUS_PUBLISHED + member_id.encode() + b"\x00" + number + purpose.encode()
    ).digest()


#: Where the member directory lives: the member namespace under the empty id, which no member can have.
DIRECTORY_KEY = member_key("")


# --- records ------------------------------------------------------------------------------------------------------


class Status(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class CredentialRecord:
    """A credential's current status. Indexes are log positions of the events that set it."""

    issuer: MemberId
    key_id: KeyId
    issue_index: int
    issued_height: int
    issued_ms: int
    status: Annotated[str, Size(1, 16)]
    expires_ms: int | None
    status_index: int | None
    status_height: int | None

    def __post_init__(self) -> None:
        # Normalised so a decoded record and a freshly built one look alike; ValueError for any other string.
        if type(self.status) is not Status:
            object.__setattr__(self, "status", Status(self.status))
        if (self.status_index is None) != (self.status_height is None):
            raise ValueError("status_index and status_height are set together")
        if self.status != Status.ACTIVE and self.status_index is None:
            raise ValueError(f"a {self.status} credential needs the index of the event that made it so")


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """A member institution. `issuer_keys` lists the ids of its keys that are not retired, oldest first; `did` is
    the DID its credentials name as issuer (DESIGN §13)."""

    id: MemberId
    name: Name
    power: Power
    node_key: Bytes32
    active: bool
    since: int
    issuer_keys: Annotated[tuple[KeyId, ...], Size(0, MAX_ISSUER_KEYS)]
    did: Did

    #: The node key's C2SP key id (node keys are named by member id): derived once, since the rules compare every
    #: signature's key id with it.
    node_key_id: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_member_id(self.id)
        if len(set(self.issuer_keys)) != len(self.issuer_keys):
            raise ValueError("issuer key ids must not repeat")
        object.__setattr__(self, "node_key_id", keys.key_id(self.id, self.node_key))


@dataclass(frozen=True, slots=True)
class IssuerKeyRecord:
    """An issuer key and the heights that bound its validity (see `key_valid_at`)."""

    member: MemberId
    key_id: KeyId
    public_key: Bytes32
    valid_from: int
    retired_at: int | None
    compromised_since: int | None

    def __post_init__(self) -> None:
        if keys.key_id(self.member, self.public_key) != self.key_id:
            raise ValueError(f"key id {self.key_id.hex()} does not match {self.member}'s public key")


@dataclass(frozen=True, slots=True)
class MemberDirectory:
    """The ids of the active members, sorted."""

    members: Annotated[tuple[MemberId, ...], Size(0, MAX_MEMBERS)]

    def __post_init__(self) -> None:
        if list(self.members) != sorted(set(self.members)):
            raise ValueError("directory ids must be sorted and unique")

    def with_member(self, member_id: str) -> MemberDirectory:
        return MemberDirectory(tuple(sorted({*self.members, member_id})))

    def without_member(self, member_id: str) -> MemberDirectory:
        return MemberDirectory(tuple(m for m in self.members if m != member_id))


@dataclass(frozen=True, slots=True)
class EquivocationRecord:
    """A validator's proven equivocation: which slot, where the evidence is in the log, and who reported it."""

    offender: MemberId
    height: int
    round: int
    step: Annotated[int, Range(0, 2)]
    evidence_id: Bytes32
    index: int
    reported_by: MemberId


#: Bytes of one status bitstring.
STATUS_LIST_BYTES = STATUS_LIST_ENTRIES // 8
StatusBits = Annotated[bytes, Size(STATUS_LIST_BYTES, STATUS_LIST_BYTES)]


@dataclass(frozen=True, slots=True)
class StatusListRecord:
    """A member's status list: how many entries are taken, and the revocation and suspension bitstrings (index 0
    in the top bit of byte 0, as W3C Bitstring Status List writes them)."""

    used: Annotated[int, Range(0, STATUS_LIST_ENTRIES)]
    revocation: StatusBits
    suspension: StatusBits

    @classmethod
    def empty(cls) -> StatusListRecord:
        return cls(0, bytes(STATUS_LIST_BYTES), bytes(STATUS_LIST_BYTES))


@dataclass(frozen=True, slots=True)
class StatusSlotRecord:
    """A taken status-list entry: the credential it belongs to."""

    digest: Bytes32


@dataclass(frozen=True, slots=True)
class StatusOfRecord:
    """A credential's status-list entry: entry `index` of its issuer's list `list_number`."""

    list_number: Annotated[int, Range(0, 2**32 - 1)]
    index: Annotated[int, Range(0, STATUS_LIST_ENTRIES - 1)]


@dataclass(frozen=True, slots=True)
class StatusPublishedRecord:
    """Where the latest signed list credential of a member's list and purpose is: its event's log index and height."""

    index: int
    height: int


def with_bit(bits: bytes, index: int, value: bool) -> bytes:
    """`bits` with entry `index` set to `value`."""
    data = bytearray(bits)
    mask = 0x80 >> (index % 8)
    data[index // 8] = data[index // 8] | mask if value else data[index // 8] & ~mask
    return bytes(data)


def key_valid_at(record: IssuerKeyRecord, height: int) -> bool:
    """Whether the key may sign at `height`: valid_from ≤ height < retired_at, and height < compromised_since."""
    return (
        record.valid_from <= height
        and (record.retired_at is None or height < record.retired_at)
        and (record.compromised_since is None or height < record.compromised_since)
    )


# --- typed reads --------------------------------------------------------------------------------------------------


def _load(view: StateView, cls: type[R], key: bytes) -> R | None:
    data = view.get(key)
    return None if data is None else typing.cast(R, _decode(typing.cast(type, cls), data))


@functools.lru_cache(maxsize=4096)
def _decode(cls: type, data: bytes) -> object:
    # Records are immutable values, so equal bytes always decode to an equal record: the rules read the same
    # member and issuer-key records for every event a member signs.
    return codec.decode(cls, data)


def get_credential(view: StateView, digest: bytes) -> CredentialRecord | None:
    return _load(view, CredentialRecord, cred_key(digest))


def get_member(view: StateView, member_id: str) -> MemberRecord | None:
    return _load(view, MemberRecord, member_key(member_id))


def get_issuer_key(view: StateView, member_id: str, key_id: bytes) -> IssuerKeyRecord | None:
    return _load(view, IssuerKeyRecord, issuer_key_key(member_id, key_id))


def get_status_list(view: StateView, member_id: str, list_number: int) -> StatusListRecord | None:
    return _load(view, StatusListRecord, status_list_key(member_id, list_number))


def get_status_slot(view: StateView, member_id: str, list_number: int, index: int) -> StatusSlotRecord | None:
    return _load(view, StatusSlotRecord, status_slot_key(member_id, list_number, index))


def get_status_of(view: StateView, digest: bytes) -> StatusOfRecord | None:
    return _load(view, StatusOfRecord, status_of_key(digest))


def get_status_published(
    view: StateView, member_id: str, list_number: int, purpose: str
) -> StatusPublishedRecord | None:
    return _load(view, StatusPublishedRecord, status_published_key(member_id, list_number, purpose))


def get_directory(view: StateView) -> MemberDirectory:
    return _load(view, MemberDirectory, DIRECTORY_KEY) or MemberDirectory(())


def active_members(view: StateView) -> Iterator[MemberRecord]:
    """The active members' records, in member-id order."""
    for member_id in get_directory(view).members:
        record = get_member(view, member_id)
        if record is None or not record.active:
            raise StorageError(f"member directory lists {member_id!r}, which has no active member record")
        yield record


def validator_set(view: StateView) -> ValidatorSet:
    """The validators the state implies: active members with voting power, ordered by id."""
    validators = tuple(Validator(m.id, m.power, m.node_key) for m in active_members(view) if m.power > 0)
    if not validators:
        raise StorageError("the state holds no member with voting power")
    return ValidatorSet(validators)


# --- writes -------------------------------------------------------------------------------------------------------


class StateOverlay:
    """Pending writes over a `StateView`: reads see the writes first. Rules apply events through one of these."""

    __slots__ = ("_base", "changes")

    def __init__(self, base: StateView) -> None:
        self._base = base
        #: Key -> new value, in the order first written.
        self.changes: dict[bytes, bytes | None] = {}

    def get(self, key: bytes, /) -> bytes | None:
        if key in self.changes:
            return self.changes[key]
        return self._base.get(key)

    def put(self, key: bytes, record: object) -> None:
        self.changes[key] = codec.encode(record)

    def put_credential(self, digest: bytes, record: CredentialRecord) -> None:
        self.put(cred_key(digest), record)

    def put_member(self, record: MemberRecord) -> None:
        self.put(member_key(record.id), record)

    def put_issuer_key(self, record: IssuerKeyRecord) -> None:
        self.put(issuer_key_key(record.member, record.key_id), record)

    def put_directory(self, directory: MemberDirectory) -> None:
        self.put(DIRECTORY_KEY, directory)

    def merge(self, child: StateOverlay) -> None:
        """Take over the writes of an overlay stacked on this one."""
        self.changes.update(child.changes)
