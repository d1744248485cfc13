"""Building `credledger-proof/v1` bundles from a store snapshot (the serving side of `ledger.bundle`)."""

from __future__ import annotations

from collections.abc import Sequence

from credledger.ledger import codec
from credledger.ledger.bundle import Bundle, LoggedEvent, StateEntry, ValidatorLink
from credledger.ledger.catalogue import achievement_version_key
from credledger.ledger.events import Issue, decode_event
from credledger.ledger.record import Record
from credledger.ledger.state import CredentialRecord, cred_key, issuer_key_key, member_key
from credledger.ledger.storage.store import Snapshot


def build_bundle(snap: Snapshot, digest: bytes, genesis_hash: bytes, origin: str) -> Bundle:
    """The bundle for `digest` as of the snapshot's latest block (which must exist)."""
    height = snap.height
    if height == 0:
        raise KeyError("no block has been committed yet, so there is no checkpoint to prove against")
    header = snap.header(height)
    size = header.log_size
    value, proof = snap.prove_state(cred_key(digest))
    events: list[LoggedEvent] = []
    member = key = None
    if value is not None:
        record = codec.decode(CredentialRecord, value)
        indexes = [record.issue_index] + ([record.status_index] if record.status_index is not None else [])
        events = [LoggedEvent(i, snap.entry(i), tuple(snap.inclusion_proof(i, size))) for i in indexes]
        member = StateEntry(*snap.prove_state(member_key(record.issuer)))
        key = StateEntry(*snap.prove_state(issuer_key_key(record.issuer, record.key_id)))
    return Bundle(
        origin=origin,
        genesis_hash=genesis_hash,
        digest=digest,
        checkpoint=snap.certificate(height),
        header=header.encode(),
        validators=validator_links(snap, height),
        credential=StateEntry(value, proof),
        events=tuple(events),
        member=member,
        key=key,
    )


def build_record(snap: Snapshot, digests: Sequence[bytes], genesis_hash: bytes, origin: str) -> Record:
    """A `credledger-record/v1` of `digests` under the snapshot's latest checkpoint (one anchor for all)."""
    bundles = tuple(build_bundle(snap, digest, genesis_hash, origin) for digest in digests)
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
