"""Building `credledger-proof/v1` bundles from a store snapshot (the serving side of `ledger.bundle`).

Every bundle served at one height shares its certified parts: the checkpoint, the header, the validator chain,
and -- for each issuer -- the proofs of its member and key records. `SharedParts` keeps them for the latest
height it was asked about, so serving a bundle costs the credential's own proofs only; and of those, the
inclusion proofs of its events in the log share their upper hashes with every event under the same tile
(`log.SharedPaths`, kept per height too). `bundle_json` serves the same bundle as JSON text, with the shared
parts kept already encoded: the text before the digest, the text from the checkpoint to the credential (one per
checkpoint note: witnesses' cosignatures change it) and each issuer's records, so a bundle costs the encoding of
its own proofs only. That own text is a function of the digest, the state root and the log's size, so the text
of the bundles served lately is kept under those three (`MAX_OWN_TEXTS`): a bundle asked for again costs no
proof at all, at the same height or at a later one that changed neither (a network's empty blocks).
`record_json` writes a `credledger-record/v1` (many credentials under one anchor) the same way.
"""

from __future__ import annotations

import binascii
import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgpack

from credledger.ledger import codec
from credledger.ledger.bundle import FORMAT, Bundle, LoggedEvent, StateEntry, ValidatorLink, entry_to_json
from credledger.ledger.catalogue import achievement_version_key
from credledger.ledger.errors import DecodeError, StorageError
from credledger.ledger.events import Issue, decode_event
from credledger.ledger.record import FORMAT as RECORD_FORMAT
from credledger.ledger.record import Record
from credledger.ledger.state import CredentialRecord, cred_key, issuer_key_key, member_key
from credledger.ledger.storage.generations import TwoGenerations
from credledger.ledger.storage.log import SharedPaths
from credledger.ledger.storage.store import Snapshot

#: Issuer records (member and key entries with their proofs) kept per height.
MAX_SHARED_ENTRIES = 4_096
#: Checkpoint notes (the certificate, then as outside witnesses cosign it) whose shared text is kept per height.
MAX_NOTES = 8
#: Bundles whose own text (the credential's entry, its logged events and its issuer) is kept, about 2 KB each
#: (an issuer's text is shared): at most this many, at least half as many of the most recently served.
MAX_OWN_TEXTS = 4_096


@dataclass(frozen=True, slots=True)
class _Height:
    height: int
    log_size: int
    checkpoint: str
    header: bytes
    validators: tuple[ValidatorLink, ...]
    entries: dict[bytes, StateEntry]
    #: The upper parts of inclusion proofs in the log at this height.
    paths: SharedPaths
    #: What a bundle's own text depends on besides its digest: the state root and the log's size.
    proved: tuple[bytes, int]
    #: JSON text shared by every bundle at this height: from the checkpoint (by the note served) to the
    #: credential, and each issuer's records (by member and key record keys).
    middles: dict[str, str]
    issuers: dict[tuple[bytes, bytes], str]


class SharedParts:
    """The parts every bundle at one height shares, read once per height, and the own text of bundles served
    lately. Not safe across threads."""

    def __init__(self, limit: int = MAX_SHARED_ENTRIES, own_texts: int = MAX_OWN_TEXTS) -> None:
        self._limit = limit
        self._current: _Height | None = None
        self._head: tuple[str, bytes, str] | None = None
        self._own = TwoGenerations[tuple[bytes, tuple[bytes, int]], tuple[str, str]](own_texts)

    def at(self, snap: Snapshot, height: int | None = None) -> _Height:
        """The shared parts at `height` (default: the snapshot's latest); only the latest height's are kept."""
        latest_height = snap.height
        if height is None:
            height = latest_height
        latest = height == latest_height
        current = self._current if latest else None
        if current is None or current.height != height:
            header = snap.header(height)
            current = _Height(
                height,
                header.log_size,
                snap.certificate(height),
                header.encode(),
                validator_links(snap, height),
                {},
                snap.shared_paths(header.log_size),
                (header.state_root, header.log_size),
                {},
                {},
            )
            if latest:
                self._current = current
        return current

    def entry(self, snap: Snapshot, parts: _Height, key: bytes) -> StateEntry:
        """The proved state entry under `key` (an issuer's member or key record) at the parts' height."""
        found = parts.entries.get(key)
        if found is None:
            found = StateEntry(*snap.prove_state(key, parts.height))
            if len(parts.entries) >= self._limit:
                parts.entries.clear()
            parts.entries[key] = found
        return found

    def head_json(self, origin: str, genesis_hash: bytes) -> str:
        """The JSON text of a bundle up to its digest's value: the same for every bundle of a chain."""
        head = self._head
        if head is None or head[0] != origin or head[1] != genesis_hash:
            text = _dumps({"format": FORMAT, "origin": origin, "genesis": genesis_hash.hex(), "digest": ""})
            head = self._head = (origin, genesis_hash, text[:-3])
        return head[2]

    def own_json(self, snap: Snapshot, parts: _Height, digest: bytes) -> tuple[str, str]:
        """The JSON text of the bundle for `digest` from its credential entry to its issuer's key, and its issuer's
        records, at the parts' height. Kept for the bundles served lately, by digest, state root and log size:
        the text is a function of those three, so it stays right across blocks that change neither (a
        network's empty blocks)."""
        key = (digest, parts.proved)
        own = self._own.get(key)
        if own is None:
            own = _own_json(snap, digest, self, parts)
            self._own.add(key, own)
        return own

    def middle_json(self, parts: _Height, checkpoint: str) -> str:
        """The JSON text of a bundle from its checkpoint to its credential entry, under `checkpoint`."""
        found = parts.middles.get(checkpoint)
        if found is None:
            validators = [
                {"header": b64(v.header), "certificate": v.certificate, "next": b64(v.next_set)}
                for v in parts.validators
            ]
            found = (
                f',"checkpoint":{_dumps(checkpoint)},"header":{_dumps(b64(parts.header))},'
                f'"validators":{_dumps(validators)},"credential":'
            )
            if len(parts.middles) >= MAX_NOTES:
                parts.middles.clear()
            parts.middles[checkpoint] = found
        return found

    def issuer_json(self, snap: Snapshot, parts: _Height, member: bytes, key: bytes) -> str:
        """The JSON text of an issuer's member and key entries with their proofs at the parts' height."""
        found = parts.issuers.get((member, key))
        if found is None:
            issuer = {
                "member": entry_to_json(self.entry(snap, parts, member)),
                "key": entry_to_json(self.entry(snap, parts, key)),
            }
            found = _dumps(issuer)
            if len(parts.issuers) >= self._limit:
                parts.issuers.clear()
            parts.issuers[(member, key)] = found
        return found


def build_bundle(
    snap: Snapshot,
    digest: bytes,
    genesis_hash: bytes,
    origin: str,
    shared: SharedParts | None = None,
    *,
    height: int | None = None,
) -> Bundle:
    """The bundle for `digest` as of block `height` (default: the snapshot's latest block, which must exist).
    `shared` keeps what bundles at the same height have in common between calls. `StatePruned` if the store no
    longer keeps the state as of `height`."""
    if snap.height == 0:
        raise KeyError("no block has been committed yet, so there is no checkpoint to prove against")
    if height is not None and not 1 <= height <= snap.height:
        raise KeyError(f"no block at height {height}: the chain runs from height 1 to {snap.height}")
    cache = shared if shared is not None else SharedParts()
    parts = cache.at(snap, height)
    size = parts.log_size
    value, proof = snap.prove_state(cred_key(digest), parts.height)
    events: list[LoggedEvent] = []
    member = key = None
    if value is not None:
        record = _credential_record(digest, value)
        indexes = [record.issue_index] + ([record.status_index] if record.status_index is not None else [])
        _check_indexes(digest, indexes, size)
        events = [LoggedEvent(i, snap.entry(i), tuple(snap.inclusion_proof(i, size, parts.paths))) for i in indexes]
        member = cache.entry(snap, parts, member_key(record.issuer))
        key = cache.entry(snap, parts, issuer_key_key(record.issuer, record.key_id))
    return Bundle(
        origin=origin,
        genesis_hash=genesis_hash,
        digest=digest,
        checkpoint=parts.checkpoint,
        header=parts.header,
        validators=parts.validators,
        credential=StateEntry(value, proof),
        events=tuple(events),
        member=member,
        key=key,
    )


def bundle_json(
    snap: Snapshot,
    digest: bytes,
    genesis_hash: bytes,
    origin: str,
    shared: SharedParts,
    *,
    cosigned: Callable[[int, str], str] | None = None,
) -> bytes:
    """`build_bundle`'s bundle as compact JSON (the bytes of ``json.dumps(bundle.to_json(), separators=(",", ":"))``),
    with the shared parts' text kept in `shared`. `cosigned(height, note)` gives the checkpoint note to serve for
    the certificate `note` of `height` (one carrying outside witnesses' cosignatures); default: the note itself."""
    if snap.height == 0:
        raise KeyError("no block has been committed yet, so there is no checkpoint to prove against")
    parts = shared.at(snap)
    checkpoint = parts.checkpoint if cosigned is None else cosigned(parts.height, parts.checkpoint)
    own = shared.own_json(snap, parts, digest)
    text = (
        f'{shared.head_json(origin, genesis_hash)}"{digest.hex()}"{shared.middle_json(parts, checkpoint)}'
        f"{own[0]}{own[1]}}}"
    )
    return text.encode()


def _own_json(snap: Snapshot, digest: bytes, shared: SharedParts, parts: _Height) -> tuple[str, str]:
    """The JSON text of a bundle's own parts at the parts' height: from its credential entry to its issuer's
    key, and its issuer's records (kept once per issuer in `shared`)."""
    value, leaf, siblings = snap.state_proof_parts(cred_key(digest), parts.height)
    events = "[]"
    issuer = "null"
    if value is not None:
        issuer_id, key_id, indexes = _record_parts(digest, value, parts.log_size)
        events = _events_text(snap, parts, indexes, [snap.entry(i) for i in indexes])
        issuer = shared.issuer_json(snap, parts, member_key(issuer_id), issuer_key_key(issuer_id, key_id))
    return f'{_entry_text(value, leaf, siblings)},"events":{events},"issuer":', issuer


def _events_text(snap: Snapshot, parts: _Height, indexes: Sequence[int], entries: Sequence[bytes]) -> str:
    """`events_to_json` of a credential's logged events (log `indexes`, their `entries`) as compact JSON text, with
    their inclusion proofs in the log at the parts' height."""
    size, paths = parts.log_size, parts.paths
    logged = [
        f'{{"index":{i},"event":"{b64(entry)}","proof":{_hashes(snap.inclusion_proof(i, size, paths))}}}'
        for i, entry in zip(indexes, entries, strict=True)
    ]
    return f"[{','.join(logged)}]"


#: Where `CredentialRecord`'s fields sit in its encoding (the array of its fields in declaration order).
_FIELDS = [field.name for field in dataclasses.fields(CredentialRecord)]
_ISSUER, _KEY_ID, _ISSUE_INDEX, _STATUS_INDEX = map(_FIELDS.index, ("issuer", "key_id", "issue_index", "status_index"))


def _record_parts(digest: bytes, value: bytes, log_size: int) -> tuple[str, bytes, list[int]]:
    """The issuer, key id and logged events' indexes (the issue, then any status change) of an encoded
    `CredentialRecord`, read from the msgpack array as it is. `codec.decode` would check every field's bounds and
    the canonical encoding, which costs more than the rest of a bundle's own proofs: this value was encoded by the
    ledger's rules and is committed under the state root the bundle proves, and the bundle carries its bytes, not
    what is read here. Only the types of what is read are checked: bytes that are not such a record (a damaged
    store) are `StorageError`, as the strict decode makes them."""
    try:
        fields = msgpack.unpackb(value)
        issuer, key_id, issue_index = fields[_ISSUER], fields[_KEY_ID], fields[_ISSUE_INDEX]
        status_index = fields[_STATUS_INDEX] if len(fields) > _STATUS_INDEX else None
    except (ValueError, TypeError, IndexError, KeyError, msgpack.UnpackException) as exc:
        raise _damaged(digest, f"{type(exc).__name__}: {exc}") from None
    indexes = [issue_index] if status_index is None else [issue_index, status_index]
    if not (isinstance(issuer, str) and isinstance(key_id, bytes)):
        raise _damaged(digest, "its issuer or key id has the wrong type")
    _check_indexes(digest, indexes, log_size)
    return issuer, key_id, indexes


def _credential_record(digest: bytes, value: bytes) -> CredentialRecord:
    """The credential record stored for `digest`, decoded strictly; `StorageError` if the store holds bytes that
    are not one."""
    try:
        return codec.decode(CredentialRecord, value)
    except DecodeError as exc:
        raise _damaged(digest, str(exc)) from None


def _check_indexes(digest: bytes, indexes: Sequence[object], log_size: int) -> None:
    """`StorageError` unless each of a credential record's event indexes is an entry of the log of `log_size`."""
    for index in indexes:
        if type(index) is not int or not 0 <= index < log_size:
            raise _damaged(digest, f"it names log entry {index!r}, outside the log of {log_size} entries")


def _damaged(digest: bytes, why: str) -> StorageError:
    return StorageError(f"the store's record of credential {digest.hex()} is not a credential record ({why})")


def _entry_text(value: bytes | None, leaf: tuple[bytes, bytes] | None, siblings: Sequence[bytes]) -> str:
    """`entry_to_json` of a state entry as compact JSON text, from its value and its proof's leaf (key, value
    hash) and siblings. Written out rather than through `json.dumps`: it is the part of every bundle that
    differs, and holds nothing but base64 (which JSON never escapes) and null."""
    leaf_text = "null" if leaf is None else f'{{"key":"{b64(leaf[0])}","value_hash":"{b64(leaf[1])}"}}'
    value_text = "null" if value is None else f'"{b64(value)}"'
    return f'{{"value":{value_text},"proof":{{"leaf":{leaf_text},"siblings":{_hashes(siblings)}}}}}'


def _hashes(hashes: Sequence[bytes]) -> str:
    """A JSON array of hashes in base64. Encoded in one pass: each hash's base64 ends in a newline (a character
    base64 never holds), and the newlines become the separators."""
    if not hashes:
        return "[]"
    encoded = b"".join(map(binascii.b2a_base64, hashes)).decode("ascii")
    return f'["{encoded[:-1].replace(_NEWLINE, _QUOTED_COMMA)}"]'


_NEWLINE = "\n"
_QUOTED_COMMA = '","'


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def b64(data: bytes) -> str:
    """Standard base64, as text."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def record_json(snap: Snapshot, digests: Sequence[bytes], genesis_hash: bytes, origin: str) -> str:
    """`build_record`'s record as compact JSON text (``json.dumps(record.to_json(), separators=(",", ":"))``),
    written the way `bundle_json` writes a bundle: the anchor and each issuer's records encoded once, and each
    credential's own proofs straight into text, without the proof objects."""
    if snap.height == 0:
        raise KeyError("no block has been committed yet, so there is no checkpoint to prove against")
    shared = SharedParts()
    parts = shared.at(snap)
    anchor = shared.middle_json(parts, parts.checkpoint).removesuffix(_CREDENTIAL_KEY)
    head = _dumps({"format": RECORD_FORMAT, "origin": origin, "genesis": genesis_hash.hex()})[:-1]
    items = ",".join(_record_item(snap, digest, shared, parts) for digest in digests)
    return f'{head}{anchor},"credentials":[{items}]}}'


_CREDENTIAL_KEY = ',"credential":'


def _record_item(snap: Snapshot, digest: bytes, shared: SharedParts, parts: _Height) -> str:
    """The JSON text of one credential of a record: its digest, its own proofs, its issuer's records (shared), and
    the proof of the achievement version its issue event names."""
    value, leaf, siblings = snap.state_proof_parts(cred_key(digest), parts.height)
    events = "[]"
    issuer = achievement = "null"
    if value is not None:
        issuer_id, key_id, indexes = _record_parts(digest, value, parts.log_size)
        entries = [snap.entry(i) for i in indexes]
        events = _events_text(snap, parts, indexes, entries)
        issuer = shared.issuer_json(snap, parts, member_key(issuer_id), issuer_key_key(issuer_id, key_id))
        payload = decode_event(entries[0]).payload
        if isinstance(payload, Issue) and payload.achievement is not None and payload.achievement_version is not None:
            key = achievement_version_key(payload.issuer, payload.achievement, payload.achievement_version)
            achievement = _entry_text(*snap.state_proof_parts(key, parts.height))
    return (
        f'{{"digest":"{digest.hex()}","credential":{_entry_text(value, leaf, siblings)},"events":{events},'
        f'"issuer":{issuer},"achievement":{achievement}}}'
    )


def build_record(snap: Snapshot, digests: Sequence[bytes], genesis_hash: bytes, origin: str) -> Record:
    """A `credledger-record/v1` of `digests` under the snapshot's latest checkpoint (one anchor for all)."""
    shared = SharedParts()  # one checkpoint, header, validator chain and issuer records for all of them
    bundles = tuple(build_bundle(snap, digest, genesis_hash, origin, shared) for digest in digests)
    achievements = []
    for bundle in bundles:
        entry = None
        if bundle.events:
            payload = decode_event(bundle.events[0].event).payload
            if (
                isinstance(payload, Issue)
                and payload.achievement is not None
                and payload.achievement_version is not None
            ):
                key = achievement_version_key(payload.issuer, payload.achievement, payload.achievement_version)
                entry = StateEntry(*snap.prove_state(key))
        achievements.append(entry)
    return Record(bundles, tuple(achievements))


def validator_links(snap: Snapshot, height: int) -> tuple[ValidatorLink, ...]:
    """The validator-set chain from genesis to the set certifying `height`."""
    links = []
    for starts, vset in snap.validator_changes()[1:]:
        if starts > height:
            break
        # The header just before the new set takes over names it as the next set and is certified by the old one.
        handover = starts - 1
        links.append(ValidatorLink(snap.header(handover).encode(), snap.certificate(handover), codec.encode(vset)))
    return tuple(links)
