"""Building `credledger-proof/v1` bundles from a store snapshot (the serving side of `ledger.bundle`).

Every bundle served at one height shares its certified parts: the checkpoint, the header, the validator chain,
and -- for each issuer -- the proofs of its member and key records. `SharedParts` keeps them for the latest
height it was asked about, so serving a bundle costs the credential's own proofs only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from credledger.ledger import codec
from credledger.ledger.bundle import Bundle, LoggedEvent, StateEntry, ValidatorLink
from credledger.ledger.catalogue import achievement_version_key
from credledger.ledger.events import Issue, decode_event
from credledger.ledger.record import Record
from credledger.ledger.state import CredentialRecord, cred_key, issuer_key_key, member_key
from credledger.ledger.storage.store import Snapshot

#: Issuer records (member and key entries with their proofs) kept per height.
MAX_SHARED_ENTRIES = 4_096


@dataclass(frozen=True, slots=True)
class _Height:
    height: int
    log_size: int
    checkpoint: str
    header: bytes
    validators: tuple[ValidatorLink, ...]
    entries: dict[bytes, StateEntry]


class SharedParts:
    """The parts every bundle at one height shares, read once per height. Not safe across threads."""

    def __init__(self, limit: int = MAX_SHARED_ENTRIES) -> None:
        self._limit = limit
        self._current: _Height | None = None

    def at(self, snap: Snapshot) -> _Height:
        current = self._current
        if current is None or current.height != snap.height:
            height = snap.height
            header = snap.header(height)
            current = _Height(
                height, header.log_size, snap.certificate(height), header.encode(), validator_links(snap, height), {}
            )
            self._current = current
        return current

    def entry(self, snap: Snapshot, parts: _Height, key: bytes) -> StateEntry:
        """The proved state entry under `key` (an issuer's member or key record) at the parts' height."""
        found = parts.entries.get(key)
        if found is None:
            found = StateEntry(*snap.prove_state(key))
            if len(parts.entries) >= self._limit:
                parts.entries.clear()
            parts.entries[key] = found
        return found


def build_bundle(
    snap: Snapshot, digest: bytes, genesis_hash: bytes, origin: str, shared: SharedParts | None = None
) -> Bundle:
    """The bundle for `digest` as of the snapshot's latest block (which must exist). `shared` keeps what bundles
    at the same height have in common between calls."""
    if snap.height == 0:
        raise KeyError("no block has been committed yet, so there is no checkpoint to prove against")
    cache = shared if shared is not None else SharedParts()
    parts = cache.at(snap)
    size = parts.log_size
    value, proof = snap.prove_state(cred_key(digest))
    events: list[LoggedEvent] = []
    member = key = None
    if value is not None:
        record = codec.decode(CredentialRecord, value)
        indexes = [record.issue_index] + ([record.status_index] if record.status_index is not None else [])
        events = [LoggedEvent(i, snap.entry(i), tuple(snap.inclusion_proof(i, size))) for i in indexes]
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
