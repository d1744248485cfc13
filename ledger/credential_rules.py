"""The rules for credential events: issue, revoke, suspend, reinstate (DESIGN §3).

A credential is issued once and for all: its digest can never be issued again, even after a revocation. Its
status then moves active ⇄ suspended, and to revoked from either; revoked is terminal. Status changes are made
by the issuing member (with any of its valid issuer keys) or by governance.
"""

from __future__ import annotations

import dataclasses

from credledger.ledger.achievement_rules import check_award
from credledger.ledger.authority import Context, require_issuer, require_member_or_governance
from credledger.ledger.errors import InvalidEvent, Unauthorized
from credledger.ledger.events import Issue, Reinstate, Revoke, Suspend
from credledger.ledger.state import CredentialRecord, Status, get_credential
from credledger.ledger.times import iso_ms


def apply_issue(ctx: Context, payload: Issue) -> None:
    authority = require_issuer(ctx, "an issue")
    if authority.member.id != payload.issuer:
        raise Unauthorized(
            "not-the-issuer", f"signed by {authority.member.id!r} but names {payload.issuer!r} as the issuer"
        )
    if get_credential(ctx.view, payload.digest) is not None:
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
    ctx.view.put_credential(payload.digest, record)


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
