"""The rules for credential events: issue, revoke, suspend, reinstate (DESIGN §3).

A credential is issued once and for all: its digest can never be issued again, even after a revocation. Its
status then moves active ⇄ suspended, and to revoked from either; revoked is terminal. Status changes are made
by the issuing member (with any of its valid issuer keys) or by governance.

A credential may take an entry of its issuer's Bitstring Status Lists (DESIGN §13). An entry is used at most once
per issuer, ever; the list's bits follow the credential's status (revocation bit while revoked, suspension bit
while suspended), so every node derives the same list from the same state.
"""

from __future__ import annotations

import dataclasses

from credledger.ledger.achievement_rules import check_award
from credledger.ledger.authority import Context, require_issuer, require_member_or_governance
from credledger.ledger.errors import InvalidEvent, StorageError, Unauthorized
from credledger.ledger.events import Issue, Reinstate, Revoke, Suspend
from credledger.ledger.state import (
    CredentialRecord,
    Status,
    StatusListRecord,
    StatusOfRecord,
    StatusSlotRecord,
    cred_key,
    get_credential,
    get_status_list,
    get_status_of,
    get_status_slot,
    status_list_key,
    status_of_key,
    status_slot_key,
    with_bit,
)
from credledger.ledger.times import iso_ms


def apply_issue(ctx: Context, payload: Issue) -> None:
    authority = require_issuer(ctx, "an issue")
    if authority.member.id != payload.issuer:
        raise Unauthorized(
            "not-the-issuer", f"signed by {authority.member.id!r} but names {payload.issuer!r} as the issuer"
        )
    key = cred_key(payload.digest)
    if ctx.view.get(key) is not None:
        raise InvalidEvent("already-issued", f"credential {payload.digest.hex()} was issued before")
    if payload.expires_ms is not None and payload.expires_ms <= ctx.event.time_ms:
        raise InvalidEvent(
            "expires-before-issue",
            f"expiry {iso_ms(payload.expires_ms)} is not after the issue time {iso_ms(ctx.event.time_ms)}",
        )
    if payload.achievement is not None:
        check_award(ctx, payload)
    for component in payload.components:
        record = get_credential(ctx.view, component)
        if record is None:
            raise InvalidEvent("component-missing", f"component {component.hex()} has not been issued")
        if record.status == Status.REVOKED:
            raise InvalidEvent("component-revoked", f"component {component.hex()} is revoked")
    record = CredentialRecord(
        issuer=payload.issuer,
        key_id=authority.key.key_id,
        issue_index=ctx.index,
        issued_height=ctx.height,
        issued_ms=ctx.event.time_ms,
        status=Status.ACTIVE,
        expires_ms=payload.expires_ms,
        status_index=None,
        status_height=None,
    )
    ctx.view.put(key, record)
    if payload.status_list is not None and payload.status_index is not None:
        _take_status_entry(ctx, payload.issuer, payload.digest, payload.status_list, payload.status_index)


def _take_status_entry(ctx: Context, member_id: str, digest: bytes, list_number: int, index: int) -> None:
    if get_status_slot(ctx.view, member_id, list_number, index) is not None:
        raise InvalidEvent(
            "status-entry-used", f"entry {index} of {member_id}'s status list {list_number} is taken already"
        )
    status_list = get_status_list(ctx.view, member_id, list_number) or StatusListRecord.empty()
    ctx.view.put(status_slot_key(member_id, list_number, index), StatusSlotRecord(digest))
    ctx.view.put(status_of_key(digest), StatusOfRecord(list_number, index))
    ctx.view.put(status_list_key(member_id, list_number), dataclasses.replace(status_list, used=status_list.used + 1))


def apply_revoke(ctx: Context, payload: Revoke) -> None:
    record = _changeable(ctx, payload.digest)
    _set_status(ctx, payload.digest, record, Status.REVOKED)


def apply_suspend(ctx: Context, payload: Suspend) -> None:
    record = _changeable(ctx, payload.digest)
    if record.status == Status.SUSPENDED:
        raise InvalidEvent("already-suspended", f"credential {payload.digest.hex()} is suspended already")
    _set_status(ctx, payload.digest, record, Status.SUSPENDED)


def apply_reinstate(ctx: Context, payload: Reinstate) -> None:
    record = _changeable(ctx, payload.digest)
    if record.status != Status.SUSPENDED:
        raise InvalidEvent("not-suspended", f"credential {payload.digest.hex()} is {record.status}, not suspended")
    _set_status(ctx, payload.digest, record, Status.ACTIVE)


def _changeable(ctx: Context, digest: bytes) -> CredentialRecord:
    """The credential's record, once the signer is shown to be its issuer or governance and it is not revoked."""
    record = get_credential(ctx.view, digest)
    if record is None:
        raise InvalidEvent("not-issued", f"credential {digest.hex()} has not been issued")
    require_member_or_governance(ctx, record.issuer, "not-the-issuer")
    if record.status == Status.REVOKED:
        raise InvalidEvent("revoked-is-terminal", f"credential {digest.hex()} is revoked; nothing can change that")
    return record


def _set_status(ctx: Context, digest: bytes, record: CredentialRecord, status: Status) -> None:
    updated = dataclasses.replace(record, status=status, status_index=ctx.index, status_height=ctx.height)
    ctx.view.put_credential(digest, updated)
    entry = get_status_of(ctx.view, digest)
    if entry is not None:
        key = status_list_key(record.issuer, entry.list_number)
        bits = get_status_list(ctx.view, record.issuer, entry.list_number)
        if bits is None:
            raise StorageError(f"credential {digest.hex()} has a status entry in a list the state does not hold")
        revocation = with_bit(bits.revocation, entry.index, status == Status.REVOKED)
        suspension = with_bit(bits.suspension, entry.index, status == Status.SUSPENDED)
        ctx.view.put(key, dataclasses.replace(bits, revocation=revocation, suspension=suspension))
